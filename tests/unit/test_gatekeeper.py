"""The validator's decisions: forward, reject with a reason, or drop a duplicate."""

from __future__ import annotations

import json
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.gatekeeper import (
    MAX_IDS_PER_PERIOD,
    Duplicate,
    Forward,
    Gatekeeper,
    Reject,
    entry_of,
    position_of,
    remembered,
    state_key,
)
from ioc.clock import SystemClock
from streams.catalogue import default_catalogue
from streams.events import IndicatorEvent
from streams.validation import REJECTION_REASONS

NOW = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


class FixedClock(SystemClock):
    def now(self) -> datetime:
        return NOW


def gatekeeper(seen: dict[str, Any] | None = None) -> Gatekeeper:
    return Gatekeeper(default_catalogue(), FixedClock(), {} if seen is None else seen)


def event(**changes: Any) -> IndicatorEvent:
    fields: dict[str, Any] = {
        "event_id": uuid.uuid4(),
        "source": "police",
        "indicator": "eid_activated",
        "area": "son-la",
        "period": "2024-Q3",
        "value": 539304.0,
        "observed_at": NOW - timedelta(days=90),
        "sent_at": NOW - timedelta(days=80),
    }
    return IndicatorEvent(**(fields | changes))


def judge(keeper: Gatekeeper, ev: IndicatorEvent, key: bytes | None = None) -> Any:
    return keeper.judge(ev.to_json(), ev.key if key is None else key, ev.source)


def test_new_event_is_forwarded_and_remembered() -> None:
    seen: dict[str, Any] = {}
    ev = event()

    outcome = judge(gatekeeper(seen), ev)

    assert outcome == Forward(ev, correction=False)
    assert list(remembered(seen[state_key(ev)])[1]) == [ev.event_id.bytes]


def test_same_event_id_is_a_duplicate() -> None:
    keeper = gatekeeper()
    ev = event()
    judge(keeper, ev)

    assert judge(keeper, ev) == Duplicate(ev)


def test_correction_supersedes_and_an_older_one_is_refused() -> None:
    keeper = gatekeeper()
    first = event(value=500000.0)
    correction = event(value=539304.0, sent_at=first.sent_at + timedelta(hours=1))
    stale = event(value=1.0, sent_at=first.sent_at - timedelta(hours=1))

    assert judge(keeper, first) == Forward(first, correction=False)
    assert judge(keeper, correction) == Forward(correction, correction=True)
    outcome = judge(keeper, stale)
    assert isinstance(outcome, Reject)
    assert outcome.rejection.reason == "superseded"
    # The first event, re-sent after its correction, is still a duplicate, not a third value.
    assert judge(keeper, first) == Duplicate(first)


def test_replay_of_the_same_message_after_a_crash_is_forwarded_again() -> None:
    keeper = gatekeeper()
    ev = event()
    assert judge_from(keeper, ev, position_of(0, 7)) == Forward(ev, correction=False)

    # The state survived (changelog) but the offset was not committed: the same message is
    # read again. Downstream is idempotent, so it is forwarded, not lost as a "duplicate".
    assert judge_from(keeper, ev, position_of(0, 7)) == Forward(ev, correction=False)
    assert judge_from(keeper, ev, position_of(0, 8)) == Duplicate(ev)
    assert judge_from(keeper, ev, position_of(1, 7)) == Duplicate(ev)


def test_entries_written_before_the_compact_format_are_still_read() -> None:
    ev = event()
    old = {
        state_key(ev): {
            "ids": {str(ev.event_id): "ioc.feed.police/0/7"},
            "sent_at": ev.sent_at.isoformat(),
        }
    }
    keeper = gatekeeper(old)
    assert judge_from(keeper, ev, position_of(0, 7)) == Forward(ev, correction=False)
    assert judge_from(keeper, ev, position_of(0, 9)) == Duplicate(ev)
    stale = event(value=1.0, sent_at=ev.sent_at - timedelta(hours=1))
    outcome = judge_from(keeper, stale, position_of(0, 10))
    assert isinstance(outcome, Reject)
    assert outcome.rejection.reason == "superseded"


def test_an_entry_remembers_the_newest_ids_and_is_compact() -> None:
    seen: dict[str, Any] = {}
    keeper = gatekeeper(seen)
    first = event()
    for n in range(MAX_IDS_PER_PERIOD + 3):
        ev = event(value=500000.0 + n, sent_at=first.sent_at + timedelta(minutes=n))
        assert judge_from(keeper, ev, position_of(1, n)) == Forward(ev, correction=n > 0)
    entry = seen[state_key(first)]
    sent, ids = remembered(entry)
    assert sent == remembered([sent])[0]
    assert len(ids) == MAX_IDS_PER_PERIOD
    assert list(ids.values())[-1] == position_of(1, MAX_IDS_PER_PERIOD + 2)
    assert isinstance(entry, bytes)
    assert len(entry) == 8 + 23 * MAX_IDS_PER_PERIOD  # sent, then each id and its position
    one = entry_of(sent, dict(list(ids.items())[:1]))
    assert sys.getsizeof(one) <= 64  # a single report: one 64-byte object (112 as a string)


