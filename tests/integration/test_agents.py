"""The stream agents on the real broker: rollups, rules, targets, silence, and a restart."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import orjson
import pytest

from ioc.settings import Settings
from streams.events import IndicatorEvent
from streams.periods import LOCAL_TZ
from streams.producer import IndicatorProducer
from streams.reader import read_topic
from tests.conftest import SettingsFactory
from tests.support import indicator_event, sample, scrape, wait_for

pytestmark = pytest.mark.integration

#: Simulated time starts at 07:00 on 4 March 2025 and runs 200x faster than the wall clock:
#: the tax department's e-invoice figure for 3 March falls due at 08:00, 18 s after the epoch.
SIM_START = datetime(2025, 3, 4, 7, 0, tzinfo=LOCAL_TZ)
SPEED = 200.0


def event(
    source: str, indicator: str, area: str, period: str, value: float, **extra: float
) -> IndicatorEvent:
    return indicator_event(
        SIM_START - timedelta(hours=1), source, indicator, period, value, area, **extra
    )


def metric(settings: Settings, name: str, **labels: str) -> float | None:
    return sample(scrape(settings.worker_url), name, **labels)


def alert(settings: Settings, alertname: str, source: str, indicator: str, area: str) -> bool:
    labels = {"source": source, "indicator": indicator, "area": area}
    samples = scrape(settings.worker_url)
    return any(
        name == "ioc_alert_active"
        and ("alertname", alertname) in frozen
        and all((k, v) in frozen for k, v in labels.items())
        for (name, frozen) in samples
    )


def transitions(settings: Settings) -> list[tuple[str, str, str]]:
    records = read_topic(settings, f"{settings.topic_prefix}ioc.alerts")
    parsed = [orjson.loads(r) for r in records]
    return [(t["alertname"], t["status"], t["fingerprint"]) for t in parsed]


def test_rollups_rules_targets_silence_and_restart(
    settings_factory: SettingsFactory, worker_factory
) -> None:
    settings = settings_factory(
        clock_start=SIM_START,
        reporting_since=SIM_START,
        clock_epoch=time.time(),
        clock_speed=SPEED,
        tick_seconds=0.5,
    )
    worker = worker_factory(settings)
    eid = {"source": "police", "indicator": "eid_activated"}
    with IndicatorProducer(settings) as producer:
        producer.send_many(
            [
                event("police", "eid_activated", "moc-chau.chieng-hac", "2024-Q3", 100),
                event("police", "eid_activated", "moc-chau.long-sap", "2024-Q3", 50),
                event("ict", "dvc_online_partial", "son-la", "2024-Q3", 312),
                event("ict", "dvc_online_full", "son-la", "2024-Q3", 1554),
                event("ict", "dvc_online_total", "son-la", "2024-Q3", 1886),
                event("ict", "online_application_rate", "son-la", "2023", 69.46),
            ]
        )
        district = eid | {"area": "moc-chau", "level": "district"}
        wait_for(
            lambda: metric(settings, "ioc_indicator_rollup_value", **district) == 150,
            60,
            "the district rollup 100 + 50",
        )
        # A correction replaces the commune's figure in every rollup above it.
        producer.send(event("police", "eid_activated", "moc-chau.chieng-hac", "2024-Q3", 120))
        wait_for(
            lambda: metric(settings, "ioc_indicator_rollup_value", **district) == 170,
            30,
            "the corrected district rollup",
        )
        province = eid | {"area": "son-la", "level": "province"}
        wait_for(
            lambda: metric(settings, "ioc_indicator_rollup_value", **province) == 170,
            30,
            "the province rollup, once, from the district",
        )

        # 312 + 1,554 = 1,866, not 1,886: the published figures break the rule.
        wait_for(
            lambda: alert(settings, "validation_rule", "ict", "dvc_online_parts_sum", "son-la"),
            30,
            "the parts-sum rule alert",
        )
        # 69.46 % against the 80 % target of Resolution 17-NQ/TU.
        assert alert(settings, "target_off_track", "ict", "online_application_rate", "son-la")
        rate = {"source": "ict", "indicator": "online_application_rate", "area": "son-la"}
        assert metric(settings, "ioc_indicator_status", **rate, level="province") == 2

        # Nobody at the tax department reports the 3 March e-invoices, due at 08:00.
        wait_for(
            lambda: metric(settings, "ioc_source_overdue", source="tax") == 1,
            60,
            "the tax department to become overdue at its deadline",
        )
        assert alert(settings, "source_overdue", "tax", "", "")

        # The fixes: the report arrives, and the rate is back on track.
        producer.send_many(
            [
                event("tax", "e_invoices_issued", "son-la", "2025-03-03", 12000),
                event("ict", "online_application_rate", "son-la", "2024", 85.0),
            ]
        )
    wait_for(lambda: metric(settings, "ioc_source_overdue", source="tax") == 0, 30, "tax cleared")
    wait_for(
        lambda: not alert(settings, "target_off_track", "ict", "online_application_rate", "son-la"),
        30,
        "the target alert to resolve",
    )
    statuses = {(name, status) for name, status, _ in transitions(settings)}
    assert {
        ("validation_rule", "firing"),
        ("target_off_track", "firing"),
        ("target_off_track", "resolved"),
        ("source_overdue", "firing"),
        ("source_overdue", "resolved"),
    } <= statuses

    # Kill the worker and restart it: tables and alert states come back from the changelogs,
    # and what was already firing does not fire again.
    before = transitions(settings)
    worker.kill()
    restarted = settings.model_copy(update={"worker_data_dir": settings.worker_data_dir / "again"})
    worker_factory(restarted)
    wait_for(
        lambda: metric(restarted, "ioc_indicator_rollup_value", **district) == 170,
        60,
        "the district rollup after the restart",
    )
    assert metric(restarted, "ioc_indicator_rollup_value", **province) == 170
    assert alert(restarted, "validation_rule", "ict", "dvc_online_parts_sum", "son-la")
    assert metric(restarted, "ioc_indicator_value", **rate, level="province") == 85.0
    wait_for(
        lambda: metric(restarted, "ioc_source_overdue", source="tax") is not None,
        30,
        "the reporting state to be judged again",
    )
    refired = [t for t in transitions(restarted)[len(before) :] if t[0] == "validation_rule"]
    assert refired == []


def test_a_series_goes_on_past_the_periods_it_keeps(
    settings_factory: SettingsFactory, worker_factory
) -> None:
    """A daily series passes its kept periods (60) after two months; every report after that
    is still evaluated and rolled up (the evaluation once crashed on the 61st period and lost
    its whole batch)."""
    settings = settings_factory()
    worker_factory(settings)
    first = datetime(2024, 1, 1, tzinfo=LOCAL_TZ)
    days = [first + timedelta(days=n) for n in range(75)]
    sent_at = days[-1] + timedelta(days=1, hours=7)
    reports = [
        indicator_event(
            sent_at, "police", "traffic_accidents", day.date().isoformat(), 10 + n % 3, "moc-chau"
        )
        for n, day in enumerate(days)
    ]
    with IndicatorProducer(settings) as producer:
        producer.send_many(reports)
    latest = {"source": "police", "indicator": "traffic_accidents"}
    wait_for(
        lambda: (
            metric(settings, "ioc_indicator_value", **latest, area="moc-chau", level="district")
            == reports[-1].value
        ),
        60,
        "the 75th day's value",
    )
    wait_for(
        lambda: (
            metric(
                settings, "ioc_indicator_rollup_value", **latest, area="son-la", level="province"
            )
            == reports[-1].value
        ),
        30,
        "the province rollup of the 75th day",
    )
    assert metric(settings, "ioc_internal_errors_total", stage="rollup") in (None, 0.0)
    assert metric(settings, "ioc_events_accepted_total", source="police") == len(reports)
