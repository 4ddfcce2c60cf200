"""One indicator value from an agency's producer, through the worker, to ``/metrics``."""

from __future__ import annotations

import json
import re
import subprocess
import urllib.error
import urllib.request
from typing import Any

import pytest

from ioc.settings import Settings
from streams.deadletter import DeadLetter
from streams.producer import IndicatorProducer
from streams.reader import read_topic
from tests.conftest import SettingsFactory
from tests.support import run_ioc, sample, scrape, wait_for

pytestmark = pytest.mark.integration


def push(settings: Settings, value: str, period: str = "2023") -> subprocess.CompletedProcess[str]:
    return run_ioc(
        settings,
        "push",
        "--source", "ict",
        "--indicator", "online_application_rate",
        "--area", "son-la",
        "--period", period,
        "--value", value,
    )  # fmt: skip


def online_rate(settings: Settings) -> float | None:
    return sample(
        scrape(settings.worker_url),
        "ioc_indicator_value",
        source="ict",
        indicator="online_application_rate",
        area="son-la",
        level="province",
    )


def test_seed_value_reaches_metrics(settings_factory: SettingsFactory, worker_factory) -> None:
    settings = settings_factory()
    worker_factory(settings)

    result = push(settings, "69.46")

    assert result.returncode == 0, result.stderr
    match = re.search(r"topic=(\S+) partition=(\d+) offset=(\d+)", result.stdout)
    assert match, result.stdout
    assert match.group(1) == f"{settings.topic_prefix}ioc.feed.ict"
    wait_for(lambda: online_rate(settings) == 69.46, 30, "69.46 at /metrics")


def test_non_json_does_not_stop_the_worker(
    settings_factory: SettingsFactory, worker_factory
) -> None:
    settings = settings_factory()
    worker = worker_factory(settings)
    feed = f"{settings.topic_prefix}ioc.feed.ict"
    with IndicatorProducer(settings) as producer:
        producer.send_raw(feed, b"{not json at all", key=b"online_application_rate|son-la")

    assert push(settings, "70.5", period="2024").returncode == 0

    wait_for(lambda: online_rate(settings) == 70.5, 30, "the value sent after the junk")
    assert worker.alive()
    rejected = sample(
        scrape(settings.worker_url), "ioc_events_rejected_total", source="ict", reason="not_json"
    )
    assert rejected == 1
    records = wait_for(
        lambda: read_topic(settings, f"{settings.topic_prefix}ioc.deadletter"), 20, "dead letter"
    )
    letters = [DeadLetter.model_validate_json(value) for value in records]
    assert [(x.reason, x.source, x.original) for x in letters] == [
        ("not_json", "ict", b"{not json at all")
    ]
    assert letters[0].topic == feed


def test_latest_value_survives_a_worker_restart(
    settings_factory: SettingsFactory, worker_factory
) -> None:
    settings = settings_factory()
    first = worker_factory(settings)
    assert push(settings, "69.46").returncode == 0
    wait_for(lambda: online_rate(settings) == 69.46, 30, "69.46 before the restart")
    first.kill()

    # A new process with an empty local state: the table comes back from its changelog.
    restarted = settings.model_copy(update={"worker_data_dir": settings.worker_data_dir / "new"})
    worker_factory(restarted)

    wait_for(lambda: online_rate(restarted) == 69.46, 60, "69.46 recovered after the restart")


def test_oncall_webhook_records_pages_and_refuses_junk(
    settings_factory: SettingsFactory, worker_factory
) -> None:
    settings = settings_factory()
    worker_factory(settings)
    url = f"{settings.worker_url}/api/v1/oncall"
    page = {
        "status": "firing",
        "alerts": [{"status": "firing", "labels": {"alertname": "IOCSourceOverdue"}}],
    }

    def post(body: bytes) -> int:
        request = urllib.request.Request(url, data=body, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            error.close()
            return int(error.code)

    assert post(json.dumps(page).encode()) == 200
    assert post(b"[1]") == 400
    with urllib.request.urlopen(url, timeout=5) as response:
        pages = json.loads(response.read())["pages"]
    assert [p["alerts"][0]["labels"]["alertname"] for p in pages] == ["IOCSourceOverdue"]
    assert sample(scrape(settings.worker_url), "ioc_oncall_notifications_total", status="firing")


def test_faust_worker_metrics_in_base_units(
    settings_factory: SettingsFactory, worker_factory
) -> None:
    settings = settings_factory()
    worker_factory(settings)
    assert push(settings, "69.46").returncode == 0

    def series_held() -> dict[Any, float] | None:
        samples = scrape(settings.worker_url)
        return samples if sample(samples, "ioc_faust_table_keys", table="series") == 1 else None

    samples = wait_for(series_held, 30, "the value in table series")
    assert (sample(samples, "ioc_faust_events_total") or 0) >= 2  # validated, then evaluated
    assert (sample(samples, "ioc_faust_messages_received_total") or 0) >= 2
    runtime = sample(samples, "ioc_faust_event_runtime_seconds")
    assert runtime is not None
    assert 0 <= runtime < 60  # seconds, not milliseconds
