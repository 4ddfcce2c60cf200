"""The validator's decision for one feed message: forward it, reject it, or drop a duplicate.

This is the whole logic of the validator agent, kept free of Faust so it can be tested with a
plain dict (and with hypothesis) and run unchanged by the agent over a Faust table.

Every input ends in exactly one outcome:

* :class:`Forward`   valid and new (or a correction): goes to ``ioc.indicators``;
* :class:`Reject`    broken, spoofed, out of contract or stale: goes to ``ioc.deadletter``;
* :class:`Duplicate` an event id already seen for that series and period: counted, dropped.

State is one entry per (indicator, area, period), on the partition of the feed message whose
key is ``indicator|area``: that is why the key is part of the contract.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ioc.clock import Clock
from streams.catalogue import Catalogue
from streams.events import IndicatorEvent
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


def state_key(event: IndicatorEvent) -> str:
    """The key of the dedupe state of an event's series and period."""
    return f"{event.indicator}|{event.area}|{event.period}"


class Gatekeeper:
    """Judges feed messages against the contract, the catalogue and what was already seen."""

    def __init__(self, catalogue: Catalogue, clock: Clock, seen: MutableMapping[str, Any]) -> None:
        self.catalogue = catalogue
        self.clock = clock
        self.seen = seen

    def judge(
        self, raw: bytes | None, key: bytes | None, topic_source: str, origin: str = ""
    ) -> Outcome:
        """Decide the fate of one message read from the feed of ``topic_source``.

        ``origin`` names the message (topic/partition/offset). After a crash the worker reads
        again what it had not committed; the state may already hold those events. A message
        whose id was recorded *from this very origin* is a replay and is forwarded again
        (everything downstream is idempotent); the same id from elsewhere is a duplicate.
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

    def _against_history(self, event: IndicatorEvent, origin: str) -> Outcome:
        skey = state_key(event)
        state = self.seen.get(skey)
        event_id = str(event.event_id)
        if state is not None:
            if event_id in state["ids"]:
                if origin and state["ids"][event_id] == origin:
                    return Forward(event, correction=False)  # a replay after a crash
                return Duplicate(event)
            current_sent = datetime.fromisoformat(state["sent_at"])
            if event.sent_at < current_sent:
                return Reject(
                    event=event,
                    rejection=Rejection(
                        "superseded",
                        f"Đã có số liệu gửi lúc {state['sent_at']} cho kỳ này, mới hơn bản này "
                        f"(gửi lúc {event.sent_at.isoformat()})",
                        f"A value sent at {state['sent_at']} for this period is newer than this "
                        f"one (sent at {event.sent_at.isoformat()})",
                        "sent_at",
                    ),
                )
        ids = dict(state["ids"]) if state else {}
        ids[event_id] = origin
        ids = dict(list(ids.items())[-MAX_IDS_PER_PERIOD:])
        self.seen[skey] = {"ids": ids, "sent_at": event.sent_at.isoformat()}
        return Forward(event, correction=state is not None)
