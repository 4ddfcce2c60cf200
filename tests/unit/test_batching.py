"""Batched table writes: read-your-writes, one record per key, on the owning event's partition,
in the bytes Faust's own table write would produce (so its recovery reads them); and what a
closing batch hands to the producer."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from faust.utils import json as faust_json_codec
from mode.utils.collections import FastUserDict
from prometheus_client import CollectorRegistry

from agents.app import Batch, Outgoing
from agents.batching import BatchedTable, faust_json
from agents.metrics import PipelineMetrics
from agents.transport import OutRecord
from ioc.clock import SystemClock


@dataclass(frozen=True)
class Message:
    partition: int


class Event:
    """Stands in for a Faust event: only its message's partition matters here."""

    def __init__(self, partition: int) -> None:
        self.message = Message(partition)


def test_each_key_is_written_once_on_the_partition_of_its_last_event() -> None:
    storage: dict[str, object] = {}
    batch = BatchedTable(storage)
    first, second, third = Event(0), Event(1), Event(0)

    batch.event = first
    batch["a"] = 1
    batch.event = second
    batch["b"] = 10
    batch.event = third
    batch["a"] = batch["a"] + 1  # reads its own pending write

    assert storage == {}  # nothing reaches the storage before the flush
    records = batch.flush()
    assert storage == {"a": 2, "b": 10}
    assert sorted(records) == [
        OutRecord(0, b'"a"', b"2"),
        OutRecord(1, b'"b"', b"10"),
    ]
    assert batch.flush() == []  # a second flush has nothing left to write


def test_deletes_and_missing_keys() -> None:
    storage: dict[str, object] = {"gone": 1}
    batch = BatchedTable(storage)
    batch.event = Event(1)

    del batch["gone"]
    assert "gone" not in batch
    assert batch.get("gone") is None
    assert batch.get("gone", "fallback") == "fallback"
    with pytest.raises(KeyError):
        del batch["never"]
    assert batch.flush() == [OutRecord(1, b'"gone"', None)]  # a tombstone
    assert "gone" not in storage


def test_a_table_of_raw_values_writes_them_as_they_are() -> None:
    storage: dict[str, object] = {"a|b|2024": b"\x00\x00old"}
    batch = BatchedTable(storage, raw_values=True)
    batch.event = Event(2)
    batch["a|b|2024"] = b"\x00\x01entry"
    del batch["a|b|2024"]
    batch["a|b|2025"] = b"\x00\x02entry"
    assert batch.flush() == [
        OutRecord(2, b'"a|b|2024"', None),
        OutRecord(2, b'"a|b|2025"', b"\x00\x02entry"),
    ]
    assert storage == {"a|b|2025": b"\x00\x02entry"}


def test_records_are_the_bytes_of_fausts_json_codec() -> None:
    value = {"periods": {"2024-Q3": [69.46, None, None, "2024-10-05T01:00:00+00:00"]}, "n": 1}
    assert faust_json(value) == faust_json_codec.dumps(value)
    assert faust_json("ict|son-la") == faust_json_codec.dumps("ict|son-la")


