"""An agency's report through the real broker and worker: every input lands exactly once."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agents.gatekeeper import position_of, remembered
from ioc.settings import Settings
from streams.events import IndicatorEvent
from streams.producer import IndicatorProducer
from streams.reader import read_records, read_topic
from tests.conftest import SettingsFactory
from tests.support import (
    epoch_micros,
    event_counts,
    indicator_event,
    run_ioc,
    sample,
    scrape,
    wait_for,
    write_dedupe_entries,
)

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


def test_dedupe_entries_written_as_json_by_earlier_code_still_hold_after_an_upgrade(
    settings_factory: SettingsFactory, worker_factory
) -> None:
    # A worker before the byte entries wrote each dedupe entry as a JSON string to the
    # table's changelog. The report it had seen is sent again to a worker of today, which
    # recovers that changelog: still a duplicate. A correction after it is accepted, and
    # the entry then written is bytes, remembering both ids.
    settings = settings_factory()
    assert run_ioc(settings, "topics", "create").returncode == 0
    sent = datetime.now(UTC) - timedelta(hours=1)
    seen = indicator_event(sent, "ict", "online_application_rate", "2023", 69.46)
    with IndicatorProducer(settings) as producer:
        delivery = producer.send(seen)
    micros = epoch_micros(seen.sent_at)
    row = f"{seen.indicator}|{seen.area}|{seen.period}"
    old_entry = json.dumps(f"{micros:x} {seen.event_id.hex} -").encode()
    changelog = write_dedupe_entries(settings, [(row, old_entry, delivery.partition)])

    worker_factory(settings)

    def dropped() -> dict[str, float] | None:
        # The scrape runs in a thread, and can fall between the counters a batch adds to.
        counts = event_counts(settings, "ict", "received", "duplicate", "accepted")
        return counts if counts["duplicate"] and counts["received"] else None

    counts = wait_for(dropped, 60, "the report seen by the earlier worker, dropped as a duplicate")
    assert counts == {"received": 1, "duplicate": 1, "accepted": 0}

    correction = seen.model_copy(
        update={"event_id": uuid.uuid4(), "value": 70.1, "sent_at": sent + timedelta(minutes=5)}
    )
    with IndicatorProducer(settings) as producer:
        fixed = producer.send(correction)
    wait_for(
        lambda: counter(settings, "ioc_events_correction_total", source="ict") or None,
        30,
        "the correction, accepted over the recovered entry",
    )
    key = json.dumps(row).encode()

    def newest_entry() -> bytes | None:
        entries = [r.value for r in read_records(settings, changelog) if r.key == key]
        return entries[-1] if len(entries) > 1 else None  # the old one, then the new

    entry = wait_for(newest_entry, 30, "the entry rewritten on the changelog")
    assert entry[0] == 0  # bytes now, no longer JSON
    assert remembered(entry) == (
        micros + 5 * 60 * 1_000_000,
        {
            seen.event_id.bytes: None,  # where the earlier worker read it: not kept then
            correction.event_id.bytes: position_of(fixed.partition, fixed.offset),
        },
    )
