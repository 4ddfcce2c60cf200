"""The wall page in a real browser (Debian's Chromium) against a real worker and broker.

A scaled clock makes a deadline pass while the page is open: the tax department stays silent
and its tile must turn red within seconds of 08:00; a value below its target must show up in
the alert list; a stopped worker must be visible on the wall. Screenshots are kept under
``test-artifacts/`` at the repository root.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from ioc.local.worker import http_get
from ioc.settings import Settings
from streams.events import IndicatorEvent
from streams.periods import LOCAL_TZ
from streams.producer import IndicatorProducer
from tests.conftest import SettingsFactory
from tests.support import indicator_event, wait_for

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

#: Simulated time starts at 06:30 on 4 March 2025 and runs 150x: the daily figures of 3 March
#: (the tax department's e-invoices among them) fall due at 08:00, 36 s after the epoch. That
#: leaves time to start the worker and load the page before the deadline.
SIM_START = datetime(2025, 3, 4, 6, 30, tzinfo=LOCAL_TZ)
SPEED = 150.0
DUE = datetime(2025, 3, 4, 8, 0, tzinfo=LOCAL_TZ)
#: Daily figures of 3 March that every other source due at 08:00 sends in time (their tiles
#: turn green at the deadline, as the tax department's turns red).
ON_TIME = [
    ("environment", "air_quality_index", 42),
    ("ict", "cyber_incidents", 3),
    ("health", "outpatient_visits", 5120),
    ("police", "traffic_accidents", 2),
    ("police", "traffic_accident_deaths", 0),
    ("broadcasting", "news_items_broadcast", 36),
    ("newspaper", "articles_published", 58),
]
#: Headline figures, so the indicator panel shows each standing.
HEADLINES = [
    ("ict", "online_application_rate", "2024", 85.0),  # on track for 80 %
    ("ict", "dvc_online_total", "2024-Q4", 1950),  # no target
    ("police", "eid_activated", "2024-Q4", 745000),  # at risk for 800,000
    ("ict", "smartphone_household_rate", "2024", 96.36),  # at risk for 98 %
    ("sbv", "non_cash_payment_rate", "2025-01", 41.2),  # off track for 50 %
]


def report(source: str, indicator: str, period: str, value: float) -> IndicatorEvent:
    return indicator_event(SIM_START - timedelta(minutes=30), source, indicator, period, value)


@pytest.fixture
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, through Playwright (never a downloaded browser)."""
    if not CHROMIUM.exists() or shutil.which("chromium") is None:
        pytest.fail("the wall test needs Debian's Chromium: sudo apt-get install -y chromium")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def api(settings: Settings, document: str) -> dict[str, Any] | None:
    body = http_get(f"{settings.worker_url}/api/v1/{document}")
    return orjson.loads(body) if body is not None else None


def shot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path))
    print(f"screenshot: {path}")
    return path


def tile(source: str, status: str | None = None) -> str:
    selector = f'[data-testid="source-tile"][data-source="{source}"]'
    return selector + (f'[data-status="{status}"]' if status else "")


def test_the_wall_shows_sources_turning_red_alerts_and_a_lost_connection(
    settings_factory: SettingsFactory, worker_factory, browser: Browser
) -> None:
    epoch = time.time()
    settings = settings_factory(
        clock_start=SIM_START,
        reporting_since=SIM_START,
        clock_epoch=epoch,
        clock_speed=SPEED,
        tick_seconds=0.5,
    )
    due_wall = epoch + (DUE - SIM_START).total_seconds() / SPEED
    worker = worker_factory(settings)
    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    response = page.goto(f"{settings.worker_url}/wall")
    assert response is not None
    assert "default-src 'none'" in response.headers["content-security-policy"]
    page.wait_for_selector('#connection[data-state="ok"]', timeout=15_000)

    def whole_picture() -> dict[str, Any] | None:
        document = api(settings, "sources")
        return document if document and document["partitions"]["complete"] else None

    # A single worker holds every partition once it has joined the consumer group.
    sources = wait_for(whole_picture, 30, "the worker to hold every partition")
    assert sources["count"] == 41
    assert sources["simulated"] is True
    expect(page.get_by_test_id("coverage")).to_have_text("", timeout=10_000)
    assert page.locator('[data-testid="source-tile"]').count() == 41
    assert page.locator('[data-testid="indicator"]').count() >= 6
    assert "mô phỏng" in page.locator('[data-testid="clock-mode"]').inner_text()

    with IndicatorProducer(settings) as producer:
        producer.send_many(
            [report(s, i, p, v) for s, i, p, v in HEADLINES]
            + [report(s, i, "2025-03-03", v) for s, i, v in ON_TIME]
        )
        page.wait_for_selector(
            '[data-indicator="online_application_rate"][data-status="on_track"]', timeout=20_000
        )
        page.wait_for_selector(
            '[data-indicator="non_cash_payment_rate"][data-status="off_track"]', timeout=20_000
        )
        before = due_wall - time.time()
        assert before > 0, f"the page was ready {-before:.1f} s after the deadline: too late"
        print(f"\npage ready {before:.1f} s before the deadline")
        assert page.get_attribute(tile("tax"), "data-status") == "waiting"
        shot(page, "wall-initial.png")

        # Nobody at the tax department reports the 3 March e-invoices, due at 08:00.
        page.wait_for_selector(tile("tax", "overdue"), timeout=int((before + 30) * 1000))
        red_after = time.time() - due_wall
        print(f"deadline -> tax tile red on the wall: {red_after:.1f} s")
        assert red_after >= 0
        page.wait_for_selector(tile("police", "ok"), timeout=30_000)
        assert page.get_attribute(tile("environment"), "data-status") == "ok"
        assert page.get_attribute(tile("office"), "data-status") == "waiting"
        shot(page, "wall-overdue.png")

        # 85 % of procedures linked to the population database, against Project 06's 100 %.
        pushed = time.time()
        producer.send(report("office", "tthc_population_db_linked_rate", "2024", 85.0))
        alert = page.wait_for_selector(
            '[data-testid="alert"][data-alertname="target_off_track"][data-source="office"]',
            timeout=30_000,
        )
        print(f"push -> alert on the wall: {time.time() - pushed:.1f} s")
        assert alert is not None
        text = alert.inner_text()
        assert "85 chưa đạt mục tiêu 100" in text
        assert "off track" in text
        page.wait_for_selector(
            '[data-testid="alert"][data-alertname="source_overdue"][data-source="tax"]',
            timeout=10_000,
        )
        shot(page, "wall-alert.png")

    stopped = time.time()
    worker.stop()
    page.wait_for_selector('#connection[data-state="lost"]', timeout=15_000)
    print(f"worker stopped -> 'mất kết nối' on the wall: {time.time() - stopped:.1f} s")
    assert page.locator('[data-testid="connection-lost"]').is_visible()
    shot(page, "wall-lost.png")
    assert errors == []
