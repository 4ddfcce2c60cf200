"""The Faust application of the IOC worker, built by a factory from :class:`Settings`.

Data flow inside the worker (every topic under ``IOC_TOPIC_PREFIX``)::

    ioc.feed.<source> ──ingest: validate, dedupe, evaluate──► tables seen, series
      (raw bytes, key indicator|area)  │   │                ├─► internal.rollups  ─► table rollups
                                       │   ▼                ├─► internal.rules    ─► rule_inputs
                                       │  ioc.indicators    └─► internal.receipts ─► table reporting
                                       ▼  (published, validated)
                                ioc.deadletter
    every stage's alert transitions ─► ioc.alerts; ticks of the clock ─► internal.receipts

Validation and evaluation are one agent: a feed message's key (``indicator|area``) is the key
of its series, so the series lives on the feed partition's changelog partition, and reading
every event back from ``ioc.indicators`` would only cost a second trip through Kafka and
Faust. ``ioc.indicators`` remains the published stream of validated events for other
consumers. What goes to another key's partition (rollups to the parent area, rules, receipts
per source) is grouped per key and batch: one record carries the batch's items for its key.

Feed topics are consumed as raw bytes and parsed inside the agent: a typed Faust agent would
crash on the first malformed message (``ValueDecodeError``), and no payload may stop the
worker. Each table is keyed by (a prefix of) the key of the topic that writes it, so its
changelog partition is the partition of the events that touch it; rollups go through
``ioc.rollups`` keyed by the *parent* area, so a province total exists once, not once per
partition. Derived numbers (targets, year-to-date, rates) are computed at scrape time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property, lru_cache
from itertools import islice
from typing import Any, cast

import faust
import orjson
from prometheus_client import CollectorRegistry, Histogram

from agents.alerts import AlertBook, Transition, fingerprint
from agents.batching import BatchedTable
from agents.gatekeeper import Duplicate, Forward, Gatekeeper, position_of
from agents.metrics import LoopCollector, PipelineMetrics, observe_all, register_collectors
from agents.quality import (
    Figure,
    TargetIndex,
    add_children,
    assess_target,
    modified_z_score,
    percent_change,
    settle_period,
    with_period,
)
from agents.stores import PERIODS_STORE
from agents.timeliness import assess_source, record_receipts
from agents.transport import (
    BatchProducer,
    ClearingFlowControl,
    OutRecord,
    Transport,
    records_of,
)
from agents.web import register_views
from ioc.clock import Clock
from ioc.settings import Settings
from streams.catalogue import Catalogue, Indicator
from streams.catalogue.models import PARENTS_KEPT
from streams.deadletter import DeadLetter
from streams.events import IndicatorEvent
from streams.periods import Period, PeriodType
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
#: Earlier periods an outlier is judged against.
HISTORY_PERIODS = 24
#: Periods kept per rollup: only the newest is exported (metrics, wall); a few more take late
#: reports. A batch rewrites each rollup it touches whole, children of every period kept.
ROLLUP_KEEP_PERIODS = 4
#: Bytes the producer gathers per partition before a send must wait for it to be sent.
PRODUCER_BATCH_BYTES = 512 * 1024
#: How old the consumer's metadata may get before it is fetched again.
METADATA_MAX_AGE_MS = 30_000
#: Bytes fetched per partition at most (``max_partition_fetch_bytes``; Faust's default 1 MiB).
#: The consumer holds what it fetched for every partition it reads until it is handed over:
#: with a backlog on 82 feed partitions, 1 MiB each was 80 MB of records in memory.
FETCH_PARTITION_BYTES = 256 * 1024
#: Records one fetch hands over at most (Faust's ``broker_max_poll_records``): a stream
#: message carries one partition's records of a fetch (:class:`agents.transport.RecordChunk`).
FETCH_RECORDS = 500
#: Stream messages taken per batch (so at most ``FETCH_RECORDS`` times as many records), and
#: how long a batch waits to fill.
BATCH_SIZE = 16
BATCH_WITHIN = 0.05
#: Stream messages queued per stream ahead of its agent (Faust's ``stream_buffer_maxsize``,
#: 4,096 by default: with chunks, that could hold a whole backlog in memory).
STREAM_BUFFER = 4 * BATCH_SIZE


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
    #: Collectors whose families are read on the event loop at each scrape (agents.metrics).
    loop_collectors: list[LoopCollector] = field(default_factory=list)


class IocApp(faust.App):
    """Faust's app on :class:`agents.transport.Transport` (no records lost at rebalances)."""

    def _new_transport(self) -> Transport:
        return Transport(self.conf.broker_consumer, self)

    @cached_property
    def flow_control(self) -> ClearingFlowControl:
        """Faust's flow control of the streams, whose clear keeps the records that nothing
        would bring again (:class:`agents.transport.ClearingFlowControl`)."""
        # ``_consumer``, not ``consumer``: a clear does not make the consumer.
        return ClearingFlowControl(consumer=lambda: self._consumer, loop=self.loop)


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
        # One batch per partition fills up, then every send waits until the sender has taken
        # it: with 16 KiB (the default) and table rows of a few KiB, the agents waited for a
        # broker round trip every few records. The broker accepts 1 MiB (message.max.bytes).
        producer_max_batch_size=PRODUCER_BATCH_BYTES,
        # A crashed worker (no LeaveGroup) holds its partitions until its session expires:
        # Faust's 60 s default is a minute of silence on the wall; heartbeats every third.
        broker_session_timeout=settings.session_timeout,
        broker_commit_interval=settings.commit_seconds,
        broker_heartbeat_interval=settings.session_timeout / 3,
        consumer_auto_offset_reset="earliest",
        # The group notices new partitions (or topics it missed) at a metadata refresh:
        # every 30 s instead of aiokafka's 5 minutes (see transport.RewindingConsumerThread).
        consumer_metadata_max_age_ms=METADATA_MAX_AGE_MS,
        broker_max_poll_records=FETCH_RECORDS,
        consumer_max_fetch_size=FETCH_PARTITION_BYTES,
        stream_buffer_maxsize=STREAM_BUFFER,
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


