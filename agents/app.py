"""The Faust application of the IOC worker, built by a factory from :class:`Settings`.

Data flow inside the worker (every topic under ``IOC_TOPIC_PREFIX``)::

    ioc.feed.<source> ──validate──► ioc.indicators ──evaluate──► table series
      (raw bytes; table seen)  │      (key indicator|area)  │
                               ▼                            ├─► internal.rollups  ─► table rollups
                        ioc.deadletter                      ├─► internal.rules    ─► rule_inputs
                                                            └─► internal.receipts ─► table reporting
    every stage's alert transitions ─► ioc.alerts; ticks of the clock ─► internal.receipts

Feed topics are consumed as raw bytes and parsed inside the agent: a typed Faust agent would
crash on the first malformed message (``ValueDecodeError``), and no payload may stop the
worker. Each table is keyed by (a prefix of) the key of the topic that writes it, so its
changelog partition is the partition of the events that touch it; rollups go through
``ioc.rollups`` keyed by the *parent* area, so a province total exists once, not once per
partition. Derived numbers (targets, year-to-date, rates) are computed at scrape time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import faust
import orjson
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from agents.alerts import AlertBook, Transition, fingerprint
from agents.batching import BatchedTable
from agents.gatekeeper import Duplicate, Forward, Gatekeeper
from agents.metrics import PipelineMetrics, register_collectors
from agents.quality import (
    Figure,
    assess_target,
    merge_child,
    modified_z_score,
    percent_change,
    target_for,
)
from agents.timeliness import assess_source, record_receipt
from agents.transport import Transport
from agents.web import register_views
from ioc.clock import Clock
from ioc.settings import Settings
from streams.catalogue import Catalogue, Indicator
from streams.deadletter import DeadLetter
from streams.events import IndicatorEvent
from streams.periods import Period
from streams.topics import Topics

log = logging.getLogger(__name__)

RAW: dict[str, Any] = {
    "key_type": bytes,
    "value_type": bytes,
    "key_serializer": "raw",
    "value_serializer": "raw",
}
#: Periods of history kept per series (enough for outliers of daily series over two months).
KEEP_PERIODS = 60
#: Events taken per batch, and how long a batch waits to fill.
BATCH_SIZE = 500
BATCH_WITHIN = 0.05


@dataclass
class Monitor:
    """The Faust app together with what its views, collectors and tests need to reach."""

    app: faust.App
    settings: Settings
    registry: CollectorRegistry
    metrics: PipelineMetrics
    topics: Topics
    catalogue: Catalogue
    clock: Clock
    tables: dict[str, Any] = field(default_factory=dict)


class IocApp(faust.App):
    """Faust's app on :class:`agents.transport.Transport` (no records lost at rebalances)."""

    def _new_transport(self) -> Transport:
        return Transport(self.conf.broker_consumer, self)


def _broker_credentials(settings: Settings) -> Any:
    if settings.kafka_security_protocol != "SASL_PLAINTEXT":
        return None
    password = settings.kafka_sasl_password
    return faust.SASLCredentials(
        username=settings.kafka_sasl_username,
        password=password.get_secret_value() if password else None,
        mechanism="SCRAM-SHA-512",
    )


def create_app(
    settings: Settings,
    catalogue: Catalogue,
    clock: Clock,
    *,
    registry: CollectorRegistry | None = None,
) -> Monitor:
    """Build the worker's Faust app, its agents, tables, metrics and web views."""
    registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
    app = IocApp(
        f"{settings.topic_prefix}{settings.app_id}",
        broker=[f"kafka://{server}" for server in settings.bootstrap_servers.split(",")],
        broker_credentials=_broker_credentials(settings),
        store="memory://",
        datadir=str(settings.worker_data_dir),
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        topic_allow_declare=True,
        # No standbys: a worker's tables then hold only the partitions it owns, so its
        # metrics and timers never speak for another worker's data.
        table_standby_replicas=0,
        web_enabled=True,
        web_host=settings.worker_host,
        web_port=settings.worker_port,
        web_bind=settings.worker_host,
        producer_acks=-1,
        # A crashed worker (no LeaveGroup) holds its partitions until its session expires:
        # Faust's 60 s default is a minute of silence on the wall; heartbeats every third.
        broker_session_timeout=settings.session_timeout,
        broker_heartbeat_interval=settings.session_timeout / 3,
        consumer_auto_offset_reset="earliest",
        autodiscover=False,
    )
    monitor = Monitor(
        app=app,
        settings=settings,
        registry=registry,
        metrics=PipelineMetrics(registry, sorted(catalogue.sources)),
        topics=Topics(settings.topic_prefix),
        catalogue=catalogue,
        clock=clock,
    )
    _Agents(monitor).register()
    register_collectors(monitor)
    register_views(monitor)
    return monitor


