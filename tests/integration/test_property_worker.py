"""Hypothesis throws arbitrary bytes, JSON and near-valid events at the real worker.

The worker must never crash, and every message must end in exactly one of: the indicators
topic, the dead-letter topic, the duplicate counter.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ioc.local.process import free_port
from ioc.local.worker import WorkerProcess
from ioc.settings import Settings
from streams.producer import IndicatorProducer
from streams.reader import read_topic
from tests.support import sample, scrape, wait_for

pytestmark = pytest.mark.integration

FEED_KEY = b"eid_activated|son-la"


@pytest.fixture(scope="module")
def live(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    home: Path = tmp_path_factory.mktemp("property-worker")
    config = Settings(
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=f"p{uuid.uuid4().hex[:8]}.",
        worker_port=free_port(),
        worker_data_dir=home / "worker",
    )
    worker = WorkerProcess(config, home / "worker.log")
    worker.start()
    try:
        yield config
    finally:
        alive = worker.alive()
        worker.stop()
        assert alive, "the worker died: " + (home / "worker.log").read_text()[-3000:]
        assert all(TALLY.values()), f"some outcome never occurred: {TALLY}"


def valid_event(value: float, period: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "event_id": str(uuid.uuid4()),
        "source": "police",
        "indicator": "eid_activated",
        "area": "son-la",
        "period": period,
        "value": value,
        "observed_at": (now - timedelta(days=1)).isoformat(),
        "sent_at": now.isoformat(),
    }


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=16),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
periods = st.sampled_from(["2024-Q1", "2024-Q2", "2024-Q3", "2024-Q5", "2024", "2099-Q1"])
events = st.builds(valid_event, st.floats(min_value=-10, max_value=2e6), periods)
mutations = st.builds(
    lambda event, field, value: {**event, field: value},
    events,
    st.sampled_from(["value", "period", "source", "event_id", "sent_at", "extra"]),
    json_values,
)
payloads = (
    st.binary(max_size=200)
    | json_values.map(lambda v: json.dumps(v, allow_nan=True).encode())
    | events.map(lambda e: json.dumps(e).encode())
    | mutations.map(lambda e: json.dumps(e, allow_nan=True).encode())
)
keys = st.just(FEED_KEY) | st.none() | st.binary(max_size=20)
good = st.tuples(
    st.builds(
        valid_event,
        st.floats(min_value=0, max_value=1.5e6),
        st.sampled_from(["2024-Q1", "2024-Q2", "2024-Q3"]),
    ).map(lambda e: json.dumps(e).encode()),
    st.just(FEED_KEY),
)
# Two parts valid events to one part anything at all; some messages are sent twice, byte for
# byte (duplicates).
entries = st.tuples(st.one_of(good, good, st.tuples(payloads, keys)), st.booleans())
batches = st.lists(entries, min_size=5, max_size=40)

#: Outcomes over every example, so the module can check that each kind really occurred.
TALLY = {"accepted": 0.0, "rejected": 0.0, "duplicate": 0.0}


def totals(config: Settings) -> dict[str, float]:
    samples = scrape(config.worker_url)
    rejected = sum(
        value
        for (name, labels), value in samples.items()
        if name == "ioc_events_rejected_total" and ("source", "police") in labels
    )
    return {
        "received": sample(samples, "ioc_events_received_total", source="police") or 0.0,
        "accepted": sample(samples, "ioc_events_accepted_total", source="police") or 0.0,
        "duplicate": sample(samples, "ioc_events_duplicate_total", source="police") or 0.0,
        "rejected": rejected,
    }


@settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=batches)
def test_every_message_lands_exactly_once(live: Settings, batch: list[Any]) -> None:
    feed = f"{live.topic_prefix}ioc.feed.police"
    before = totals(live)
    indicators_before = len(read_topic(live, f"{live.topic_prefix}ioc.indicators"))
    deadletter_before = len(read_topic(live, f"{live.topic_prefix}ioc.deadletter"))
    sent = 0
    with IndicatorProducer(live) as producer:
        for (payload, key), twice in batch:
            for _ in range(2 if twice else 1):
                producer.send_raw(feed, payload, key=key)
                sent += 1

    wait_for(
        lambda: totals(live)["received"] - before["received"] == sent,
        60,
        f"the worker to read {sent} messages",
    )
    after = totals(live)
    accepted = after["accepted"] - before["accepted"]
    rejected = after["rejected"] - before["rejected"]
    duplicate = after["duplicate"] - before["duplicate"]
    TALLY.update(
        accepted=TALLY["accepted"] + accepted,
        rejected=TALLY["rejected"] + rejected,
        duplicate=TALLY["duplicate"] + duplicate,
    )
    assert accepted + rejected + duplicate == sent
    wait_for(
        lambda: (
            len(read_topic(live, f"{live.topic_prefix}ioc.indicators")) - indicators_before
            == accepted
            and len(read_topic(live, f"{live.topic_prefix}ioc.deadletter")) - deadletter_before
            == rejected
        ),
        30,
        f"{accepted:.0f} indicators and {rejected:.0f} dead letters on the topics",
    )
