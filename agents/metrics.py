"""Prometheus metrics of the worker, registered on an injected registry (never the global one).

Counters and histograms are updated as events flow. Everything that lives in Faust tables is
read at scrape time by custom collectors, so a scrape shows the tables as they are now and
derived figures (targets, year-to-date, rates) are never stored twice. Label sets are bounded
by the catalogue: sources, indicators, areas, alert names; never event ids or free text.

A scrape is rendered off the event loop (:func:`render`). With the benchmark's million
reports it is 14,000 lines, and rendering them took the loop 0.18 s: every event arriving
meanwhile waited, at each scrape (every 5 s in deploy/prometheus). The loop only takes what
the collectors read of the agents' state (:class:`Scrape`: the tables' rows, the consumer's
offsets, Faust's sensor), and a thread computes and renders the rest.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Self, cast

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from agents.ownership import TableRows, take_rows
from agents.quality import STATUS_CODE, TargetIndex, aggregate_over_time, assess_target
from streams.validation import REJECTION_REASONS

if TYPE_CHECKING:
    from agents.app import Monitor


class FastCounter(Counter):
    """A counter whose ``labels()`` finds an existing child with one dictionary lookup.

    prometheus_client's ``labels()`` checks its arguments, converts them to strings and takes
    a lock on every call, several times per event on the hot path. Here a known label set
    (string values, as everywhere in this project) is looked up in the children prometheus
    itself keeps; anything else (a new label set, keyword labels) takes the usual path, once.
    """

    def labels(self, *labelvalues: Any, **labelkwargs: Any) -> Self:
        """The child for these label values."""
        if not labelkwargs:
            child = self._metrics.get(labelvalues)
            if child is not None:
                return cast(Self, child)
        return super().labels(*labelvalues, **labelkwargs)


class FastHistogram(Histogram):
    """A histogram whose ``labels()`` finds an existing child with one lookup (see
    :class:`FastCounter`)."""

    def labels(self, *labelvalues: Any, **labelkwargs: Any) -> Self:
        """The child for these label values."""
        if not labelkwargs:
            child = self._metrics.get(labelvalues)
            if child is not None:
                return cast(Self, child)
        return super().labels(*labelvalues, **labelkwargs)


def observe_all(histogram: Histogram, amounts: Sequence[float]) -> None:
    """Observe every one of ``amounts``, as ``histogram.observe`` would one by one, taking
    each bucket's lock once: a batch observes thousands of latencies."""
    if not amounts:
        return
    bounds = histogram._upper_bounds
    counts = [0] * len(bounds)
    for amount in amounts:
        counts[bisect_left(bounds, amount)] += 1  # the first bound >= amount (+Inf last)
    histogram._raise_if_not_observable()  # type: ignore[no-untyped-call]
    histogram._sum.inc(sum(amounts))
    for bucket, count in zip(histogram._buckets, counts, strict=True):
        if count:
            bucket.inc(count)


class PipelineMetrics:
    """Counters and histograms of what flows through the pipeline.

    Per-source series start at 0 for every source of the catalogue (and every reason code), so
    ``increase()`` sees the first event too and a silent source shows as 0, not as nothing.
    """

    def __init__(self, registry: CollectorRegistry, sources: Iterable[str] = ()) -> None:
        self.received = FastCounter(
            "ioc_events_received",
            "Messages read from the feed topics, valid or not.",
            ["source"],
            registry=registry,
        )
        self.rejected = FastCounter(
            "ioc_events_rejected",
            "Messages sent to the dead-letter topic, by reason code.",
            ["source", "reason"],
            registry=registry,
        )
        self.accepted = FastCounter(
            "ioc_events_accepted",
            "Valid events forwarded to the indicators topic.",
            ["source"],
            registry=registry,
        )
        self.duplicates = FastCounter(
            "ioc_events_duplicate",
            "Events dropped because their event id was already received.",
            ["source"],
            registry=registry,
        )
        self.corrections = FastCounter(
            "ioc_events_correction",
            "Valid events that replace an earlier value for the same period.",
            ["source"],
            registry=registry,
        )
        self.internal_errors = FastCounter(
            "ioc_internal_errors",
            "Records an agent could not process (a bug or a foreign writer), by stage.",
            ["stage"],
            registry=registry,
        )
        self.produced = Counter(
            "ioc_records_produced",
            "Records the agents handed to the Kafka producer: outputs, internal records and "
            "table changelogs (Faust's own count, ioc_faust_messages_sent, omits them).",
            registry=registry,
        )
        self.alert_transitions = FastCounter(
            "ioc_alert_transitions",
            "Alerts that started or stopped firing.",
            ["alertname", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "ioc_processing_latency_seconds",
            "From the agency's produce time to the value evaluated by the worker.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=registry,
        )
        self.batch_size = FastHistogram(
            "ioc_batch_events",
            "Events taken per batch by an agent.",
            ["agent"],
            buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000),
            registry=registry,
        )
        self.last_batch = Gauge(
            "ioc_agent_last_batch_timestamp_seconds",
            "When each agent last finished a batch (Unix time): a stuck agent's stops moving "
            "while its consumer lag grows.",
            ["agent"],
            registry=registry,
        )
        for source in sources:
            for counter in (self.received, self.accepted, self.duplicates, self.corrections):
                counter.labels(source)
            for reason in REJECTION_REASONS:
                self.rejected.labels(source, reason)


