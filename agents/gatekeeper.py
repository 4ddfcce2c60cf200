"""The validator's decision for one feed message: forward it, reject it, or drop a duplicate.

This is the whole logic of the validator agent, kept free of Faust so it can be tested with a
plain dict (and with hypothesis) and run unchanged by the agent over a Faust table.

Every input ends in exactly one outcome:

* :class:`Forward`   valid and new (or a correction): goes to ``ioc.indicators``;
* :class:`Reject`    broken, spoofed, out of contract or stale: goes to ``ioc.deadletter``;
* :class:`Duplicate` an event id already seen for that series and period: counted, dropped.

State is one entry per (indicator, area, period), on the partition of the feed message whose
key is ``indicator|area``: that is why the key is part of the contract. An entry is one
``bytes``: when the current value was sent (epoch microseconds, 8 bytes, big-endian, signed),
then for each event id remembered, oldest first, its 16 bytes and the position it was read
from (:func:`position_of`, 7 bytes; all ones when unknown). A million distinct reports means
a million entries, so the entry is kept small: 31 bytes for one id, a 64-byte object, where
the string ``"sent id origin"`` before it took 112 (about 56 characters), the flat list
``[sent, id, origin, ...]`` before that 270, and the dict of dicts of strings three times as
much. All three are still read, from changelogs written before (JSON; the table's values are
raw bytes now, and an entry never begins with the byte of a JSON string, list or object). The
worker keeps the table in :class:`agents.stores.PeriodStore`, which holds the key strings per
series.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from ioc.clock import Clock
from streams.catalogue import Catalogue
from streams.events import IndicatorEvent
from streams.periods import LOCAL_TZ
from streams.validation import Rejection, check_against_catalogue, parse_feed_message

#: Event ids remembered per (indicator, area, period): the current one and the corrections it
#: replaced. An agency re-sending a correction older than this many is judged by sent_at.
MAX_IDS_PER_PERIOD = 16


@dataclass(frozen=True, slots=True)
class Forward:
    """A valid event to publish on ``ioc.indicators``."""

    event: IndicatorEvent
    correction: bool


@dataclass(frozen=True, slots=True)
class Reject:
    """A message for the dead-letter topic (with the event, when it could be parsed)."""

    rejection: Rejection
    event: IndicatorEvent | None = None


@dataclass(frozen=True, slots=True)
class Duplicate:
    """An event already received (same event id): counted, not forwarded."""

    event: IndicatorEvent


Outcome = Forward | Reject | Duplicate


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
#: Bits of a position that hold the partition (the offset is above them).
_PARTITION_BITS = 16
#: Bytes of an entry: when its value was sent, then per event id the id and its position.
_SENT_BYTES, _ID_BYTES, _POSITION_BYTES = 8, 16, 7
_ID_AND_POSITION = _ID_BYTES + _POSITION_BYTES
#: The position of an entry's id that is not known (or does not fit its 7 bytes: an offset
#: past 2**40, which no partition reaches; such an id, read again, is judged a duplicate).
_UNKNOWN_POSITION = (1 << (8 * _POSITION_BYTES)) - 1
#: The first byte of an entry written as JSON, before entries were bytes: a string, a list,
#: or an object. An entry's first byte is the top of its sent time: 0 (or 255 before 1970).
_JSON_FIRST_BYTES = frozenset(b'"[{')
#: A position not known, in an entry written as a string.
_UNKNOWN = "-"


def state_key(event: IndicatorEvent) -> str:
    """The key of the dedupe state of an event's series and period."""
    return f"{event.indicator}|{event.area}|{event.period}"


def position_of(partition: int, offset: int) -> int:
    """Where a feed message was read, as one number. The topic is implied: an event that
    gets this far came on its own source's feed (``source_mismatch`` is checked first)."""
    return (offset << _PARTITION_BITS) | partition


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


def _shown(micros: int) -> str:
    return (_EPOCH + timedelta(microseconds=micros)).astimezone(LOCAL_TZ).isoformat()


def remembered(state: Any) -> tuple[int, dict[bytes, int | None]]:
    """A dedupe entry read: when its value was sent (epoch microseconds), and the event ids
    remembered (16 bytes each) with the position each was read from (oldest first)."""
    if isinstance(state, bytes):
        if state and state[0] in _JSON_FIRST_BYTES:
            return remembered(orjson.loads(state))  # written before entries were bytes
        sent = int.from_bytes(state[:_SENT_BYTES], "big", signed=True)
        ids: dict[bytes, int | None] = {}
        for at in range(_SENT_BYTES, len(state), _ID_AND_POSITION):
            after_id = at + _ID_BYTES
            position = int.from_bytes(state[after_id : at + _ID_AND_POSITION], "big")
            ids[state[at:after_id]] = None if position == _UNKNOWN_POSITION else position
        return sent, ids
    if isinstance(state, str):  # "sent id origin id origin ...", in hex
        sent_hex, *rest = state.split(" ")
        positions = (None if p == _UNKNOWN else int(p, 16) for p in rest[1::2])
        return int(sent_hex, 16), dict(zip(map(bytes.fromhex, rest[::2]), positions, strict=True))
    if isinstance(state, dict):  # the first format: {"sent_at": iso, "ids": {uuid: origin}}
        old = {id_bytes(i): _old_position(o) for i, o in state["ids"].items()}
        return _micros(datetime.fromisoformat(state["sent_at"])), old
    # The flat list [sent, id, origin, ...], ids in hex.
    return state[0], dict(zip(map(id_bytes, state[1::2]), state[2::2], strict=True))


