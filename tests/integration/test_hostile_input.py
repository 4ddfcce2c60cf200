"""Hostile input on the real worker: every case lands in the dead-letter topic with its reason.

No payload may take the monitor down: after all of them, the worker still answers and a good
value still arrives.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from streams.deadletter import DeadLetter
from streams.producer import IndicatorProducer
from streams.reader import read_topic
from streams.validation import MAX_MESSAGE_BYTES
from tests.conftest import SettingsFactory
from tests.support import sample, scrape, wait_for

pytestmark = pytest.mark.integration

KEY = b"online_application_rate|son-la"


def event(**changes: Any) -> bytes:
    now = datetime.now(UTC)
    fields = {
        "event_id": str(uuid.uuid4()),
        "source": "ict",
        "indicator": "online_application_rate",
        "area": "son-la",
        "period": "2023",
        "value": 69.46,
        "observed_at": (now - timedelta(days=1)).isoformat(),
        "sent_at": now.isoformat(),
    }
    return json.dumps(fields | changes, ensure_ascii=False).encode()


#: (case, payload, expected reason)
CASES: list[tuple[str, bytes, str]] = [
    ("oversized", b'{"pad": "' + b"x" * MAX_MESSAGE_BYTES + b'"}', "too_large"),
    ("deeply nested", b'{"a":' * 5000 + b"1" + b"}" * 5000, "not_json"),
    ("non-UTF-8", b"\xff\xfe\x00ict", "not_utf8"),
    ("NUL bytes", b"\x00" * 16, "not_json"),
    ("NaN", event().replace(b"69.46", b"NaN"), "invalid_field"),
    ("Infinity", event().replace(b"69.46", b"Infinity"), "invalid_field"),
    ("overflowing number", event().replace(b"69.46", b"1e400"), "invalid_field"),
    ("Cyrillic look-alike in the source", event(source="\u0456ct"), "invalid_field"),
    ("NFD accent in a code", event(indicator="online_application_rate\u0301"), "invalid_field"),
    ("ISO week 53 of a 52-week year", event(period="2024-W53"), "wrong_period"),
    ("29 February of a common year", event(period="2023-02-29"), "wrong_period"),
    ("year before 2000", event(period="1999"), "wrong_period"),
    ("period not begun", event(period="2099"), "future_period"),
    ("timestamp far in the future", event(sent_at="2999-01-01T00:00:00+00:00"), "future_timestamp"),
    ("timestamp far in the past", event(observed_at="1970-01-01T00:00Z"), "stale_timestamp"),
    ("timestamp without a zone", event(sent_at="2025-01-01T00:00:00"), "invalid_field"),
]  # fmt: skip


def test_every_hostile_case_is_dead_lettered_with_its_reason(
    settings_factory: SettingsFactory, worker_factory
) -> None:
    settings = settings_factory()
    worker = worker_factory(settings)
    feed = f"{settings.topic_prefix}ioc.feed.ict"
    with IndicatorProducer(settings, max_request_size=4 * MAX_MESSAGE_BYTES) as producer:
        for _, payload, _ in CASES:
            producer.send_raw(feed, payload, key=KEY)
        producer.send_raw(feed, event(value=70.0, period="2024"), key=KEY)

    def letters() -> list[DeadLetter] | None:
        raw = read_topic(settings, f"{settings.topic_prefix}ioc.deadletter")
        return [DeadLetter.model_validate_json(r) for r in raw] if len(raw) == len(CASES) else None

    found = wait_for(letters, 60, f"{len(CASES)} dead letters")
    reasons = {letter.original: letter.reason for letter in found}
    for case, payload, reason in CASES:
        assert reasons.get(payload) == reason, case
    assert worker.alive()
    wait_for(
        lambda: (
            sample(
                scrape(settings.worker_url),
                "ioc_indicator_value",
                source="ict",
                indicator="online_application_rate",
                area="son-la",
                level="province",
            )
            == 70.0
        ),
        30,
        "the good value sent after every hostile one",
    )