def _batched(table: Any) -> BatchedTable:
    """A batch's overlay on a Faust table: its values as they are when the table's are raw
    bytes (``value_type=bytes``), else JSON."""
    return BatchedTable(table.data, raw_values=table.value_serializer == "raw")


class Batch:
    """What one batch of one agent reads and writes.

    Tables are read and written through :class:`BatchedTable` overlays (one changelog record
    per key, at :meth:`close`). Records for other keys' partitions are *posted*: the items
    posted to one (topic, key) go out as one record, ``{"items": [...]}``, in posting order.
    """

    def __init__(
        self,
        out: Outgoing,
        tables: Mapping[str, Any],
        alert_tables: Mapping[str, Any],
        clock: Clock,
    ) -> None:
        self.out = out
        self.tables = {name: _batched(table) for name, table in tables.items()}
        self.alerts = {name: _batched(table) for name, table in alert_tables.items()}
        self.books = {name: AlertBook(table, clock) for name, table in self.alerts.items()}
        #: Each overlay with the changelog topic of its table.
        self._changelogs = [(self.tables[n], _changelog_of(t)) for n, t in tables.items()] + [
            (self.alerts[n], _changelog_of(t)) for n, t in alert_tables.items()
        ]
        self.outbox: dict[tuple[str, bytes], list[Any]] = {}
        #: The mapping of each gathered item, by group (see :meth:`gather`).
        self._gathered: dict[Any, dict[str, Any]] = {}
        #: Items of the batch handled per step, for ``ioc_batch_events{agent=step}``.
        self.counts: dict[str, int] = {}
        #: Counter increments of the batch, by counter and label values: added once, when
        #: it closes. Both the child's lookup (``labels``) and its increment take a lock,
        #: and a batch has thousands of increments for a few children.
        self._tallies: dict[tuple[Any, tuple[str, ...]], int] = {}
        self._observed: dict[Histogram, list[float]] = {}

    def tally(self, counter: Any, *labels: str) -> None:
        """One more for ``counter`` with ``labels`` (its label values, if it has labels),
        counted when the batch closes."""
        key = (counter, labels)
        self._tallies[key] = self._tallies.get(key, 0) + 1

    def observe(self, histogram: Histogram, amount: float) -> None:
        """``amount`` for ``histogram``, observed when the batch closes."""
        self._observed.setdefault(histogram, []).append(amount)

    def at(self, event: Any) -> None:
        """Make ``event`` the one whose partition the next table writes belong to."""
        for overlay, _ in self._changelogs:
            overlay.event = event

    def post(self, topic: str, key: bytes, item: Any) -> None:
        """Queue ``item`` for the record of ``key`` on ``topic``."""
        self.outbox.setdefault((topic, key), []).append(item)

    def gather(
        self,
        topic: str,
        key: bytes,
        group: Any,
        head: Callable[[], dict[str, Any]],
        field: str,
    ) -> dict[str, Any]:
        """The mapping under ``field`` of the one item posted for ``group`` in this batch.

        The first call for ``group`` posts ``head()`` to ``key`` on ``topic``, with an empty
        mapping under ``field``; every call returns that mapping, for the caller to add to.
        Many events of a batch then share one item (receipts: one per source, indicator and
        period, the areas in it) instead of posting one each.
        """
        members = self._gathered.get(group)
        if members is None:
            item = head()
            members = item[field] = {}
            self.post(topic, key, item)
            self._gathered[group] = members
        return members

    def count(self, step: str, items: int = 1) -> None:
        """More items handled by ``step`` (one by default)."""
        self.counts[step] = self.counts.get(step, 0) + items

    async def close(self) -> None:
        """Write every touched table key once, and send every record of the batch."""
        add = self.out.add
        for overlay, changelog in self._changelogs:
            self.out.extend(changelog, overlay.flush())
        for (topic, key), items in self.outbox.items():
            add(topic, key, _json({"items": items}))
        self.outbox.clear()
        self._gathered.clear()
        await self.out.send()
        for (counter, labels), amount in self._tallies.items():
            (counter.labels(*labels) if labels else counter).inc(amount)
        self._tallies.clear()
        for histogram, amounts in self._observed.items():
            observe_all(histogram, amounts)
        self._observed.clear()


