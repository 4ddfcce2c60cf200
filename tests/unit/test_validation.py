"""Raw feed bytes become an event or a reasoned rejection, never an exception."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.events import IndicatorEvent
from streams.periods import LOCAL_TZ
from streams.validation import MAX_MESSAGE_BYTES, Rejection, parse_feed_message


def good(**changes: Any) -> dict[str, Any]:
    event = {
        "schema_version": 1,
        "event_id": str(uuid.uuid4()),
        "source": "ict",
        "indicator": "online_application_rate",
        "area": "son-la",
        "period": "2023",
        "value": 69.46,
        "observed_at": "2023-12-31T10:00:00+07:00",
        "sent_at": "2024-01-02T08:00:00+07:00",
    }
    event.update(changes)
    return {k: v for k, v in event.items() if v is not None}


def as_bytes(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


def test_valid_event_round_trips() -> None:
    payload = good()

    event = parse_feed_message(as_bytes(payload), "ict")

    assert isinstance(event, IndicatorEvent)
    assert event.value == 69.46
    assert str(event.event_id) == payload["event_id"]
    assert IndicatorEvent.from_json(event.to_json()) == event
    assert event.key == b"online_application_rate|son-la"


@given(
    value=st.floats(allow_nan=False, allow_infinity=False),
    numerator=st.none() | st.floats(allow_nan=False, allow_infinity=False),
    sent_at=st.datetimes(timezones=st.sampled_from([UTC, LOCAL_TZ])),
)
def test_wire_json_is_compact_json_of_the_fields_without_nulls(
    value: float, numerator: float | None, sent_at: datetime
) -> None:
    event = IndicatorEvent.new(
        source="ict",
        indicator="online_application_rate",
        area="son-la",
        period="2023",
        value=value,
        numerator=numerator,
        observed_at=sent_at,
        sent_at=sent_at,
    )
    # The bytes are exactly those of the plain fields dumped compactly (as they were when
    # to_json went through a dict and orjson), and they read back as the same event.
    assert event.to_json() == orjson.dumps(event.model_dump(mode="json", exclude_none=True))
    assert IndicatorEvent.from_json(event.to_json()) == event


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "empty"),
        (b"\xff\xfe\x00", "not_utf8"),
        (b"{not json", "not_json"),
        (b"[1, 2, 3]", "not_object"),
        (b"[" * 5000 + b"]" * 5000, "not_json"),
        (b" " * (MAX_MESSAGE_BYTES + 1), "too_large"),
    ],
)
def test_undecodable_input_is_rejected_with_a_reason(raw: bytes | None, reason: str) -> None:
    result = parse_feed_message(raw, "ict")

    assert isinstance(result, Rejection)
    assert result.reason == reason
    assert result.message_vi
    assert result.message_en


@pytest.mark.parametrize(
    ("changes", "reason", "field"),
    [
        ({"event_id": None}, "missing_field", "event_id"),
        ({"colour": "blue"}, "unknown_field", "colour"),
        ({"value": "69.46"}, "invalid_field", "value"),
        ({"value": float("nan")}, "invalid_field", "value"),
        ({"value": float("inf")}, "invalid_field", "value"),
        ({"period": "2024-Q5"}, "invalid_field", "period"),
        ({"source": "ICT"}, "invalid_field", "source"),
        ({"event_id": "not-a-uuid"}, "invalid_field", "event_id"),
        ({"sent_at": "2024-01-02T08:00:00"}, "invalid_field", "sent_at"),
        ({"schema_version": 2}, "invalid_field", "schema_version"),
    ],
)
def test_contract_violations_name_the_field(
    changes: dict[str, Any], reason: str, field: str
) -> None:
    result = parse_feed_message(as_bytes(good(**changes)), "ict")

    assert isinstance(result, Rejection), result
    assert (result.reason, result.field) == (reason, field)
    assert f"'{field}'" in result.message_en
    assert f"'{field}'" in result.message_vi


def test_event_claiming_another_source_is_spoofing() -> None:
    result = parse_feed_message(as_bytes(good(source="tax")), "ict")

    assert isinstance(result, Rejection)
    assert result.reason == "source_mismatch"
    assert "'tax'" in result.message_en
    assert "'ict'" in result.message_en
