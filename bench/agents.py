"""The worker's agents alone, in process: no broker, no Faust delivery (``ioc bench-agents``).

The end-to-end benchmark (:mod:`bench.worker`) measures the worker as it runs, broker and
Faust included, on a shared two-core machine whose speed moves by ±15 % from run to run. To
see what a change to the agents' own code gives, this runs that code alone on the same data:
the benchmark's pre-load goes through the ingest agent's handler in batches as large as the
worker's (:data:`agents.app.FETCH_RECORDS` × :data:`agents.app.BATCH_SIZE` records), and the
records it posts go through the rollup, rules and reporting handlers, each in batches of its
own, as the worker's later agents read them. Tables are in-memory stores as the worker's
(``validator_seen`` in a :class:`agents.stores.PeriodRows`); what the batches produce is kept
in memory and dropped.

Under valgrind the instruction count of a round does not depend on the machine's load::

    valgrind --tool=cachegrind --cache-sim=no .venv/bin/ioc bench-agents --events 20000 --rounds 1
    valgrind --tool=cachegrind --cache-sim=no .venv/bin/ioc bench-agents --events 20000 --rounds 2

The difference of the two totals (``I refs``), over the events, is the instructions per event of
one round: start-up, the data and the app are the same in both runs.
"""

from __future__ import annotations

import asyncio
import gc
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from prometheus_client import CollectorRegistry

from agents.app import (
    BATCH_SIZE,
    FETCH_RECORDS,
    Batch,
    Handler,
    Monitor,
    Outgoing,
    _Agents,
    create_app,
)
from agents.stores import PeriodRows
from agents.transport import OutRecord
from agents.worker import tune_garbage_collector
from bench.dataset import Dataset
from bench.load import Partitioner
from bench.worker import samples_of, total
from ioc.clock import SystemClock
from ioc.settings import Settings
from streams.catalogue import Catalogue

#: Feed records handed to the ingest agent before the later agents read what it posted (as
#: the worker's later agents read behind its ingest agent).
WINDOW = 5 * FETCH_RECORDS * BATCH_SIZE
#: Rounds of rollups at most after each window: a child's rollup is posted to its parent, so
#: each level of the hierarchy is one round (commune, district, province).
ROLLUP_LEVELS = 4


@dataclass
class AgentsRound:
    """One round: seconds spent per stage, and what the ingest agent counted."""

    events: int
    seconds: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    records: dict[str, int] = field(default_factory=dict)  # records produced, per stage

    @property
    def total_seconds(self) -> float:
        """Seconds of every stage together."""
        return sum(self.seconds.values())

    @property
    def events_per_second(self) -> float:
        """Feed messages per second of all the agents' work."""
        return self.events / self.total_seconds if self.total_seconds else 0.0

    def to_json(self) -> dict[str, Any]:
        """The round as plain data."""
        per_event = {stage: 1e6 * s / self.events for stage, s in self.seconds.items()}
        return {
            "events": self.events,
            "events_per_second": round(self.events_per_second),
            "microseconds_per_event": {stage: round(us, 2) for stage, us in per_event.items()},
            "counts": self.counts,
            "records": self.records,
        }


class _Kept(Outgoing):
    """An :class:`Outgoing` whose records stay in memory, by topic, instead of going out."""

    def __init__(self, monitor: Monitor, kept: dict[str, list[OutRecord]]) -> None:
        super().__init__(monitor.app, monitor.metrics)
        self.kept = kept

    async def send(self) -> None:
        records, self.records = self.records, {}
        for topic, batch in records.items():
            self.kept.setdefault(topic, []).extend(batch)


def _table(name: str, data: Any, value_serializer: str = "json") -> Any:
    # What Batch reads of a Faust table: its storage, its values' serializer and its
    # changelog topic's name.
    return SimpleNamespace(
        data=data,
        value_serializer=value_serializer,
        changelog_topic=SimpleNamespace(get_topic_name=lambda: name),
    )


def _messages(monitor: Monitor, dataset: Dataset, partitions: int) -> list[Any]:
    """The pre-load as the worker's consumer hands it over: topic, partition (as the
    project's producers pick it), offset, key, value, and the record's time in seconds."""
    partition_of = Partitioner(partitions)
    offsets: dict[tuple[str, int], int] = {}
    now = time.time()
    messages = []
    for record in dataset.load:
        topic = monitor.topics.feed(record.source)
        partition = partition_of(record.key)
        offset = offsets.get((topic, partition), 0)
        offsets[topic, partition] = offset + 1
        messages.append(message_of(topic, partition, offset, record.key, record.value, now))
    return messages


def message_of(
    topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None, at: Any
) -> Any:
    """A record as the worker's consumer hands it to an agent (``at``: its time in seconds,
    or None)."""
    return SimpleNamespace(
        topic=topic, partition=partition, offset=offset, key=key, value=value, timestamp=at
    )


