"""The on-call path end to end: broker, worker, Prometheus, Alertmanager, webhook receiver."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest

from streams.events import IndicatorEvent
from streams.periods import LOCAL_TZ
from streams.producer import IndicatorProducer
from tests.conftest import SettingsFactory
from tests.promstack import WebhookReceiver
from tests.support import indicator_event

pytestmark = pytest.mark.integration

#: 07:00 on 4 March 2025 at 200x: the tax department's e-invoices for 3 March are due at 08:00,
#: 18 s of wall time after the epoch.
SIM_START = datetime(2025, 3, 4, 7, 0, tzinfo=LOCAL_TZ)


def report(source: str, indicator: str, period: str, value: float) -> IndicatorEvent:
    return indicator_event(SIM_START - timedelta(minutes=30), source, indicator, period, value)


def test_target_and_silence_page_on_call_and_resolve(
    settings_factory: SettingsFactory,
    worker_factory,
    monitoring_factory,
    webhook_receiver: WebhookReceiver,
) -> None:
    epoch, speed = time.time(), 200.0
    settings = settings_factory(
        clock_start=SIM_START,
        reporting_since=SIM_START,
        clock_epoch=epoch,
        clock_speed=speed,
        tick_seconds=0.5,
    )
    due = datetime(2025, 3, 4, 8, 0, tzinfo=LOCAL_TZ)  # e-invoices of 3 March
    due_wall = epoch + (due - SIM_START).total_seconds() / speed
    worker_factory(settings)
    monitoring_factory(settings.worker_url)
    # The Provincial People's Committee office reports yearly, so it is not overdue in this
    # window: its alerts are not inhibited by a silence (Alertmanager holds back a silent
    # source's indicator alerts, resolutions included).
    target = {"alertname": "IOCTargetOffTrack", "source": "office"}
    silent = {"alertname": "IOCSourceOverdue", "source": "tax"}

    with IndicatorProducer(settings) as producer:
        pushed = time.monotonic()
        # 85 % of procedures linked to the population database, against Project 06's 100 %.
        producer.send(report("office", "tthc_population_db_linked_rate", "2024", 85.0))
        fired = webhook_receiver.wait_for_firing(60, after=pushed, labels=target)
        print(f"\npush -> webhook, firing (target off track): {fired.received_at - pushed:.1f} s")
        assert fired.labels["indicator"] == "tthc_population_db_linked_rate"
        assert fired.labels["severity"] == "warning"
        assert fired.annotations["runbook_url"].endswith("#ioctargetofftrack")

        silence = webhook_receiver.wait_for_firing(90, labels=silent)
        print(f"deadline -> webhook, firing (tax silent): {silence.received_unix - due_wall:.1f} s")
        assert silence.received_unix >= due_wall  # not before the deadline

        fixed = time.monotonic()
        producer.send_many(
            [
                report("office", "tthc_population_db_linked_rate", "2025", 100.0),
                report("tax", "e_invoices_issued", "2025-03-03", 12000),
            ]
        )
        resolved = webhook_receiver.wait_for_resolved(60, after=fixed, labels=target)
        print(f"push -> webhook, resolved (target): {resolved.received_at - fixed:.1f} s")
        cleared = webhook_receiver.wait_for_resolved(60, after=fixed, labels=silent)
        print(f"push -> webhook, resolved (tax reported): {cleared.received_at - fixed:.1f} s")