class RecordingProducer:
    """Records what ``Outgoing`` hands to the producer, per topic."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, list[OutRecord]]] = []

    async def send_records(self, topic: str, records: list[OutRecord]) -> list[Any]:
        self.sent.append((topic, list(records)))
        return []


async def test_a_batch_sends_its_changelogs_and_one_record_per_posted_key() -> None:
    producer = RecordingProducer()
    registry = CollectorRegistry()
    metrics = PipelineMetrics(registry, ["ict"])
    changelog = SimpleNamespace(get_topic_name=lambda: "ioc-monitor-series-changelog")
    table = SimpleNamespace(data={}, value_serializer="json", changelog_topic=changelog)
    batch = Batch(
        Outgoing(SimpleNamespace(producer=producer), metrics), {"series": table}, {}, SystemClock()
    )

    batch.at(Event(1))
    batch.tables["series"]["a"] = {"v": 1}
    batch.post("ioc.internal.rollups", b"k1", {"n": 1})
    batch.tally(metrics.received, "ict")
    batch.at(Event(0))
    batch.post("ioc.internal.rollups", b"k2", {"n": 2})
    batch.post("ioc.internal.rollups", b"k1", {"n": 3})
    batch.tally(metrics.received, "ict")
    assert producer.sent == []  # nothing leaves before the batch closes
    assert registry.get_sample_value("ioc_events_received_total", {"source": "ict"}) == 0

    await batch.close()
    assert table.data == {"a": {"v": 1}}
    assert producer.sent == [
        ("ioc-monitor-series-changelog", [OutRecord(1, b'"a"', b'{"v":1}', None)]),
        (
            "ioc.internal.rollups",
            [
                OutRecord(None, b"k1", b'{"items":[{"n":1},{"n":3}]}', None),
                OutRecord(None, b"k2", b'{"items":[{"n":2}]}', None),
            ],
        ),
    ]
    assert registry.get_sample_value("ioc_events_received_total", {"source": "ict"}) == 2
    assert registry.get_sample_value("ioc_records_produced_total") == 3


async def test_gathered_items_are_posted_once_per_group_in_posting_order() -> None:
    producer = RecordingProducer()
    metrics = PipelineMetrics(CollectorRegistry(), ["ict"])
    batch = Batch(Outgoing(SimpleNamespace(producer=producer), metrics), {}, {}, SystemClock())

    def head(period: str) -> Any:
        return lambda: {"period": period}

    batch.at(Event(0))
    batch.gather("receipts", b"ict", ("ict", "2025-03"), head("2025-03"), "areas")["a"] = 1
    batch.post("receipts", b"ict", {"tick": True})
    batch.gather("receipts", b"ict", ("ict", "2025-04"), head("2025-04"), "areas")["a"] = 2
    batch.gather("receipts", b"ict", ("ict", "2025-03"), head("never"), "areas")["b"] = 3
    await batch.close()
    batch.gather("receipts", b"ict", ("ict", "2025-03"), head("2025-03"), "areas")["c"] = 4
    await batch.close()  # a new batch: the group starts again

    items = [
        orjson.loads(record.value)["items"] for _, records in producer.sent for record in records
    ]
    assert items == [
        [
            {"period": "2025-03", "areas": {"a": 1, "b": 3}},
            {"tick": True},
            {"period": "2025-04", "areas": {"a": 2}},
        ],
        [{"period": "2025-03", "areas": {"c": 4}}],
    ]


class Store(FastUserDict[str, Any]):
    """As Faust's in-memory store: a mapping over a dict, ``.data``, that counts the lookups
    that fail through it."""

    def __init__(self, rows: dict[str, Any]) -> None:
        self.data = rows
        self.misses = 0

    def __getitem__(self, key: str) -> Any:
        if key not in self.data:
            self.misses += 1
        return self.data[key]


def test_over_a_faust_store_reads_its_rows_and_writes_through_it() -> None:
    store = Store({"a": 1})
    table = BatchedTable(store)
    table.event = Event(0)
    assert table.get("a") == 1
    assert table.get("missing", "d") == "d"
    assert "missing" not in table
    assert store.misses == 0  # a missing key is not a KeyError raised and caught each time
    table["b"] = 2
    assert store.data == {"a": 1}  # not before the flush
    table.flush()
    assert store.data == {"a": 1, "b": 2}


def test_a_key_written_in_the_batch_is_its_own_until_the_flush() -> None:
    table = BatchedTable({"stored": {"v": 1}, "gone": {"v": 2}})
    table.event = Event(0)
    assert not table.written("stored")  # held by the storage: to be copied, not changed
    table["new"] = {"v": 3}
    del table["gone"]
    assert table.written("new")
    assert not table.written("gone")
    table.flush()
    assert not table.written("new")  # the storage holds it now
