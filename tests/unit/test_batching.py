"""Batched table writes: read-your-writes, one write per key, on the owning event's partition."""

from __future__ import annotations

from typing import Any

import pytest
from faust.streams import current_event

from agents.batching import BatchedTable


class Event:
    """Stands in for a Faust event: only its partition matters here (weak-referenceable)."""

    def __init__(self, partition: int) -> None:
        self.partition = partition


class RecordingTable(dict[str, Any]):
    """Records the partition of the event current at each write, as Faust's table reads it."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[tuple[str, int]] = []

    def __setitem__(self, key: str, value: Any) -> None:
        event = current_event()
        assert event is not None, "a table write needs a current event"
        self.writes.append((key, event.partition))
        super().__setitem__(key, value)


def test_each_key_is_written_once_on_the_partition_of_its_last_event() -> None:
    table = RecordingTable()
    batch = BatchedTable(table)
    first, second, third = Event(0), Event(1), Event(0)

    batch.event = first
    batch["a"] = 1
    batch.event = second
    batch["b"] = 10
    batch.event = third
    batch["a"] = batch["a"] + 1  # reads its own pending write

    assert table == {}  # nothing reaches the table before the flush
    assert batch.flush() == 2
    assert table == {"a": 2, "b": 10}
    assert sorted(table.writes) == [("a", 0), ("b", 1)]
    assert current_event() is None  # nothing is left current after the flush


def test_deletes_and_missing_keys() -> None:
    table = RecordingTable()
    dict.__setitem__(table, "gone", 1)
    batch = BatchedTable(table)
    batch.event = Event(0)

    del batch["gone"]
    assert "gone" not in batch
    assert batch.get("gone") is None
    with pytest.raises(KeyError):
        del batch["never"]
    batch.flush()
    assert "gone" not in table
