"""Helpers shared by the test suites: deadline waits, metric scraping, and what an earlier
worker left on a changelog."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from kafka import KafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from ioc.local.worker import http_get
from ioc.settings import Settings, settings_env
from streams.events import IndicatorEvent
from streams.kafka_config import client_config
from streams.topics import ensure_topics

T = TypeVar("T")


def wait_for(probe: Callable[[], T | None], timeout: float, what: str, interval: float = 0.2) -> T:
    """Poll ``probe`` until it returns something truthy; fail the test with ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


#: How long :func:`scrape` waits for one answer from ``/metrics``, and for any answer at all.
SCRAPE_REQUEST_SECONDS = 10.0
SCRAPE_SECONDS = 30.0


def scrape(base_url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample at ``<base_url>/metrics``, keyed by (name, labels).

    A worker busy with a large batch can take seconds to answer (the CI machines are
    shared); asking again beats reading a missed answer as "no samples". One that does not
    answer within :data:`SCRAPE_SECONDS` fails the test, saying so.
    """
    url = f"{base_url}/metrics"
    body = wait_for(
        lambda: http_get(url, timeout=SCRAPE_REQUEST_SECONDS),
        SCRAPE_SECONDS,
        f"{url} to answer",
        interval=0.5,
    )
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def sample(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float | None:
    """The value of one series, or None when absent."""
    return samples.get((name, frozenset(labels.items())))


def event_counts(settings: Settings, source: str, *names: str) -> dict[str, float]:
    """``ioc_events_<name>_total`` of ``source`` for each name, from one scrape (0 if absent)."""
    samples = scrape(settings.worker_url)
    return {
        name: sample(samples, f"ioc_events_{name}_total", source=source) or 0.0 for name in names
    }


def epoch_micros(moment: datetime) -> int:
    """``moment`` in microseconds since 1970, as dedupe entries hold their sent time."""
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def write_dedupe_entries(settings: Settings, rows: Sequence[tuple[str, bytes, int]]) -> str:
    """Write ``rows`` (key ``indicator|area|period``, value, partition) to the validator's
    dedupe changelog, as an earlier worker left them; return the changelog's name."""
    changelog = f"{settings.topic_prefix}{settings.app_id}-validator_seen-changelog"
    ensure_topics(settings, [changelog])
    producer = KafkaProducer(**client_config(settings, "test-earlier-worker"))
    try:
        for row, value, partition in rows:
            producer.send(
                changelog, key=json.dumps(row).encode(), value=value, partition=partition
            ).get(timeout=30)
    finally:
        producer.close()
    return changelog


def run_ioc(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the ``ioc`` command line as an agency would, with the test's settings."""
    return subprocess.run(
        [sys.executable, "-m", "ioc", *args],
        env=os.environ | settings_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def indicator_event(
    sent_at: datetime,
    source: str,
    indicator: str,
    period: str,
    value: float,
    area: str = "son-la",
    **components: float,
) -> IndicatorEvent:
    """A fresh event, observed and sent at ``sent_at`` (tests pick it on their clock)."""
    return IndicatorEvent.new(
        source=source,
        indicator=indicator,
        area=area,
        period=period,
        value=value,
        observed_at=sent_at,
        sent_at=sent_at,
        **components,
    )
