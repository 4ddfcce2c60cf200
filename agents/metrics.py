"""Prometheus metrics of the worker, registered on an injected registry (never the global one).

Counters are updated as events flow. Values that live in Faust tables are read at scrape time
by custom collectors, so a scrape always shows the tables as they are now and nothing has to be
kept in sync by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


class PipelineMetrics:
    """Counters of what entered the pipeline, per source (a bounded label set: 41 sources)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.received = Counter(
            "ioc_events_received",
            "Messages read from the feed topics, valid or not.",
            ["source"],
            registry=registry,
        )
        self.rejected = Counter(
            "ioc_events_rejected",
            "Messages sent to the dead-letter topic, by reason code.",
            ["source", "reason"],
            registry=registry,
        )
        self.accepted = Counter(
            "ioc_events_accepted",
            "Valid events forwarded to the indicators topic.",
            ["source"],
            registry=registry,
        )
        self.duplicates = Counter(
            "ioc_events_duplicate",
            "Events dropped because their event id was already received.",
            ["source"],
            registry=registry,
        )
        self.corrections = Counter(
            "ioc_events_correction",
            "Valid events that replace an earlier value for the same period.",
            ["source"],
            registry=registry,
        )
        self.internal_errors = Counter(
            "ioc_internal_errors",
            "Records an agent could not process (a bug or a foreign writer), by stage.",
            ["stage"],
            registry=registry,
        )


class LatestValuesCollector(Collector):
    """``ioc_indicator_value{source,indicator,area}`` read from the latest-values table."""

    def __init__(self, items: Callable[[], Iterable[tuple[Any, Mapping[str, Any]]]]) -> None:
        self._items = items

    def collect(self) -> Iterator[Metric]:
        """Yield one gauge sample per (indicator, area) the worker holds."""
        family = GaugeMetricFamily(
            "ioc_indicator_value",
            "Latest reported value of an indicator for an area.",
            labels=["source", "indicator", "area"],
        )
        for _key, row in self._items():
            family.add_metric([row["source"], row["indicator"], row["area"]], row["value"])
        yield family

    def describe(self) -> Iterator[Metric]:
        """Describe without reading the table (registration happens before it is ready)."""
        yield GaugeMetricFamily(
            "ioc_indicator_value",
            "Latest reported value of an indicator for an area.",
            labels=["source", "indicator", "area"],
        )
