"""Metrics come from an injected registry; table values are read at scrape time."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from agents.metrics import (
    ALERT_TABLES,
    AlertCollector,
    LoopCollector,
    PipelineMetrics,
    RollupCollector,
    SeriesCollector,
    SourceCollector,
    observe_all,
    render,
)
from ioc.clock import SystemClock
from ioc.settings import Settings
from streams.catalogue import default_catalogue


def fake_monitor() -> Any:
    tables: dict[str, dict[str, Any]] = {
        name: {} for name in ("series", "rollups", "reporting", *ALERT_TABLES)
    }
    return SimpleNamespace(
        tables=tables,
        catalogue=default_catalogue(),
        settings=Settings(target_margin=0.1),
        clock=SystemClock(),
        loop_collectors=[],
    )


def registry_for(monitor: Any) -> CollectorRegistry:
    registry = CollectorRegistry()
    for collector in (SeriesCollector, RollupCollector, SourceCollector, AlertCollector):
        registry.register(collector(monitor))
    return registry


RATE = {"source": "ict", "indicator": "online_application_rate", "area": "son-la"}


def series_row(periods: dict[str, float]) -> dict[str, Any]:
    return {
        **RATE,
        "level": "province",
        "periods": {p: [v, None, None, "2024-01-01T00:00:00+00:00"] for p, v in periods.items()},
    }


def test_series_are_read_at_each_scrape_with_target_standing() -> None:
    monitor = fake_monitor()
    registry = registry_for(monitor)
    labels = RATE | {"level": "province"}

    monitor.tables["series"]["k"] = series_row({"2023": 69.46})
    first = registry.get_sample_value("ioc_indicator_value", labels)
    status = registry.get_sample_value("ioc_indicator_status", labels)
    target = registry.get_sample_value("ioc_indicator_target", labels)
    progress = registry.get_sample_value("ioc_indicator_progress_ratio", labels)
    monitor.tables["series"]["k"] = series_row({"2023": 69.46, "2024": 79.0})
    second = registry.get_sample_value("ioc_indicator_value", labels)
    at_risk = registry.get_sample_value("ioc_indicator_status", labels)

    assert first == 69.46
    assert target == 80.0  # Resolution 17-NQ/TU: at least 80 % by 2025
    assert status == 2  # 69.46 is more than 10 % short of 80
    assert progress is not None
    assert abs(progress - 69.46 / 80) < 1e-9
    assert second == 79.0  # the newest period wins
    assert at_risk == 1  # within the 10 % margin


def test_ytd_follows_the_time_aggregation() -> None:
    monitor = fake_monitor()
    registry = registry_for(monitor)
    labels = {"source": "tax", "indicator": "tax_revenue", "area": "son-la", "level": "province"}
    monitor.tables["series"]["k"] = {
        **labels,
        "periods": {
            "2024-12": [999.0, None, None, ""],
            "2025-01": [100.0, None, None, ""],
            "2025-02": [150.5, None, None, ""],
        },
    }

    assert registry.get_sample_value("ioc_indicator_ytd_value", labels) == 250.5
    assert registry.get_sample_value("ioc_indicator_value", labels) == 150.5


def test_rollups_sources_and_alerts() -> None:
    monitor = fake_monitor()
    registry = registry_for(monitor)
    monitor.tables["rollups"]["k"] = {
        "source": "police",
        "indicator": "eid_activated",
        "area": "moc-chau",
        "level": "district",
        "children": {"2024-Q3": {"a": {}, "b": {}}},
        "values": {"2024-Q3": [300.0, None, None]},
    }
    monitor.tables["reporting"]["tax"] = {
        "watch_since": "2025-01-01T00:00:00+00:00",
        "last_report": "2025-01-02T00:00:00+00:00",
        "overdue": ["tax_revenue"],
        "reporting_rate": 0.5,
        "on_time_rate": 1.0,
    }
    monitor.tables["alerts_sources"]["x"] = {
        "alertname": "source_overdue",
        "severity": "warning",
        "source": "tax",
        "indicator": "",
        "area": "",
        "status": "firing",
    }
    monitor.tables["alerts_series"]["y"] = {
        "alertname": "outlier",
        "severity": "warning",
        "source": "ict",
        "indicator": "x",
        "area": "son-la",
        "status": "pending",
    }
    rollup = {"source": "police", "indicator": "eid_activated", "area": "moc-chau"}

    assert (
        registry.get_sample_value("ioc_indicator_rollup_value", rollup | {"level": "district"})
        == 300
    )
    assert registry.get_sample_value("ioc_source_overdue", {"source": "tax"}) == 1
    assert registry.get_sample_value("ioc_source_reporting_rate", {"source": "tax"}) == 0.5
    assert (
        registry.get_sample_value(
            "ioc_alert_active",
            {
                "alertname": "source_overdue",
                "severity": "warning",
                "source": "tax",
                "indicator": "",
                "area": "",
            },
        )
        == 1
    )
    # Pending alerts are not active.
    assert (
        registry.get_sample_value(
            "ioc_alert_active",
            {
                "alertname": "outlier",
                "severity": "warning",
                "source": "ict",
                "indicator": "x",
                "area": "son-la",
            },
        )
        is None
    )


def test_counters_live_only_in_the_registry_given() -> None:
    mine, other = CollectorRegistry(), CollectorRegistry()
    metrics = PipelineMetrics(mine)
    PipelineMetrics(other)

    metrics.rejected.labels("ict", "not_json").inc()

    labels = {"source": "ict", "reason": "not_json"}
    assert mine.get_sample_value("ioc_events_rejected_total", labels) == 1
    assert other.get_sample_value("ioc_events_rejected_total", labels) is None


def test_observing_a_batch_at_once_gives_what_observing_each_gives() -> None:
    amounts = [0.0, 0.005, 0.0051, 0.3, 0.25, 7.0, 31.0, 1e9, 0.01]
    one, each = CollectorRegistry(), CollectorRegistry()
    batched = Histogram("h", "h", buckets=(0.005, 0.01, 0.25, 5, 30), registry=one)
    single = Histogram("h", "h", buckets=(0.005, 0.01, 0.25, 5, 30), registry=each)
    observe_all(batched, amounts)
    observe_all(batched, [])
    for amount in amounts:
        single.observe(amount)
    assert samples(one) == samples(each)
    assert one.get_sample_value("h_bucket", {"le": "0.005"}) == 2
    assert one.get_sample_value("h_count") == len(amounts)


def samples(registry: CollectorRegistry) -> list[tuple[str, dict[str, str], float]]:
    return [
        (sample.name, sample.labels, sample.value)
        for family in registry.collect()
        for sample in family.samples
        if not sample.name.endswith("_created")
    ]


class _Threads(LoopCollector):
    """A loop collector that notes the thread it is read on."""

    def __init__(self) -> None:
        self.threads: list[int] = []

    def read(self) -> Iterator[Metric]:
        self.threads.append(threading.get_ident())
        yield GaugeMetricFamily("ioc_test_loop_value", "Read on the loop.", value=len(self.threads))


class _Waiting(Collector):
    """A collector that can only finish once the event loop has run something meanwhile."""

    def __init__(self, loop_ran: threading.Event) -> None:
        self.loop_ran = loop_ran
        self.threads: list[int] = []

    def collect(self) -> Iterator[Metric]:
        self.threads.append(threading.get_ident())
        ran = self.loop_ran.wait(timeout=10)  # on the loop's thread this could never be set
        yield GaugeMetricFamily("ioc_test_loop_ran", "The loop ran meanwhile.", value=float(ran))


def test_a_scrape_is_rendered_off_the_event_loop_while_the_loop_goes_on() -> None:
    monitor = fake_monitor()
    monitor.registry = registry_for(monitor)
    loop_ran = threading.Event()
    waiting, threads = _Waiting(loop_ran), _Threads()
    monitor.registry.register(waiting)
    monitor.loop_collectors = [threads]
    monitor.registry.register(threads)
    monitor.tables["series"]["k"] = series_row({"2023": 69.46})

    async def scrape_while_the_loop_works() -> tuple[bytes, int]:
        rendering = asyncio.ensure_future(render(monitor))
        await asyncio.sleep(0.01)  # the loop is free while the scrape renders
        loop_ran.set()
        return await rendering, threading.get_ident()

    body, loop_thread = asyncio.run(scrape_while_the_loop_works())

    assert b"ioc_test_loop_ran 1.0" in body
    assert waiting.threads
    assert waiting.threads[0] != loop_thread
    # What only the loop may read was read on the loop, and its families were rendered.
    assert threads.threads == [loop_thread]
    assert b"ioc_test_loop_value 1.0" in body
    assert b'ioc_indicator_value{area="son-la"' in body


class _Writing(Collector):
    """A collector that changes the series table once the scrape has begun."""

    def __init__(self, tables: dict[str, dict[str, Any]]) -> None:
        self.tables = tables

    def collect(self) -> Iterator[Metric]:
        self.tables["series"]["k"] = series_row({"2023": 69.46, "2024": 80.0})
        self.tables["series"]["other"] = {**series_row({"2024": 1.0}), "area": "moc-chau"}
        return iter(())


def test_a_scrape_shows_the_rows_as_they_were_when_it_began() -> None:
    monitor = fake_monitor()
    monitor.registry = CollectorRegistry()
    monitor.registry.register(_Writing(monitor.tables))  # collected first
    monitor.registry.register(SeriesCollector(monitor))
    monitor.tables["series"]["k"] = series_row({"2023": 69.46})

    body = asyncio.run(render(monitor)).decode()

    shown = 'indicator="online_application_rate",level="province",source="ict"}'
    assert f'ioc_indicator_value{{area="son-la",{shown} 69.46' in body
    assert "moc-chau" not in body
    # Outside a scrape, collectors read the tables as they are now.
    labels = RATE | {"level": "province"}
    assert monitor.registry.get_sample_value("ioc_indicator_value", labels) == 80.0