def _gauge(name: str, documentation: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=labels)


SERIES_LABELS = ["source", "indicator", "area", "level"]
ALERT_TABLES = ("alerts_ingest", "alerts_series", "alerts_rules", "alerts_sources")
#: The tables the collectors export, read at each scrape.
EXPORTED_TABLES = ("series", "rollups", "reporting", *ALERT_TABLES)


class LoopCollector(Collector):
    """A collector of objects only the event loop may read (the consumer's offsets, Faust's
    sensor: changed by the loop as it runs). During :func:`render` its families are those
    read on the loop when the scrape began."""

    def collect(self) -> Iterator[Metric]:
        """The families taken with the scrape being rendered, else read now."""
        scrape = _SCRAPE.get()
        if scrape is not None and self in scrape.families:
            return iter(scrape.families[self])
        return self.read()

    def read(self) -> Iterator[Metric]:
        """Read the families now (on the event loop)."""
        raise NotImplementedError


@dataclass(frozen=True, slots=True, eq=False)
class Scrape:
    """What one scrape reads of the agents' state, taken on the event loop at its start.

    The rest of the scrape may then run on another thread: the rows are lists of their own
    (the agents store fresh values, never change a stored one), and the loop collectors'
    families are made already.
    """

    rows: Mapping[str, TableRows]
    families: Mapping[LoopCollector, list[Metric]]

    @classmethod
    def take(cls, monitor: Monitor) -> Scrape:
        """Take the state of ``monitor`` now. Call it on the event loop."""
        return cls(
            rows={table: take_rows(monitor, table) for table in EXPORTED_TABLES},
            families={c: list(c.read()) for c in monitor.loop_collectors},
        )


#: The scrape being rendered, in the rendering thread (see :func:`render`).
_SCRAPE: ContextVar[Scrape | None] = ContextVar("ioc_scrape", default=None)


def rows_of(monitor: Monitor, table: str) -> Iterator[tuple[str, Any]]:
    """The rows of ``table`` this worker owns: as taken by the scrape being rendered, else
    now."""
    scrape = _SCRAPE.get()
    taken = scrape.rows[table] if scrape is not None else take_rows(monitor, table)
    return taken.owned()


def _render(registry: CollectorRegistry, scrape: Scrape) -> bytes:
    _SCRAPE.set(scrape)  # in the context asyncio.to_thread copied for this call only
    return generate_latest(registry)


async def render(monitor: Monitor) -> bytes:
    """The text exposition of ``monitor``'s registry. What the collectors read of the agents'
    state is taken here, on the loop; the rest is computed and rendered on a thread, while
    the agents go on."""
    return await asyncio.to_thread(_render, monitor.registry, Scrape.take(monitor))


