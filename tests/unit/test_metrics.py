"""Metrics come from an injected registry, and table values are read at scrape time."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, generate_latest

from agents.metrics import LatestValuesCollector, PipelineMetrics


def row(indicator: str, area: str, value: float) -> dict[str, Any]:
    return {"source": "ict", "indicator": indicator, "area": area, "value": value}


def test_collector_reads_the_table_at_each_scrape() -> None:
    table: dict[str, dict[str, Any]] = {}
    registry = CollectorRegistry()
    registry.register(LatestValuesCollector(table.items))

    table["a|son-la"] = row("a", "son-la", 69.46)
    first = registry.get_sample_value(
        "ioc_indicator_value", {"source": "ict", "indicator": "a", "area": "son-la"}
    )
    table["a|son-la"] = row("a", "son-la", 70.0)
    second = registry.get_sample_value(
        "ioc_indicator_value", {"source": "ict", "indicator": "a", "area": "son-la"}
    )
    del table["a|son-la"]

    assert (first, second) == (69.46, 70.0)
    assert b"ioc_indicator_value{" not in generate_latest(registry)


def test_counters_live_only_in_the_registry_given() -> None:
    mine, other = CollectorRegistry(), CollectorRegistry()
    metrics = PipelineMetrics(mine)
    PipelineMetrics(other)

    metrics.rejected.labels("ict", "not_json").inc()

    labels = {"source": "ict", "reason": "not_json"}
    assert mine.get_sample_value("ioc_events_rejected_total", labels) == 1
    assert other.get_sample_value("ioc_events_rejected_total", labels) is None
