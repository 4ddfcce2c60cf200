"""Retry storms: three producers resend the whole week at once; each event counts once."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ioc.local.worker import WorkerProcess
from tests.faults.conftest import fault_settings
from tests.faults.harness import (
    UNCLOSED_CLIENT_SOCKET,
    Figures,
    Ledger,
    Reference,
    Sender,
    compare,
    exported,
    outcomes,
    settle,
    workload,
)

pytestmark = [pytest.mark.integration, pytest.mark.faults, UNCLOSED_CLIENT_SOCKET]

PRODUCERS = 3


def test_every_event_resent_by_three_producers_counts_once(
    kafka_bootstrap: str, tmp_path: Path, reference: Reference, ledger: Ledger
) -> None:
    settings = fault_settings(kafka_bootstrap, tmp_path)
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    worker.start()
    started = time.monotonic()
    try:
        # Separate producers: the broker's idempotence cannot help, only the event id can.
        senders = [Sender(settings, workload(), 10.0) for _ in range(PRODUCERS)]
        for sender in senders:
            sender.start()
        sent = sum(sender.finish() for sender in senders)
        snapshot = settle(settings, 240, "the retry storm", [worker.log_file])
        values, _ = exported([settings.worker_url])
        counted = outcomes(settings.worker_url)
    finally:
        worker.stop()
    comparison = compare(reference.snapshot, snapshot)
    ledger.add(
        Figures(
            scenario="Retry storm / Gửi lại dồn dập",
            faults=f"{PRODUCERS} producers send every message at once",
            events=sent,
            comparison=comparison,
            seconds=time.monotonic() - started,
        )
    )
    assert comparison.exact, str(comparison)
    assert values == reference.values
    ref = reference.outcomes
    assert counted["received"] == sent == PRODUCERS * ref["received"]
    # Each event is accepted once, as in the uninterrupted run (a correction is a new event,
    # and an old copy arriving after its correction is a duplicate, not a step back).
    assert counted["accepted"] == ref["accepted"]
    # Bad messages are refused each time they come; every other copy is a duplicate.
    assert counted["rejected"] == PRODUCERS * ref["rejected"]
    assert counted["duplicate"] == counted["received"] - ref["accepted"] - counted["rejected"]
