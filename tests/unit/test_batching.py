"""Batched table writes: read-your-writes, one write per key, on the owning event's partition."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from agents.batching import BatchedTable


class FakeStream:
    """Records which event was current at each table write, as Faust's contextvar would."""

    def __init__(self) -> None:
        self.current: Any = None

    def _set_current_event(self, event: Any) -> None:
        self.current = event


class RecordingTable(dict[str, Any]):
    def __init__(self, stream: FakeStream) -> None:
        super().__init__()
        self.stream = stream
        self.writes: list[tuple[str, Any]] = []

    def __setitem__(self, key: str, value: Any) -> None:
        self.writes.append((key, self.stream.current.partition))
        super().__setitem__(key, value)


def test_each_key_is_written_once_on_the_partition_of_its_last_event() -> None:
    stream = FakeStream()
    table = RecordingTable(stream)
    batch = BatchedTable(table)
    first, second, third = (SimpleNamespace(partition=p) for p in (0, 1, 0))

    batch.event = first
    batch["a"] = 1
    batch.event = second
    batch["b"] = 10
    batch.event = third
    batch["a"] = batch["a"] + 1  # reads its own pending write

    assert table == {}  # nothing reaches the table before the flush
    assert batch.flush(stream) == 2
    assert table == {"a": 2, "b": 10}
    assert sorted(table.writes) == [("a", 0), ("b", 1)]


def test_deletes_and_missing_keys() -> None:
    stream = FakeStream()
    table = RecordingTable(stream)
    dict.__setitem__(table, "gone", 1)
    batch = BatchedTable(table)
    batch.event = SimpleNamespace(partition=0)

    del batch["gone"]
    assert "gone" not in batch
    assert batch.get("gone") is None
    with pytest.raises(KeyError):
        del batch["never"]
    batch.flush(stream)
    assert "gone" not in table
