"""An agency's report through the real broker and worker: every input lands exactly once."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ioc.settings import Settings
from streams.events import IndicatorEvent
from streams.producer import IndicatorProducer
from streams.reader import read_topic
from tests.conftest import SettingsFactory
from tests.support import run_ioc, sample, scrape, wait_for

pytestmark = pytest.mark.integration

REPORT = """\
Nguồn,Chỉ tiêu,Địa bàn,Kỳ,Giá trị
ict,online_application_rate,son-la,2023,"69,46"
ict,dvc_online_total,son-la,2024-Q3,"1,886"
ict,dvc_online_partial,son-la,2024-Q3,312
ict,dvc_online_full,son-la,2024-Q3,1554
ict,online_application_rate,son-la,2023,150
ict,dvc_online_total,son-la,2024-Q3,"1,886"
ict,dvc_online_total,son-la,2024-Q3,1866
"""


def counter(settings: Settings, name: str, **labels: str) -> float:
    return sample(scrape(settings.worker_url), name, **labels) or 0.0


def test_report_with_bad_row_duplicate_correction_and_spoof(
    settings_factory: SettingsFactory, worker_factory, tmp_path: Path
) -> None:
    settings = settings_factory()
    worker_factory(settings)
    report = tmp_path / "bao-cao-ict.csv"
    report.write_text(REPORT, encoding="utf-8")
    topics = f"{settings.topic_prefix}ioc."

    refused = run_ioc(settings, "push", "--file", str(report))
    assert refused.returncode == 4
    assert "row 6" in refused.stderr
    assert "out of range" in refused.stderr
    assert read_topic(settings, f"{topics}feed.ict") == []  # nothing sent while a row is bad

    pushed_at = time.time()
    sent = run_ioc(settings, "push", "--file", str(report), "--skip-invalid")
    assert sent.returncode == 7, sent.stderr  # partial: the bad row was skipped
    assert "Sent 6 rows" in sent.stdout

    spoof = IndicatorEvent(
        event_id=uuid.uuid4(),
        source="tax",
        indicator="tax_revenue",
        area="son-la",
        period="2025-01",
        value=1.0,
        observed_at=datetime.now(UTC) - timedelta(days=30),
        sent_at=datetime.now(UTC),
    )
    with IndicatorProducer(settings) as producer:
        producer.send_raw(f"{topics}feed.ict", spoof.to_json(), key=spoof.key)

    wait_for(
        lambda: counter(settings, "ioc_events_received_total", source="ict") == 7,
        30,
        "the worker to read all 7 messages",
    )
    wait_for(lambda: len(read_topic(settings, f"{topics}deadletter")) == 1, 20, "1 dead letter")
    # The validating agent says when it last finished a batch: after these were pushed.
    last_batch = counter(settings, "ioc_agent_last_batch_timestamp_seconds", agent="validate")
    assert pushed_at <= last_batch <= time.time()
    assert len(read_topic(settings, f"{topics}indicators")) == 5
    assert counter(settings, "ioc_events_accepted_total", source="ict") == 5
    assert counter(settings, "ioc_events_duplicate_total", source="ict") == 1
    assert counter(settings, "ioc_events_correction_total", source="ict") == 1
    assert counter(settings, "ioc_events_rejected_total", source="ict", reason="source_mismatch")

    def latest(indicator: str) -> float:
        return counter(
            settings,
            "ioc_indicator_value",
            source="ict",
            indicator=indicator,
            area="son-la",
            level="province",
        )

    wait_for(lambda: latest("dvc_online_total") == 1866, 20, "the corrected total")
    assert latest("online_application_rate") == 69.46

    rejects = run_ioc(settings, "rejects", "--source", "ict")
    assert rejects.returncode == 0, rejects.stderr
    assert "[source_mismatch]" in rejects.stdout
    assert "claims source 'tax'" in rejects.stdout
    assert "1 rejected messages for 'ict'" in rejects.stdout
