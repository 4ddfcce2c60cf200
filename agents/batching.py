"""Write each Faust table key once per batch, on the partition of the event that owns it.

Every table write serialises a changelog record. An agent that takes events in batches
(``stream.take_events``) reads and writes through a :class:`BatchedTable`: reads see the
batch's own writes, and :meth:`BatchedTable.flush` writes each touched key once.

Faust sends a table write to the changelog partition of the *current event*; inside a batch
that would be the last event of the batch, whatever its partition. ``flush`` therefore makes
the event that last touched a key current before writing it. Every key of this project is
derived from the key of the message that touches it, so that event's partition is the key's.

Only the context variable the tables read is set, and reset after each write. The stream's
own ``current_event`` attribute must not be touched: ``take_events`` reads it to pair each
buffered value with its event, and a stale one there silently swapped a message for an old
one (the new message was never processed nor acknowledged).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, MutableMapping
from typing import Any

from faust.streams import _current_event

_DELETED = object()


class BatchedTable(MutableMapping[str, Any]):
    """A write-back overlay on a Faust table for the duration of one batch."""

    def __init__(self, table: MutableMapping[str, Any]) -> None:
        self.table = table
        self.event: Any = None  # the event being processed; set by the agent
        self._pending: dict[str, tuple[Any, Any]] = {}

    def __getitem__(self, key: str) -> Any:
        if key in self._pending:
            value = self._pending[key][1]
            if value is _DELETED:
                raise KeyError(key)
            return value
        value = self.table.get(key)
        if value is None:
            raise KeyError(key)
        return value

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
        yield from (key for key in self.table if key not in seen)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def flush(self) -> int:
        """Write every touched key once; return how many writes were made."""
        written = 0
        for key, (event, value) in self._pending.items():
            token = _current_event.set(weakref.ref(event))  # the changelog partition is its
            try:
                if value is _DELETED:
                    if key in self.table:
                        del self.table[key]
                        written += 1
                else:
                    self.table[key] = value
                    written += 1
            finally:
                _current_event.reset(token)
        self._pending.clear()
        return written
