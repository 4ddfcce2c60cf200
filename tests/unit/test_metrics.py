"""Metrics come from an injected registry; table values are read at scrape time."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from prometheus_client import CollectorRegistry, Histogram

from agents.metrics import (
    ALERT_TABLES,
    AlertCollector,
    PipelineMetrics,
    RollupCollector,
    SeriesCollector,
    SourceCollector,
    observe_all,
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
