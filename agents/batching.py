"""Write each Faust table key once per batch, on the partition of the event that owns it.

Every table write serialises a changelog record. An agent that takes events in batches
(``stream.take_events``) reads and writes through a :class:`BatchedTable`: reads see the
batch's own writes, and :meth:`BatchedTable.flush` writes each touched key once.

The write goes to the table's storage directly and the changelog record is returned to the
agent, which hands it to the producer itself (:meth:`agents.app.Batch.close`). A Faust table
write (``table[key] = value``) would put the record on Faust's producer buffer, a queue that
one task drains record by record and that pauses every stream once it holds more than 100:
a batch writes thousands of keys, so every batch stalled the worker. The record is the one
Faust writes (same topic, partition, JSON of key and value, or the value's own bytes in a
table of ``value_type=bytes``), so recovery reads it as usual.

Faust would send a write to the changelog partition of the *current event*; inside a batch
that is the last event of the batch, whatever its partition. Each pending write therefore
keeps the event that last touched its key, and its record goes to that event's partition.
Every key of this project is derived from the key of the message that touches it, so that
event's partition is the key's.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any

import orjson

from agents.transport import OutRecord

_DELETED = object()
#: The options of Faust's own JSON codec (``faust.utils.json.dumps``): identical bytes.
_FAUST_JSON = orjson.OPT_NON_STR_KEYS | orjson.OPT_UTC_Z


def faust_json(value: Any) -> bytes:
    """``value`` serialised as Faust's ``json`` codec serialises table keys and values."""
    return orjson.dumps(value, option=_FAUST_JSON)


class BatchedTable(MutableMapping[str, Any]):
    """A write-back overlay on a table's storage for the duration of one batch.

    ``storage`` is where the table keeps its rows (a Faust table's ``.data``, or a dict in
    tests); it is read directly, without Faust's per-read sensors. A table of ``raw_values``
    (Faust's ``value_type=bytes``) holds bytes, written to its changelog as they are.
    """

    def __init__(self, storage: MutableMapping[str, Any], raw_values: bool = False) -> None:
        self.storage = storage
        self.raw_values = raw_values
        # Faust's in-memory stores are mappings over their rows (``.data``: a dict, or a
        # :class:`agents.stores.PeriodRows`) without a ``get`` of their own: the
        # ``Mapping.get`` they inherit raises and catches a KeyError for every key not there,
        # which is most of them (new reports, alerts that do not hold).
        # Writes go to the rows too: a Faust memory store's ``__setitem__`` is only
        # ``self.data[key] = value``, one Python call more per row.
        rows = getattr(storage, "data", None)
        self._rows: MutableMapping[str, Any] = rows if isinstance(rows, MutableMapping) else storage
        self.event: Any = None  # the event being processed; set by the agent
        self._pending: dict[str, tuple[Any, Any]] = {}

    def __getitem__(self, key: str) -> Any:
        if key in self._pending:
            value = self._pending[key][1]
            if value is _DELETED:
                raise KeyError(key)
            return value
        value = self._rows.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key``, or ``default`` (one lookup, not Mapping's try/except)."""
        pending = self._pending.get(key)
        if pending is not None:
            return default if pending[1] is _DELETED else pending[1]
        value = self._rows.get(key)
        return default if value is None else value

    def written(self, key: str) -> bool:
        """Whether this batch wrote ``key`` (and did not delete it). The agents write fresh
        objects only, so such a value is the batch's own until :meth:`flush`: nothing else
        holds it, and it may be changed in place."""
        pending = self._pending.get(key)
        return pending is not None and pending[1] is not _DELETED

    def __setitem__(self, key: str, value: Any) -> None:
        self._pending[key] = (self.event, value)

    def __delitem__(self, key: str) -> None:
        if key not in self:
            raise KeyError(key)
        self._pending[key] = (self.event, _DELETED)

    def __iter__(self) -> Iterator[str]:
        seen = set()
        for key, (_, value) in self._pending.items():
            seen.add(key)
            if value is not _DELETED:
                yield key
        yield from (key for key in self.storage if key not in seen)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def flush(self) -> list[OutRecord]:
        """Write every touched key once to the storage; return the changelog records, to
        be produced on the table's changelog topic (a value of None is a delete)."""
        records: list[OutRecord] = []
        append, rows, dumps, raw = records.append, self._rows, orjson.dumps, self.raw_values
        # One row per event for the dedupe table: the loop is written for that. A record is
        # built with tuple.__new__ (OutRecord's own __new__ is a Python function).
        new = tuple.__new__
        for key, (event, value) in self._pending.items():
            partition: int = event.message.partition
            if value is _DELETED:
                if rows.pop(key, None) is not None:
                    append(new(OutRecord, (partition, dumps(key, option=_FAUST_JSON), None, None)))
            else:
                rows[key] = value
                record = (
                    partition,
                    dumps(key, option=_FAUST_JSON),
                    value if raw else dumps(value, option=_FAUST_JSON),
                    None,
                )
                append(new(OutRecord, record))
        self._pending.clear()
        return records