def _position_bytes(position: int | None) -> bytes:
    if position is None or not 0 <= position < _UNKNOWN_POSITION:
        position = _UNKNOWN_POSITION
    return position.to_bytes(_POSITION_BYTES, "big")


def entry_of(sent: int, ids: dict[bytes, int | None]) -> bytes:
    """The dedupe entry of a value sent at ``sent`` (epoch microseconds), remembering ``ids``
    (event id to position, oldest first): the newest :data:`MAX_IDS_PER_PERIOD` of them."""
    sent_bytes = sent.to_bytes(_SENT_BYTES, "big", signed=True)
    if len(ids) == 1:  # the common case: the first report of a period
        ((kept_id, position),) = ids.items()
        return sent_bytes + kept_id + _position_bytes(position)
    parts = [sent_bytes]
    for kept_id, position in list(ids.items())[-MAX_IDS_PER_PERIOD:]:
        parts += (kept_id, _position_bytes(position))
    return b"".join(parts)


def id_bytes(event_id: str) -> bytes:
    """An event id as entries keep it (``UUID.bytes``), from its text (with or without
    hyphens)."""
    return bytes.fromhex(event_id.replace("-", ""))


def _old_position(origin: str) -> int | None:
    # "topic/partition/offset", as the old entries kept it.
    try:
        _, partition, offset = origin.rsplit("/", 2)
        return position_of(int(partition), int(offset))
    except ValueError:
        return None


class Gatekeeper:
    """Judges feed messages against the contract, the catalogue and what was already seen."""

    def __init__(self, catalogue: Catalogue, clock: Clock, seen: MutableMapping[str, Any]) -> None:
        self.catalogue = catalogue
        self.clock = clock
        self.seen = seen

    def judge(
        self, raw: bytes | None, key: bytes | None, topic_source: str, origin: int | None = None
    ) -> Outcome:
        """Decide the fate of one message read from the feed of ``topic_source``.

        ``origin`` is where the message was read (:func:`position_of`). After a crash the
        worker reads again what it had not committed; the state may already hold those
        events. A message whose id was recorded *from this very origin* is a replay and is
        forwarded again (everything downstream is idempotent); the same id from elsewhere is
        a duplicate.
        Updates the dedupe state for forwarded events. Never raises on any input.
        """
        parsed = parse_feed_message(raw, topic_source)
        if isinstance(parsed, Rejection):
            return Reject(parsed)
        event = parsed
        if key != event.key:
            shown = key.decode("utf-8", "replace") if key is not None else None
            expected = event.key.decode()
            return Reject(
                event=event,
                rejection=Rejection(
                    "wrong_key",
                    f"Khoá bản tin phải là '{expected}' (SDK tự đặt); nhận được {shown!r}",
                    f"The message key must be '{expected}' (the SDK sets it); received {shown!r}",
                    "key",
                ),
            )
        rejection = check_against_catalogue(event, self.catalogue, self.clock.now())
        if rejection is not None:
            return Reject(rejection, event)
        return self._against_history(event, origin)

    def _against_history(self, event: IndicatorEvent, origin: int | None) -> Outcome:
        skey = state_key(event)
        state = self.seen.get(skey)
        event_id = event.event_id.bytes
        sent = _micros(event.sent_at)
        ids: dict[bytes, int | None] = {}
        if state is not None:
            current_sent, ids = remembered(state)
            if event_id in ids:
                if origin is not None and ids[event_id] == origin:
                    return Forward(event, correction=False)  # a replay after a crash
                return Duplicate(event)
            if sent < current_sent:
                shown = _shown(current_sent)
                return Reject(
                    event=event,
                    rejection=Rejection(
                        "superseded",
                        f"Đã có số liệu gửi lúc {shown} cho kỳ này, mới hơn bản này "
                        f"(gửi lúc {event.sent_at.isoformat()})",
                        f"A value sent at {shown} for this period is newer than this "
                        f"one (sent at {event.sent_at.isoformat()})",
                        "sent_at",
                    ),
                )
        ids[event_id] = origin
        self.seen[skey] = entry_of(sent, ids)
        return Forward(event, correction=state is not None)