def _json(value: Any) -> bytes:
    return orjson.dumps(value)


class _Agents:
    """Declares the topics, tables and agents of one Monitor."""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor
        self.app = monitor.app
        self.catalogue = monitor.catalogue
        self.clock = monitor.clock
        self.metrics = monitor.metrics
        self.margin = monitor.settings.target_margin
        topics = monitor.topics
        self.feeds = self.app.topic(
            *(topics.feed(s) for s in sorted(self.catalogue.sources)), **RAW
        )
        self.indicators = self.app.topic(topics.indicators, **RAW)
        self.deadletter = self.app.topic(topics.deadletter, **RAW)
        self.alerts = self.app.topic(topics.alerts, **RAW)
        self.rollups = self.app.topic(topics.rollups, **RAW)
        self.rules = self.app.topic(topics.rules, **RAW)
        self.receipts = self.app.topic(topics.receipts, **RAW)

    def _table(self, name: str) -> Any:
        # No key_type/value_type: plain JSON. Faust's recovery calls ``value_type.from_data``,
        # which builtins such as ``dict`` do not have (recovery would stall).
        table = self.app.Table(name, default=None, partitions=self.monitor.settings.partitions)
        self.monitor.tables[name] = table
        return table

    # Every send below passes ``force=True``: Faust would otherwise *attach* it to the stream's
    # current event and publish it only when that event's offset is committed. In a batch the
    # current event is one event of the batch, often on another partition than the event that
    # caused the send, so a partition's offsets could be committed while its forwarded records
    # were still waiting in memory: a kill -9 then lost them (found by tests/faults). Sent at
    # once, they are in the producer, which Faust flushes before every offset commit.

    def _batched_agent(
        self,
        topic: Any,
        name: str,
        state_table: Any,
        alert_table: Any | None,
        handle: Callable[[Any, BatchedTable, AlertBook], Awaitable[None]],
    ) -> None:
        """Declare an agent that handles ``topic`` in batches, message by message.

        Each batch reads and writes its state and alert tables through :class:`BatchedTable`
        overlays, flushed once at the end of the batch (one changelog write per key).
        """

        async def agent(stream: Any) -> None:
            async for batch in stream.take_events(BATCH_SIZE, BATCH_WITHIN):
                state = BatchedTable(state_table)
                alerts = BatchedTable(alert_table if alert_table is not None else {})
                book = AlertBook(alerts, self.clock)
                for event in batch:
                    state.event = alerts.event = event
                    await handle(event.message, state, book)
                state.flush()
                if alert_table is not None:
                    alerts.flush()
                self.metrics.batch_size.labels(name).observe(len(batch))

        agent.__name__ = agent.__qualname__ = name
        self.app.agent(topic, name=name)(agent)

    def register(self) -> None:
        """Declare every agent and the tick timer."""
        self._validate()
        self._evaluate()
        self._rollup()
        self._rules()
        self._reporting()

    async def _emit(self, transition: Transition | None) -> None:
        if transition is None:
            return
        self.metrics.alert_transitions.labels(transition.alertname, transition.status).inc()
        await self.alerts.send(
            force=True,
            key=transition.fingerprint.encode(),
            value=transition.model_dump_json().encode(),
        )

    # --- stage 1: validate -------------------------------------------------------------------
    def _validate(self) -> None:
        seen = self._table("validator_seen")
        alert_state = self._table("alerts_ingest")
        self._batched_agent(self.feeds, "validate", seen, alert_state, self._judge)

    async def _judge(self, message: Any, seen: BatchedTable, book: AlertBook) -> None:
        metrics = self.metrics
        gatekeeper = Gatekeeper(self.catalogue, self.clock, seen)
        source = self.monitor.topics.source_of(message.topic) or "unknown"
        metrics.received.labels(source).inc()
        origin = f"{message.topic}/{message.partition}/{message.offset}"
        outcome = gatekeeper.judge(message.value, message.key, source, origin)
        if isinstance(outcome, Forward):
            event = outcome.event
            await self.indicators.send(
                force=True, key=event.key, value=event.to_json(), timestamp=message.timestamp
            )
            metrics.accepted.labels(source).inc()
            if outcome.correction:
                metrics.corrections.labels(source).inc()
            await self._emit(
                book.assess(
                    "value_out_of_range",
                    active=False,
                    source=source,
                    indicator=event.indicator,
                    area=event.area,
                )
            )
        elif isinstance(outcome, Duplicate):
            metrics.duplicates.labels(source).inc()
        else:
            rejection = outcome.rejection
            record = DeadLetter.of(
                rejection,
                source=source,
                original=message.value,
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
                received_at=datetime.now(UTC),
            )
            await self.deadletter.send(
                force=True, key=source.encode(), value=record.model_dump_json().encode()
            )
            metrics.rejected.labels(source, rejection.reason).inc()
            if rejection.reason == "out_of_range" and outcome.event is not None:
                event = outcome.event
                await self._emit(
                    book.assess(
                        "value_out_of_range",
                        active=True,
                        source=source,
                        indicator=event.indicator,
                        area=event.area,
                        severity="warning",
                        summary_vi=f"Giá trị {event.value:g} ngoài khoảng hợp lệ",
                        summary_en=f"Value {event.value:g} is out of the valid range",
                    )
                )

    # --- stage 2: evaluate each validated value ----------------------------------------------
    def _evaluate(self) -> None:
        series_table = self._table("series")
        alert_state = self._table("alerts_series")
        self._batched_agent(self.indicators, "evaluate", series_table, alert_state, self._parse)

    async def _parse(self, message: Any, series: BatchedTable, book: AlertBook) -> None:
        try:
            event = IndicatorEvent.from_json(message.value)
        except ValidationError as exc:
            # Only the validator writes here; anything else is a bug or an intruder.
            self.metrics.internal_errors.labels("evaluate").inc()
            log.error("Invalid record on the indicators topic skipped: %s", exc)
            return
        await self._evaluate_one(event, message, series, book)

    async def _evaluate_one(
        self, event: IndicatorEvent, message: Any, series: BatchedTable, book: AlertBook
    ) -> None:
        indicator = self.catalogue.indicators[event.indicator]
        period = indicator.parse_period(event.period)
        key = f"{event.indicator}|{event.area}"
        entry = series.get(key) or {
            "source": event.source,
            "indicator": event.indicator,
            "area": event.area,
            "level": self.catalogue.level_of(event.area),
            "periods": {},
        }
        periods: dict[str, list[Any]] = dict(entry["periods"])
        periods[event.period] = [
            event.value,
            event.numerator,
            event.denominator,
            event.sent_at.isoformat(),
        ]
        ordered = sorted(periods)
        periods = {p: periods[p] for p in ordered[-KEEP_PERIODS:]}
        series[key] = {**entry, "periods": periods}
        if message.timestamp:
            # The record keeps the agency's produce time (the validator forwards it), and
            # Faust gives timestamps in seconds. Latency is wall time, whatever the clock.
            self.metrics.latency.observe(max(0.0, time.time() - message.timestamp))

        if event.period == ordered[-1]:  # judge only the newest period, not old corrections
            history = [periods[p][0] for p in ordered[:-1]]
            await self._quality(event, indicator, history, book)
        figure: Figure = (event.value, event.numerator, event.denominator)
        await self._contribute(indicator, event.area, event.area, period, figure, "r")
        for rule in self.catalogue.rules_for(event.indicator):
            await self.rules.send(
                force=True,
                key=f"{rule.code}|{event.area}".encode(),
                value=_json(
                    {
                        "rule": rule.code,
                        "indicator": event.indicator,
                        "area": event.area,
                        "period": event.period,
                        "value": event.value,
                    }
                ),
            )
        await self.receipts.send(
            force=True,
            key=event.source.encode(),
            value=_json(
                {
                    "type": "receipt",
                    "source": event.source,
                    "indicator": event.indicator,
                    "area": event.area,
                    "period": event.period,
                    "sent_at": event.sent_at.isoformat(),
                }
            ),
        )

    async def _quality(
        self, event: IndicatorEvent, indicator: Indicator, history: list[float], book: AlertBook
    ) -> None:
        source, code, area = event.source, event.indicator, event.area
        score = modified_z_score(event.value, history[-24:])
        outlier = score is not None and abs(score) > indicator.outlier_threshold
        await self._emit(
            book.assess(
                "outlier",
                active=outlier,
                severity="warning",
                summary_vi=f"Giá trị {event.value:g} kỳ {event.period} bất thường so với lịch sử",
                summary_en=f"Value {event.value:g} for {event.period} is an outlier "
                f"(modified z-score {score or 0:.1f})",
                source=source,
                indicator=code,
                area=area,
            )
        )
        change = percent_change(history[-1], event.value) if history else None
        sudden = (
            indicator.max_change_pct is not None
            and change is not None
            and abs(change) > indicator.max_change_pct
        )
        await self._emit(
            book.assess(
                "sudden_change",
                active=sudden,
                severity="warning",
                summary_vi=f"Thay đổi đột ngột {change or 0:+.0f}% so với kỳ trước",
                summary_en=f"Sudden change of {change or 0:+.0f}% over the previous period",
                source=source,
                indicator=code,
                area=area,
            )
        )
        target = target_for(indicator, event.area, int(event.period[:4]))
        if target is None:
            return
        status = assess_target(event.value, target, self.margin)
        firing = fingerprint("target_off_track", event.source, event.indicator, event.area)
        was_firing = (book.state.get(firing) or {}).get("status") == "firing"
        # Hysteresis: fire when off track; resolve only when back on track.
        active = status.status == "off_track" or (status.status == "at_risk" and was_firing)
        await self._emit(
            book.assess(
                "target_off_track",
                active=active,
                severity="warning",
                summary_vi=f"{event.value:g} chưa đạt mục tiêu {target.value:g} năm {target.year} "
                f"({target.basis_vi})",
                summary_en=f"{event.value:g} is off track for the {target.year} target "
                f"{target.value:g} ({target.basis_en})",
                source=source,
                indicator=code,
                area=area,
            )
        )

    async def _contribute(
        self,
        indicator: Indicator,
        area: str,
        child: str,
        period: Period,
        figure: Figure,
        kind: str,
    ) -> None:
        """Send ``child``'s figure to the rollup of its parent (keyed by the parent)."""
        if indicator.hierarchy_aggregation == "none":
            return
        parent = self.catalogue.parent_of(area, period.last_day)
        if parent is None:
            return
        await self.rollups.send(
            force=True,
            key=f"{indicator.code}|{parent}".encode(),
            value=_json(
                {
                    "indicator": indicator.code,
                    "area": parent,
                    "child": child,
                    "period": str(period),
                    "figure": list(figure),
                    "kind": kind,
                }
            ),
        )

    # --- rollups along the hierarchy ---------------------------------------------------------
    def _rollup(self) -> None:
        rollup_table = self._table("rollups")

        self._batched_agent(self.rollups, "rollup", rollup_table, None, self._rollup_one)

    async def _rollup_one(self, message: Any, rollups: BatchedTable, _: AlertBook) -> None:
        item = orjson.loads(message.value)
        indicator = self.catalogue.indicators[item["indicator"]]
        period = indicator.parse_period(item["period"])
        key = f"{indicator.code}|{item['area']}"
        entry = rollups.get(key) or {
            "source": indicator.owner,
            "indicator": indicator.code,
            "area": item["area"],
            "level": self.catalogue.level_of(item["area"]),
            "children": {},
            "values": {},
        }
        merged, result = merge_child(
            indicator,
            entry,
            item["period"],
            item["child"],
            item["kind"],
            item["figure"],
            KEEP_PERIODS,
        )
        rollups[key] = merged
        if result is not None:
            figure: Figure = (result.value, result.numerator, result.denominator)
            await self._contribute(indicator, item["area"], item["area"], period, figure, "c")

    # --- cross-indicator rules ---------------------------------------------------------------
    def _rules(self) -> None:
        inputs_table = self._table("rule_inputs")
        alert_state = self._table("alerts_rules")
        self._batched_agent(self.rules, "rules", inputs_table, alert_state, self._rule_one)

    async def _rule_one(self, message: Any, inputs: BatchedTable, book: AlertBook) -> None:
        item = orjson.loads(message.value)
        rule = self.catalogue.rules[item["rule"]]
        key = f"{rule.code}|{item['area']}"
        entry = inputs.get(key) or {"latest": None, "periods": {}}
        periods = {p: dict(v) for p, v in entry["periods"].items()}
        periods.setdefault(item["period"], {})[item["indicator"]] = item["value"]
        latest = max(entry["latest"] or item["period"], item["period"])
        inputs[key] = {"latest": latest, "periods": {p: periods[p] for p in sorted(periods)[-4:]}}
        values = periods[item["period"]]
        if item["period"] != latest or not set(rule.indicators) <= set(values):
            return
        gap = rule.gap(values)
        owner = self.catalogue.indicators[rule.indicators[0]].owner
        await self._emit(
            book.assess(
                "validation_rule",
                active=not rule.holds(values),
                source=owner,
                indicator=rule.code,
                area=item["area"],
                severity=rule.severity,
                summary_vi=f"{rule.summary_vi} — kỳ {item['period']}: lệch {gap:g}",
                summary_en=f"{rule.summary_en} — {item['period']}: off by {gap:g}",
            )
        )

    # --- reporting timeliness ----------------------------------------------------------------
    def _reporting(self) -> None:
        reporting_table = self._table("reporting")
        alert_state = self._table("alerts_sources")
        interval = self.monitor.settings.tick_seconds

        self._batched_agent(
            self.receipts, "reporting", reporting_table, alert_state, self._report_one
        )

        @self.app.timer(interval, on_leader=True, name="tick")  # type: ignore[untyped-decorator]
        async def tick() -> None:
            # Time passes through Kafka: each source's state is judged by the worker that owns
            # its partition, inside stream processing, so its writes land where they belong.
            now = self.clock.now().isoformat()
            for source in self.catalogue.sources:
                await self.receipts.send(
                    force=True,
                    key=source.encode(),
                    value=_json({"type": "tick", "source": source, "now": now}),
                )

    async def _report_one(self, message: Any, states: BatchedTable, book: AlertBook) -> None:
        item = orjson.loads(message.value)
        source = item["source"]
        if source not in self.catalogue.sources:
            return
        now = self.clock.now()
        since = self.monitor.settings.reporting_since or now
        state = dict(states.get(source) or {"watch_since": since.isoformat(), "periods": {}})
        state["periods"] = {k: dict(v) for k, v in state["periods"].items()}
        if item["type"] == "receipt":
            indicator = self.catalogue.indicators[item["indicator"]]
            period = indicator.parse_period(item["period"])
            state["periods"][indicator.code] = {
                p: {"areas": dict(v["areas"])}
                for p, v in state["periods"].get(indicator.code, {}).items()
            }
            record_receipt(
                state, indicator, item["area"], period, datetime.fromisoformat(item["sent_at"])
            )
        standing = assess_source(self.catalogue, source, state, now)
        state["overdue"] = list(standing.overdue)
        state["reporting_rate"] = standing.reporting_rate
        state["on_time_rate"] = standing.on_time_rate
        if state != states.get(source):
            states[source] = state
        shown = ", ".join(standing.overdue[:3]) + ("…" if len(standing.overdue) > 3 else "")
        await self._emit(
            book.assess(
                "source_overdue",
                active=bool(standing.overdue),
                source=source,
                severity="warning",
                summary_vi=f"Nguồn {source} chưa báo cáo đúng hạn: {shown}",
                summary_en=f"Source {source} has not reported by the deadline: {shown}",
                for_seconds=self.monitor.settings.alert_for_seconds,
            )
        )