class SeriesCollector(Collector):
    """Reported values, year-to-date, and standing against targets, from table ``series``."""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor
        #: A scrape reads thousands of rows: each (indicator, area)'s targets sorted once.
        self.target = TargetIndex()

    def collect(self) -> Iterator[Metric]:
        """Yield the families; read the tables now."""
        catalogue = self.monitor.catalogue
        margin = self.monitor.settings.target_margin
        value = _gauge("ioc_indicator_value", "Latest reported value.", SERIES_LABELS)
        ytd = _gauge(
            "ioc_indicator_ytd_value",
            "Year-to-date value of the latest period's year, by the indicator's time aggregation.",
            SERIES_LABELS,
        )
        period_start = _gauge(
            "ioc_indicator_period_start_timestamp_seconds",
            "Start of the latest reported period.",
            SERIES_LABELS,
        )
        target = _gauge(
            "ioc_indicator_target", "Target for the latest period's year.", SERIES_LABELS
        )
        status = _gauge(
            "ioc_indicator_status",
            "Standing against the target: 0 on track, 1 at risk, 2 off track.",
            SERIES_LABELS,
        )
        progress = _gauge(
            "ioc_indicator_progress_ratio",
            "Progress towards the target (1 = met).",
            SERIES_LABELS,
        )
        for _key, row in rows_of(self.monitor, "series"):
            indicator = catalogue.indicators.get(row["indicator"])
            if indicator is None:
                continue
            labels = [row["source"], row["indicator"], row["area"], row["level"]]
            periods: Mapping[str, list[Any]] = row["periods"]
            latest = max(periods)
            current = periods[latest][0]
            value.add_metric(labels, current)
            period = indicator.parse_period(latest)
            period_start.add_metric(labels, period.start.timestamp())
            # Periods of one series share a format, so those of the latest's year are the
            # sorted tail from the bare year on.
            ordered = sorted(periods)
            same_year = [periods[p][0] for p in ordered[bisect_left(ordered, latest[:4]) :]]
            total = aggregate_over_time(indicator, same_year)
            if total is not None:
                ytd.add_metric(labels, total)
            goal = self.target(indicator, row["area"], period.start.year)
            if goal is not None:
                standing = assess_target(current, goal, margin)
                target.add_metric(labels, goal.value)
                status.add_metric(labels, STATUS_CODE[standing.status])
                progress.add_metric(labels, standing.progress)
        yield from (value, ytd, period_start, target, status, progress)


class RollupCollector(Collector):
    """``ioc_indicator_rollup_value``: parents' values computed from their children."""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor

    def collect(self) -> Iterator[Metric]:
        """Yield the rollups of the latest period of each (indicator, parent)."""
        family = _gauge(
            "ioc_indicator_rollup_value",
            "Value of a parent area computed from its children (sum, or a recomputed rate).",
            SERIES_LABELS,
        )
        children = _gauge(
            "ioc_indicator_rollup_children",
            "Children contributing to the latest rollup.",
            SERIES_LABELS,
        )
        for _key, row in rows_of(self.monitor, "rollups"):
            if not row["values"]:
                continue
            latest = max(row["values"])
            labels = [row["source"], row["indicator"], row["area"], row["level"]]
            family.add_metric(labels, row["values"][latest][0])
            children.add_metric(labels, len(row["children"].get(latest, {})))
        yield from (family, children)


class SourceCollector(Collector):
    """Reporting timeliness of each source, from table ``reporting``."""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor

    def collect(self) -> Iterator[Metric]:
        """Yield per-source gauges for the sources this worker holds."""
        last = _gauge(
            "ioc_source_last_report_timestamp_seconds",
            "When the source last sent a valid report (its sent_at).",
            ["source"],
        )
        age = _gauge(
            "ioc_source_last_report_age_seconds",
            "Time since the source's last valid report, on the monitor's clock (maybe simulated).",
            ["source"],
        )
        now = self.monitor.clock.now()
        overdue = _gauge(
            "ioc_source_overdue",
            "1 when some indicator of the source has no report for its latest due period.",
            ["source"],
        )
        overdue_count = _gauge(
            "ioc_source_overdue_indicators",
            "Indicators of the source with no report for their latest due period.",
            ["source"],
        )
        rate = _gauge(
            "ioc_source_reporting_rate",
            "Reports received over expected for the latest due periods (0..1).",
            ["source"],
        )
        on_time = _gauge(
            "ioc_source_on_time_rate",
            "Reports sent by their deadline over reports received (0..1).",
            ["source"],
        )
        for source, state in rows_of(self.monitor, "reporting"):
            if state.get("last_report"):
                reported = datetime.fromisoformat(state["last_report"])
                last.add_metric([source], reported.timestamp())
                age.add_metric([source], max(0.0, (now - reported).total_seconds()))
            overdue.add_metric([source], 1.0 if state.get("overdue") else 0.0)
            overdue_count.add_metric([source], len(state.get("overdue", ())))
            if state.get("reporting_rate") is not None:
                rate.add_metric([source], state["reporting_rate"])
            if state.get("on_time_rate") is not None:
                on_time.add_metric([source], state["on_time_rate"])
        yield from (last, age, overdue, overdue_count, rate, on_time)