def _changelog_of(table: Any) -> str:
    name: str = table.changelog_topic.get_topic_name()
    return name


class Outgoing:
    """The records of one batch, handed to the producer as record batches when it closes.

    Faust's ``Topic.send`` wraps each record in futures, callbacks and sensor calls, and
    aiokafka's ``send`` gives each its own future: several times the cost of the record.
    These records are bytes already; they go to the producer Faust runs
    (:class:`agents.transport.BatchProducer`), which Faust flushes before every offset
    commit, so nothing a batch produced can be committed past before it is in Kafka. A
    batch the producer finally fails to deliver (after its own retries) is logged and
    counted (``ioc_internal_errors_total{stage="produce"}``), never dropped unseen.
    """

    def __init__(self, app: faust.App, metrics: PipelineMetrics) -> None:
        self.app = app
        self.metrics = metrics
        self.records: dict[str, list[OutRecord]] = {}

    def add(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None = None,
        timestamp: float | None = None,
    ) -> None:
        """Queue one record; ``timestamp`` in seconds (None: when it is sent)."""
        timestamp_ms = round(timestamp * 1000) if timestamp else None
        self.records.setdefault(topic, []).append(OutRecord(partition, key, value, timestamp_ms))

    def extend(self, topic: str, records: list[OutRecord]) -> None:
        """Queue records made already (a table's changelog records)."""
        if records:
            self.records.setdefault(topic, []).extend(records)

    async def send(self) -> None:
        """Hand every queued record to the producer (not waiting for the broker)."""
        records, self.records = self.records, {}
        producer = cast(BatchProducer, self.app.producer)
        for topic, batch in records.items():
            for delivery in await producer.send_records(topic, batch):
                delivery.add_done_callback(self._delivered)
            self.metrics.produced.inc(len(batch))

    def _delivered(self, delivery: asyncio.Future[Any]) -> None:
        error = asyncio.CancelledError() if delivery.cancelled() else delivery.exception()
        if error is not None:
            self.metrics.internal_errors.labels("produce").inc()
            log.error("Không gửi được một lô bản ghi / A record batch was not produced: %r", error)