def test_an_entry_in_the_flat_list_format_is_still_read() -> None:
    # Changelogs written before entries were strings hold [sent, id, origin, ...].
    ev = event()
    old = [_micros_of(ev), ev.event_id.hex, position_of(0, 7), "ab" * 16, None]
    keeper = gatekeeper({state_key(ev): old})
    assert judge_from(keeper, ev, position_of(0, 7)) == Forward(ev, correction=False)
    assert judge_from(keeper, ev, position_of(0, 8)) == Duplicate(ev)
    newer = event(value=1.0, sent_at=ev.sent_at + timedelta(hours=1))
    assert judge_from(keeper, newer, position_of(0, 9)) == Forward(newer, correction=True)
    sent, ids = remembered(keeper.seen[state_key(ev)])
    assert list(ids.items()) == [
        (ev.event_id.bytes, position_of(0, 7)),
        (b"\xab" * 16, None),
        (newer.event_id.bytes, position_of(0, 9)),
    ]
    assert remembered(entry_of(sent, ids)) == (sent, ids)


def test_entries_in_a_changelog_written_as_json_are_read_as_they_were() -> None:
    # The table's values were JSON before they were raw bytes: recovery now hands those
    # records over as the JSON bytes.
    ev = event()
    sent, other = _micros_of(ev), uuid.uuid4()
    as_string = f"{sent:x} {ev.event_id.hex} {position_of(0, 7):x} {other.hex} -"
    as_list = [sent, ev.event_id.hex, position_of(0, 7), other.hex, None]
    as_dict = {
        "ids": {str(ev.event_id): "ioc.feed.police/0/7", str(other): "unknown"},
        "sent_at": ev.sent_at.isoformat(),
    }
    expected = (sent, {ev.event_id.bytes: position_of(0, 7), other.bytes: None})
    for old in (as_string, as_list, as_dict):
        assert remembered(json.dumps(old).encode()) == expected
        keeper = gatekeeper({state_key(ev): json.dumps(old).encode()})
        assert judge_from(keeper, ev, position_of(0, 7)) == Forward(ev, correction=False)
        assert judge_from(keeper, ev, position_of(0, 8)) == Duplicate(ev)
        assert remembered(keeper.seen[state_key(ev)]) == expected  # unchanged by a duplicate


def test_a_position_an_entry_cannot_hold_is_kept_as_unknown() -> None:
    ev = event()
    huge = position_of(3, 1 << 41)  # an offset past 2**40: more than 7 bytes
    sent = _micros_of(ev)
    entry = entry_of(sent, {ev.event_id.bytes: huge, b"\x01" * 16: None, b"\x02" * 16: 5})
    assert remembered(entry) == (
        sent,
        {ev.event_id.bytes: None, b"\x01" * 16: None, b"\x02" * 16: 5},
    )
    before_1970 = -1_000_000
    assert remembered(entry_of(before_1970, {ev.event_id.bytes: 9}))[0] == before_1970


def _micros_of(ev: IndicatorEvent) -> int:
    return (ev.sent_at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def judge_from(keeper: Gatekeeper, ev: IndicatorEvent, origin: int) -> Any:
    return keeper.judge(ev.to_json(), ev.key, ev.source, origin)


def test_same_period_other_area_is_independent() -> None:
    keeper = gatekeeper()
    province = event()
    district = event(area="moc-chau", value=40000.0, event_id=province.event_id)

    assert isinstance(judge(keeper, province), Forward)
    assert isinstance(judge(keeper, district), Forward)


def test_key_must_be_the_series() -> None:
    outcome = judge(gatekeeper(), event(), key=b"something-else")

    assert isinstance(outcome, Reject)
    assert outcome.rejection.reason == "wrong_key"
    assert "eid_activated|son-la" in outcome.rejection.message_en


def test_catalogue_breaches_are_rejected_before_dedupe() -> None:
    seen: dict[str, Any] = {}
    outcome = judge(gatekeeper(seen), event(value=-5.0))

    assert isinstance(outcome, Reject)
    assert outcome.rejection.reason == "out_of_range"
    assert seen == {}


def test_spoofed_source_is_rejected() -> None:
    ev = event()
    outcome = gatekeeper().judge(ev.to_json(), ev.key, "tax")

    assert isinstance(outcome, Reject)
    assert outcome.rejection.reason == "source_mismatch"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)


def mutated_events() -> st.SearchStrategy[bytes]:
    """Valid events with one field replaced by arbitrary JSON, or one removed."""
    base = json.loads(event().to_json())

    def mutate(field: str, value: Any, drop: bool) -> bytes:
        payload = dict(base)
        if drop:
            payload.pop(field, None)
        else:
            payload[field] = value
        return json.dumps(payload, allow_nan=True).encode()

    return st.builds(mutate, st.sampled_from([*base, "extra"]), json_values, st.booleans())


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(
    raw=st.binary(max_size=300)
    | st.just(event().to_json())
    | json_values.map(lambda v: json.dumps(v, allow_nan=True).encode())
    | mutated_events(),
    key=st.just(b"eid_activated|son-la") | st.none() | st.binary(max_size=40),
)
def test_any_input_has_exactly_one_outcome_and_never_raises(raw: bytes, key: bytes | None) -> None:
    seen: dict[str, Any] = {}
    outcome = gatekeeper(seen).judge(raw, key, "police")

    assert isinstance(outcome, Forward | Reject | Duplicate)
    if isinstance(outcome, Reject):
        assert outcome.rejection.reason in REJECTION_REASONS
        assert outcome.rejection.message_vi
        assert outcome.rejection.message_en
        assert seen == {}
    else:
        assert isinstance(outcome, Forward)  # a fresh state cannot hold a duplicate
        assert list(seen) == [state_key(outcome.event)]
