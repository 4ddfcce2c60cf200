"""Which table rows belong to this worker now, so each series is exported exactly once.

Faust's in-memory store keeps rows a worker wrote itself even after a rebalance hands their
partition to another worker (it forgets only rows it recovered from a changelog). Every table
key here derives from the key of the message that wrote it, and the producers partition keys
with murmur2 (Java's, kafka-python's and aiokafka's default), so a row's partition can be
computed and checked against the worker's current active assignment.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from aiokafka.partitioner import murmur2

if TYPE_CHECKING:
    from agents.app import Monitor


#: Partitions of message keys remembered: every scrape asks for each exported row's, and
#: murmur2 in Python was a tenth of a scrape. The rows' series are bounded by the catalogue.
PARTITIONS_KEPT = 65_536


@lru_cache(maxsize=PARTITIONS_KEPT)
def partition_of(message_key: str, partitions: int) -> int:
    """The partition the default partitioner gives ``message_key``."""
    hashed: int = murmur2(message_key.encode())
    return (hashed & 0x7FFFFFFF) % partitions


def _same(key: str) -> str:
    return key


def _alert_series(fingerprint: str) -> str:
    _, _, indicator, area = fingerprint.split("|")
    return f"{indicator}|{area}"


def _alert_source(fingerprint: str) -> str:
    return fingerprint.split("|")[1]


def _seen(key: str) -> str:
    indicator, area, _ = key.split("|")
    return f"{indicator}|{area}"


def _topic_and_key(monitor: Monitor, table: str) -> tuple[str | None, Callable[[str], str]]:
    """The topic whose messages write ``table``, and the message key of a table key.

    A ``None`` topic means a feed topic: every feed is keyed ``indicator|area``.
    """
    topics = monitor.topics
    return {
        "validator_seen": (None, _seen),
        "alerts_ingest": (None, _alert_series),
        "series": (None, _same),
        "alerts_series": (None, _alert_series),
        "rollups": (topics.rollups, _same),
        "rule_inputs": (topics.rules, _same),
        "alerts_rules": (topics.rules, _alert_series),
        "reporting": (topics.receipts, _same),
        "alerts_sources": (topics.receipts, _alert_source),
    }[table]


def _owned_partitions(monitor: Monitor, topic: str | None) -> set[int] | None:
    """Partitions of ``topic`` actively assigned here; None before any assignment."""
    assignor = monitor.app.assignor
    if getattr(assignor, "_assignment", None) is None:
        return None
    feeds = monitor.topics.feed("")
    return {
        tp.partition
        for tp in assignor.assigned_actives()
        if (tp.topic == topic) or (topic is None and tp.topic.startswith(feeds))
    }


@dataclass(frozen=True, slots=True)
class TableRows:
    """The rows of one table at one moment, and what says which of them this worker owns.

    Taken on the event loop (:func:`take_rows`); :meth:`owned` may then run on any thread,
    since it reads nothing the agents change: the rows are a list of their own, and the
    agents never change a stored value in place (they store fresh ones: agents.batching).
    """

    rows: Sequence[tuple[str, Any]]
    #: The partitions of the table's topic actively assigned here; None: every row.
    owned_partitions: frozenset[int] | None = None
    message_key: Callable[[str], str] = _same
    partitions: int = 1

    def owned(self) -> Iterator[tuple[str, Any]]:
        """The rows (with a value) whose partition this worker owns."""
        owned, message_key, partitions = self.owned_partitions, self.message_key, self.partitions
        for key, value in self.rows:
            if value and (owned is None or partition_of(message_key(key), partitions) in owned):
                yield key, value


def take_rows(monitor: Monitor, table: str) -> TableRows:
    """The rows of ``table`` now, with the partitions this worker owns (all when alone)."""
    rows = list(monitor.tables[table].items())
    if getattr(monitor, "app", None) is None:  # not a running worker (unit tests, tools)
        return TableRows(rows)
    topic, message_key = _topic_and_key(monitor, table)
    owned = _owned_partitions(monitor, topic)
    if owned is None:
        return TableRows(rows)
    return TableRows(rows, frozenset(owned), message_key, monitor.settings.partitions)