Handler = Callable[[Any, Batch], Awaitable[None]]


@lru_cache(maxsize=PARENTS_KEPT)
def _parent_in(
    catalogue: Catalogue, area: str, period_code: str, period_type: PeriodType
) -> str | None:
    """The unit ``area`` rolls up to for a period: its parent on the period's last day.
    Asked for every report and rollup, so remembered by the period's text, which is then
    not parsed again (the hierarchy never changes while the worker runs)."""
    return catalogue.parent_of(area, Period.parse(period_code, period_type).last_day)


class _Agents:
    """Declares the topics, tables and agents of one Monitor."""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor
        self.app = monitor.app
        self.catalogue = monitor.catalogue
        self.clock = monitor.clock
        self.metrics = monitor.metrics
        self.margin = monitor.settings.target_margin
        self.target_for = TargetIndex()
        topics = monitor.topics
        self.feeds = self.app.topic(
            *(topics.feed(s) for s in sorted(self.catalogue.sources)), **RAW
        )
        self.rollups = self.app.topic(topics.rollups, **RAW)
        self.rules = self.app.topic(topics.rules, **RAW)
        self.receipts = self.app.topic(topics.receipts, **RAW)
        self.sources = {topics.feed(s): s for s in self.catalogue.sources}
        self.names = topics

    def _table(self, name: str, store: str | None = None, raw_values: bool = False) -> Any:
        # No key_type/value_type: plain JSON. Faust's recovery calls ``value_type.from_data``,
        # which builtins such as ``dict`` do not have (recovery would stall); ``bytes`` is the
        # exception Faust makes: raw values, as written.
        table = self.app.Table(
            name,
            default=None,
            partitions=self.monitor.settings.partitions,
            store=store,
            value_type=bytes if raw_values else None,
        )
        self.monitor.tables[name] = table
        return table

    # Every record goes to the producer at once (:class:`Producer`). Faust's ``Topic.send``
    # without ``force`` would *attach* it to the stream's current event and publish it only
    # when that event's offset is committed. In a batch the current event is one event of the
    # batch, often on another partition than the event that caused the send, so a partition's
    # offsets could be committed while its forwarded records were still waiting in memory: a
    # kill -9 then lost them (found by tests/faults). In the producer, they are flushed before
    # every offset commit.

    def _batched_agent(
        self,
        topic: Any,
        name: str,
        tables: Mapping[str, Any],
        alert_tables: Mapping[str, Any],
        handle: Handler,
    ) -> None:
        """Declare an agent that handles ``topic`` in batches, message by message.

        Each batch reads and writes its tables through one :class:`Batch`, closed at the end
        of the batch (one changelog write per key, one record per posted key).
        """

        async def agent(stream: Any) -> None:
            async for events in stream.take_events(BATCH_SIZE, BATCH_WITHIN):
                out = Outgoing(self.app, self.metrics)
                batch = Batch(out, tables, alert_tables, self.clock)
                handled = 0
                for event in events:
                    batch.at(event)
                    for record in records_of(event.message):
                        await handle(record, batch)
                        handled += 1
                await batch.close()
                self.metrics.last_batch.labels(name).set(time.time())
                self.metrics.batch_size.labels(name).observe(handled)
                for step, count in batch.counts.items():
                    self.metrics.batch_size.labels(step).observe(count)

        agent.__name__ = agent.__qualname__ = name
        self.app.agent(topic, name=name)(agent)

    def register(self) -> None:
        """Declare every agent and the tick timer."""
        self._ingest()
        self._rollup()
        self._rules()
        self._reporting()

    def _emit(self, out: Outgoing, transition: Transition | None) -> None:
        if transition is None:
            return
        self.metrics.alert_transitions.labels(transition.alertname, transition.status).inc()
        out.add(
            self.names.alerts,
            transition.fingerprint.encode(),
            transition.model_dump_json().encode(),
        )

    # --- stage 1: validate, dedupe and evaluate each feed message ----------------------------
    def _ingest(self) -> None:
        # A row per (indicator, area, period): held per series (agents.stores), each a few
        # bytes (agents.gatekeeper).
        seen = self._table("validator_seen", store=PERIODS_STORE, raw_values=True)
        tables = {"seen": seen, "series": self._table("series")}
        alerts = {"ingest": self._table("alerts_ingest"), "series": self._table("alerts_series")}
        self._batched_agent(self.feeds, "validate", tables, alerts, self._judge)

    async def _judge(self, message: Any, batch: Batch) -> None:
        metrics = self.metrics
        gatekeeper = Gatekeeper(self.catalogue, self.clock, batch.tables["seen"])
        source = self.sources.get(message.topic, "unknown")
        batch.tally(metrics.received, source)
        origin = position_of(message.partition, message.offset)
        outcome = gatekeeper.judge(message.value, message.key, source, origin)
        book = batch.books["ingest"]
        if isinstance(outcome, Forward):
            event = outcome.event
            # The event's key is its feed message's, so it keeps the feed's partition (the
            # topics have the same partitions; the producer checks, else hashes the key).
            batch.out.add(
                self.names.indicators,
                event.key,
                event.to_json(),
                message.partition,
                message.timestamp,
            )
            batch.tally(metrics.accepted, source)
            if outcome.correction:
                batch.tally(metrics.corrections, source)
            self._emit(
                batch.out,
                book.assess(
                    "value_out_of_range",
                    active=False,
                    source=source,
                    indicator=event.indicator,
                    area=event.area,
                ),
            )
            await self._evaluate_one(event, message, batch)
        elif isinstance(outcome, Duplicate):
            batch.tally(metrics.duplicates, source)
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
            batch.out.add(self.names.deadletter, source.encode(), record.model_dump_json().encode())
            batch.tally(metrics.rejected, source, rejection.reason)
            if rejection.reason == "out_of_range" and outcome.event is not None:
                event = outcome.event
                self._emit(
                    batch.out,
                    book.assess(
                        "value_out_of_range",
                        active=True,
                        source=source,
                        indicator=event.indicator,
                        area=event.area,
                        severity="warning",
                        summary_vi=f"Giá trị {event.value:g} ngoài khoảng hợp lệ",
                        summary_en=f"Value {event.value:g} is out of the valid range",
                    ),
                )

    async def _evaluate_one(self, event: IndicatorEvent, message: Any, batch: Batch) -> None:
        series = batch.tables["series"]
        indicator = self.catalogue.indicators[event.indicator]
        key = f"{event.indicator}|{event.area}"
        sent_at = event.sent_at.isoformat()
        entry = series.get(key) or {
            "source": event.source,
            "indicator": event.indicator,
            "area": event.area,
            "level": self.catalogue.level_of(event.area),
            "periods": {},
        }
        # An entry this batch already wrote is its own: its periods change in place (a batch
        # of a backlog brings several periods of each series; copying 60 each time was most
        # of the update).
        owned = series.written(key)
        # A period's figure is a tuple: its items sit inside it, one pointer fewer to chase
        # for each of the history's periods read below (spread over memory, each a cache miss;
        # with the pydantic to_json, the agents' code went from 12,532 to 13,511 events/s).
        # JSON writes it as the array that recovery reads back as a list; both index alike.
        periods = with_period(
            entry["periods"],
            event.period,
            (event.value, event.numerator, event.denominator, sent_at),
            KEEP_PERIODS,
            owned=owned,
        )
        if owned:
            entry["periods"] = periods
            series[key] = entry
        else:
            series[key] = {**entry, "periods": periods}
        batch.count("evaluate")
        if message.timestamp:
            # The record keeps the agency's produce time, and Faust gives timestamps in
            # seconds. Latency is wall time, whatever the clock.
            batch.observe(self.metrics.latency, max(0.0, time.time() - message.timestamp))

        if event.period == next(reversed(periods)):  # the newest period, not an old correction
            # The figures before it, newest first, read from the end of the (ordered) dict
            # without a lookup per period; then oldest first.
            figures = reversed(periods.values())
            next(figures)
            history = [figure[0] for figure in islice(figures, HISTORY_PERIODS)]
            history.reverse()
            self._quality(event, indicator, history, batch)
        figure: Figure = (event.value, event.numerator, event.denominator)
        self._contribute(batch, indicator, event.area, event.area, event.period, figure, "r")
        for rule in self.catalogue.rules_for(event.indicator):
            batch.post(
                self.names.rules,
                f"{rule.code}|{event.area}".encode(),
                {
                    "rule": rule.code,
                    "indicator": event.indicator,
                    "area": event.area,
                    "period": event.period,
                    "value": event.value,
                },
            )
        source, code, period_code = event.source, event.indicator, event.period
        batch.gather(
            self.names.receipts,
            source.encode(),
            ("receipts", source, code, period_code),
            lambda: {
                "type": "receipts",
                "source": source,
                "indicator": code,
                "period": period_code,
            },
            "areas",
        )[event.area] = sent_at

    def _quality(
        self, event: IndicatorEvent, indicator: Indicator, history: list[float], batch: Batch
    ) -> None:
        book = batch.books["series"]
        # Alert texts are written only for an alert that holds: most events raise none.
        source, code, area = event.source, event.indicator, event.area
        score = modified_z_score(event.value, history)
        outlier = score is not None and abs(score) > indicator.outlier_threshold
        self._emit(
            batch.out,
            book.assess(
                "outlier",
                active=outlier,
                severity="warning",
                summary_vi=f"Giá trị {event.value:g} kỳ {event.period} bất thường so với lịch sử"
                if outlier
                else "",
                summary_en=f"Value {event.value:g} for {event.period} is an outlier "
                f"(modified z-score {score or 0:.1f})"
                if outlier
                else "",
                source=source,
                indicator=code,
                area=area,
            ),
        )
        change = percent_change(history[-1], event.value) if history else None
        sudden = (
            indicator.max_change_pct is not None
            and change is not None
            and abs(change) > indicator.max_change_pct
        )
        self._emit(
            batch.out,
            book.assess(
                "sudden_change",
                active=sudden,
                severity="warning",
                summary_vi=f"Thay đổi đột ngột {change or 0:+.0f}% so với kỳ trước"
                if sudden
                else "",
                summary_en=f"Sudden change of {change or 0:+.0f}% over the previous period"
                if sudden
                else "",
                source=source,
                indicator=code,
                area=area,
            ),
        )
        target = self.target_for(indicator, event.area, int(event.period[:4]))
        if target is None:
            return
        status = assess_target(event.value, target, self.margin)
        firing = fingerprint("target_off_track", event.source, event.indicator, event.area)
        was_firing = (book.state.get(firing) or {}).get("status") == "firing"
        # Hysteresis: fire when off track; resolve only when back on track.
        active = status.status == "off_track" or (status.status == "at_risk" and was_firing)
        self._emit(
            batch.out,
            book.assess(
                "target_off_track",
                active=active,
                severity="warning",
                summary_vi=f"{event.value:g} chưa đạt mục tiêu {target.value:g} năm {target.year} "
                f"({target.basis_vi})"
                if active
                else "",
                summary_en=f"{event.value:g} is off track for the {target.year} target "
                f"{target.value:g} ({target.basis_en})"
                if active
                else "",
                source=source,
                indicator=code,
                area=area,
            ),
        )

    def _contribute(
        self,
        batch: Batch,
        indicator: Indicator,
        area: str,
        child: str,
        period_code: str,
        figure: Figure,
        kind: str,
    ) -> None:
        """Post ``child``'s figure to the rollup of its parent (keyed by the parent)."""
        if indicator.hierarchy_aggregation == "none":
            return
        parent = _parent_in(self.catalogue, area, period_code, indicator.period_type)
        if parent is None:
            return
        # The children of one parent, period and kind posted in this batch share one item.
        code = indicator.code
        batch.gather(
            self.names.rollups,
            f"{code}|{parent}".encode(),
            ("rollup", code, parent, period_code, kind),
            lambda: {"indicator": code, "area": parent, "period": period_code, "kind": kind},
            "children",
        )[child] = list(figure)

    def _items(self, message: Any, stage: str) -> list[dict[str, Any]]:
        """The items of an internal record; none, counted and logged, when it is not one."""
        try:
            items = orjson.loads(message.value)["items"]
            if isinstance(items, list) and all(isinstance(item, dict) for item in items):
                return items
        except (orjson.JSONDecodeError, TypeError, KeyError):
            pass
        # Only the worker writes internal topics; anything else is a bug or an intruder.
        self.metrics.internal_errors.labels(stage).inc()
        log.error(
            "Bản ghi nội bộ không hợp lệ bị bỏ qua / Invalid internal record skipped: %s/%s/%s",
            message.topic,
            message.partition,
            message.offset,
        )
        return []

    # --- rollups along the hierarchy ---------------------------------------------------------
    def _rollup(self) -> None:
        tables = {"rollups": self._table("rollups")}
        self._batched_agent(self.rollups, "rollup", tables, {}, self._rollup_record)

    async def _rollup_record(self, message: Any, batch: Batch) -> None:
        rollups = batch.tables["rollups"]
        touched: dict[str, tuple[Indicator, str, str]] = {}
        for item in self._items(message, "rollup"):
            indicator = self.catalogue.indicators[item["indicator"]]
            key = f"{indicator.code}|{item['area']}"
            entry = rollups.get(key) or {
                "source": indicator.owner,
                "indicator": indicator.code,
                "area": item["area"],
                "level": self.catalogue.level_of(item["area"]),
                "children": {},
                "values": {},
            }
            figures = item.get("children")
            if figures is None:  # one child, as workers before grouping posted it
                figures = {item["child"]: item["figure"]}
            rollups[key] = add_children(entry, item["period"], item["kind"], figures)
            touched[f"{key}|{item['period']}"] = (indicator, key, item["period"])
            batch.count("rollup_items", len(figures))
        # Each period is rolled up once per record, however many children it brought.
        for indicator, key, period_code in touched.values():
            merged, result = settle_period(
                indicator, rollups[key], period_code, ROLLUP_KEEP_PERIODS
            )
            rollups[key] = merged
            if result is not None:
                area = merged["area"]
                figure: Figure = (result.value, result.numerator, result.denominator)
                self._contribute(batch, indicator, area, area, period_code, figure, "c")

    # --- cross-indicator rules ---------------------------------------------------------------
    def _rules(self) -> None:
        tables = {"inputs": self._table("rule_inputs")}
        alerts = {"rules": self._table("alerts_rules")}
        self._batched_agent(self.rules, "rules", tables, alerts, self._rule_record)

    async def _rule_record(self, message: Any, batch: Batch) -> None:
        for item in self._items(message, "rules"):
            self._rule_one(item, batch)

    def _rule_one(self, item: dict[str, Any], batch: Batch) -> None:
        inputs = batch.tables["inputs"]
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
        self._emit(
            batch.out,
            batch.books["rules"].assess(
                "validation_rule",
                active=not rule.holds(values),
                source=owner,
                indicator=rule.code,
                area=item["area"],
                severity=rule.severity,
                summary_vi=f"{rule.summary_vi} — kỳ {item['period']}: lệch {gap:g}",
                summary_en=f"{rule.summary_en} — {item['period']}: off by {gap:g}",
            ),
        )

    # --- reporting timeliness ----------------------------------------------------------------
    def _reporting(self) -> None:
        tables = {"reporting": self._table("reporting")}
        alerts = {"sources": self._table("alerts_sources")}
        interval = self.monitor.settings.tick_seconds

        self._batched_agent(self.receipts, "reporting", tables, alerts, self._report_record)

        @self.app.timer(interval, on_leader=True, name="tick")  # type: ignore[untyped-decorator]
        async def tick() -> None:
            # Time passes through Kafka: each source's state is judged by the worker that owns
            # its partition, inside stream processing, so its writes land where they belong.
            now = self.clock.now().isoformat()
            out = Outgoing(self.app, self.metrics)
            for source in self.catalogue.sources:
                out.add(
                    self.names.receipts,
                    source.encode(),
                    _json({"items": [{"type": "tick", "source": source, "now": now}]}),
                )
            await out.send()

    async def _report_record(self, message: Any, batch: Batch) -> None:
        """A record of receipts (or a tick) of one source: record them, then judge once."""
        items = self._items(message, "reporting")
        source = items[0].get("source") if items else None
        if not isinstance(source, str) or source not in self.catalogue.sources:
            return
        states = batch.tables["reporting"]
        now = self.clock.now()
        since = self.monitor.settings.reporting_since or now
        state = dict(states.get(source) or {"watch_since": since.isoformat(), "periods": {}})
        state["periods"] = dict(state["periods"])
        copied: set[str] = set()
        for item in items:
            if item["type"] == "receipts":  # the areas of one indicator and period: sent at
                sent = item["areas"]
            elif item["type"] == "receipt":  # one area, as workers before grouping posted it
                sent = {item["area"]: item["sent_at"]}
            else:
                continue
            indicator = self.catalogue.indicators[item["indicator"]]
            period = indicator.parse_period(item["period"])
            if indicator.code not in copied:  # copy what record_receipts changes, once
                copied.add(indicator.code)
                state["periods"][indicator.code] = {
                    p: {"areas": dict(v["areas"])}
                    for p, v in state["periods"].get(indicator.code, {}).items()
                }
            record_receipts(
                state,
                indicator,
                period,
                {area: datetime.fromisoformat(moment) for area, moment in sent.items()},
            )
        standing = assess_source(self.catalogue, source, state, now)
        state["overdue"] = list(standing.overdue)
        state["reporting_rate"] = standing.reporting_rate
        state["on_time_rate"] = standing.on_time_rate
        if state != states.get(source):
            states[source] = state
        shown = ", ".join(standing.overdue[:3]) + ("…" if len(standing.overdue) > 3 else "")
        self._emit(
            batch.out,
            batch.books["sources"].assess(
                "source_overdue",
                active=bool(standing.overdue),
                source=source,
                severity="warning",
                summary_vi=f"Nguồn {source} chưa báo cáo đúng hạn: {shown}",
                summary_en=f"Source {source} has not reported by the deadline: {shown}",
                for_seconds=self.monitor.settings.alert_for_seconds,
            ),
        )