class InProcessAgents:
    """The agents of one fresh app, on empty in-memory tables, fed by hand: each stage's
    handler (``ingest``, ``rollup``, ``rules``, ``reporting``) in batches as the worker's."""

    def __init__(self, settings: Settings, catalogue: Catalogue) -> None:
        self.registry = CollectorRegistry()
        self.monitor = create_app(settings, catalogue, SystemClock(), registry=self.registry)
        agents = _Agents(self.monitor)
        #: What the batches produced, by topic, until taken (:meth:`take`).
        self.kept: dict[str, list[OutRecord]] = {}
        self.stages: dict[str, tuple[Handler, dict[str, Any], dict[str, Any]]] = {
            "ingest": (
                agents._judge,
                {"seen": _table("seen", PeriodRows(), "raw"), "series": _table("series", {})},
                {"ingest": _table("ingest", {}), "series": _table("alerts", {})},
            ),
            "rollup": (agents._rollup_record, {"rollups": _table("rollups", {})}, {}),
            "rules": (
                agents._rule_record,
                {"inputs": _table("inputs", {})},
                {"rules": _table("rules", {})},
            ),
            "reporting": (
                agents._report_record,
                {"reporting": _table("reporting", {})},
                {"sources": _table("sources", {})},
            ),
        }

    def rows(self, stage: str, table: str) -> Any:
        """The rows of one of ``stage``'s tables."""
        return self.stages[stage][1][table].data

    async def feed(
        self, stage: str, messages: list[Any], result: AgentsRound | None = None
    ) -> None:
        """Hand ``messages`` to ``stage``'s handler, batch by batch (timed into ``result``)."""
        handle, tables, alerts = self.stages[stage]
        size = FETCH_RECORDS * BATCH_SIZE
        began = time.perf_counter()
        for start in range(0, len(messages), size):
            batch = Batch(_Kept(self.monitor, self.kept), tables, alerts, self.monitor.clock)
            for message in messages[start : start + size]:
                batch.at(SimpleNamespace(message=message))
                await handle(message, batch)
            await batch.close()
        if result is not None:
            result.seconds[stage] = result.seconds.get(stage, 0.0) + time.perf_counter() - began

    def take(self, topic: str) -> list[OutRecord]:
        """The records produced to ``topic`` since the last time it was taken."""
        return self.kept.pop(topic, [])

    def _read(self, topic: str, result: AgentsRound, stage: str) -> list[Any]:
        # What the batches posted to an internal topic, as the messages its agent reads.
        records = self.take(topic)
        result.records[stage] = result.records.get(stage, 0) + len(records)
        return [
            message_of(topic, record.partition or 0, offset, record.key, record.value, None)
            for offset, record in enumerate(records)
        ]

    async def run(self, messages: list[Any]) -> AgentsRound:
        """One round over the pre-load's ``messages``: each window through the ingest
        agent, then what it posted through the later agents."""
        topics = self.monitor.topics
        result = AgentsRound(events=len(messages))
        for start in range(0, len(messages), WINDOW):
            await self.feed("ingest", messages[start : start + WINDOW], result)
            for _ in range(ROLLUP_LEVELS):
                rollups = self._read(topics.rollups, result, "rollup")
                if not rollups:
                    break
                await self.feed("rollup", rollups, result)
            await self.feed("rules", self._read(topics.rules, result, "rules"), result)
            await self.feed("reporting", self._read(topics.receipts, result, "receipts"), result)
            self.kept.clear()  # what leaves the worker (ioc.indicators, changelogs, alerts)
        samples = samples_of(self.registry.collect())
        for name, metric in (
            ("accepted", "ioc_events_accepted_total"),
            ("duplicates", "ioc_events_duplicate_total"),
            ("rejected", "ioc_events_rejected_total"),
        ):
            result.counts[name] = round(total(samples, metric))
        return result


def measure_agents(
    settings: Settings, catalogue: Catalogue, dataset: Dataset, rounds: int = 1
) -> list[AgentsRound]:
    """Run the agents on ``dataset``'s pre-load ``rounds`` times, each on fresh tables, with
    the garbage collector tuned as in the worker (its defaults are back afterwards): with
    Python's own thresholds, collections took a tenth of the time, most of it in whatever
    allocated last."""
    results = []
    messages: list[Any] | None = None
    thresholds = gc.get_threshold()
    tune_garbage_collector()
    try:
        for _ in range(rounds):
            one = InProcessAgents(settings, catalogue)
            if messages is None:
                messages = _messages(one.monitor, dataset, settings.partitions)
            results.append(asyncio.run(one.run(messages)))
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
    return results
