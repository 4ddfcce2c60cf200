"""Helpers shared by the test suites: deadline waits and metric scraping."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from prometheus_client.parser import text_string_to_metric_families

from ioc.local.worker import http_get
from ioc.settings import Settings, settings_env
from streams.events import IndicatorEvent

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