class AlertCollector(Collector):
    """``ioc_alert_active``: one series per firing alert."""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor

    def collect(self) -> Iterator[Metric]:
        """Yield the alerts firing now."""
        family = _gauge(
            "ioc_alert_active",
            "1 for each alert the stream agents hold firing.",
            ["alertname", "severity", "source", "indicator", "area"],
        )
        for name in ALERT_TABLES:
            for _key, entry in rows_of(self.monitor, name):
                if entry["status"] == "firing":
                    family.add_metric(
                        [
                            entry["alertname"],
                            entry["severity"],
                            entry["source"],
                            entry["indicator"],
                            entry["area"],
                        ],
                        1.0,
                    )
        yield family


class LagCollector(LoopCollector):
    """``ioc_consumer_lag_messages``: how far each assigned partition is behind."""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor

    def read(self) -> Iterator[Metric]:
        """Yield the lag of each partition this worker reads."""
        family = _gauge(
            "ioc_consumer_lag_messages",
            "Messages between the last one read and the end of the partition.",
            ["topic", "partition"],
        )
        consumer = getattr(self.monitor.app, "_consumer", None)
        if consumer is not None:
            read = consumer._read_offset
            for tp in consumer.assignment():
                highwater = consumer.highwater(tp)
                if highwater is None:
                    continue
                position = read.get(tp)
                lag = highwater - (position + 1 if position is not None else 0)
                family.add_metric([tp.topic, str(tp.partition)], max(0, lag))
        yield family


def _median(values: Iterable[float]) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


class FaustCollector(LoopCollector):
    """Faust's own worker statistics (its ``app.monitor`` sensor), in base units."""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor

    def read(self) -> Iterator[Metric]:
        """Yield Faust's counters, gauges and recent latencies (medians, in seconds)."""
        sensor = getattr(self.monitor.app, "_monitor", None)
        if sensor is None:
            return
        counters = (
            ("ioc_faust_messages_received", "Messages read from Kafka.", "messages_received_total"),
            ("ioc_faust_messages_sent", "Messages Faust produced.", "messages_sent"),
            ("ioc_faust_events", "Events processed by the agents' streams.", "events_total"),
            ("ioc_faust_rebalances", "Consumer group rebalances seen.", "rebalances"),
        )  # fmt: skip
        for name, documentation, attribute in counters:
            yield CounterMetricFamily(name, documentation, value=getattr(sensor, attribute, 0))
        gauges = (
            ("ioc_faust_events_active", "Events being processed now.", sensor.events_active),
            ("ioc_faust_messages_active", "Messages being processed now.", sensor.messages_active),
            ("ioc_faust_event_runtime_seconds", "Median time an event spends in an agent "
             "(recent events).", _median(sensor.events_runtime)),
            ("ioc_faust_commit_latency_seconds", "Median offset-commit latency (recent).",
             _median(sensor.commit_latency)),
            ("ioc_faust_send_latency_seconds", "Median produce latency (recent).",
             _median(sensor.send_latency)),
        )  # fmt: skip
        for name, documentation, value in gauges:
            yield GaugeMetricFamily(name, documentation, value=value)
        keys = _gauge("ioc_faust_table_keys", "Keys held in memory per table.", ["table"])
        for table_name, table in self.monitor.tables.items():
            keys.add_metric([table_name], len(table))
        yield keys


def register_collectors(monitor: Monitor) -> None:
    """Register the table-reading collectors of ``monitor`` on its registry."""
    monitor.loop_collectors = [LagCollector(monitor), FaustCollector(monitor)]
    for collector in (
        SeriesCollector(monitor),
        RollupCollector(monitor),
        SourceCollector(monitor),
        AlertCollector(monitor),
        *monitor.loop_collectors,
    ):
        monitor.registry.register(collector)
