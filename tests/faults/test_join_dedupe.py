"""Workers join while the week streams in: every re-sent copy is still counted a duplicate.

A copy of an event already accepted must be dropped as a duplicate by whichever worker reads
it, also when the partition moved to a newcomer between the original and the copy (the
newcomer recovers the dedupe table from its changelog). No worker leaves or crashes here, so
every worker's counters are there at the end, and across them every message is counted once,
exactly as in the uninterrupted run: a worker that gives partitions up commits what it
processed, and none hands its agents a record twice or drops one it handed over
(``agents.transport``). Before the last of those fixes (records Faust cleared from the
streams' queues after a recovery's seek), one run in four counted 152 of the 4,040 messages
a second time.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from tests.faults.conftest import fault_settings
from tests.faults.harness import (
    OUTCOMES,
    UNCLOSED_CLIENT_SOCKET,
    Figures,
    Ledger,
    Reference,
    Sender,
    compare,
    group_worker,
    kill_points,
    outcomes,
    settle,
    workload,
)

pytestmark = [pytest.mark.integration, pytest.mark.faults, UNCLOSED_CLIENT_SOCKET]

STREAM_SECONDS = 30.0


def test_duplicates_are_counted_across_workers_that_join_mid_stream(
    kafka_bootstrap: str, tmp_path: Path, reference: Reference, ledger: Ledger, fault_seed: int
) -> None:
    first = fault_settings(kafka_bootstrap, tmp_path)
    workers = [group_worker(first, tmp_path, name) for name in "abc"]
    moments = kill_points(random.Random(fault_seed + 2), 2, STREAM_SECONDS)
    workers[0].start()
    started = time.monotonic()
    sender = Sender(first, workload(), STREAM_SECONDS)
    sender.start()
    done: list[str] = []
    try:
        for name, newcomer, moment in zip("bc", workers[1:], moments, strict=True):
            time.sleep(max(0.0, started + moment - time.monotonic()))
            newcomer.start()
            done.append(f"{name} joins at {time.monotonic() - started:.0f} s")
        sent = sender.finish()
        snapshot = settle(first, 240, "the run with joins", [w.log_file for w in workers])
        per_worker = [outcomes(w.settings.worker_url) for w in workers]
    finally:
        for w in workers:
            w.stop()
    counted = {outcome: sum(c[outcome] for c in per_worker) for outcome in OUTCOMES}
    comparison = compare(reference.snapshot, snapshot)
    ledger.add(
        Figures(
            scenario="Join, duplicates counted / Worker vào, đếm trùng lặp",
            faults="; ".join(done),
            events=sent,
            comparison=comparison,
            seconds=time.monotonic() - started,
            seed=fault_seed,
        )
    )
    assert comparison.exact, str(comparison)
    ref = reference.outcomes
    shown = f"counted {counted} (per worker {per_worker}), uninterrupted {ref}"
    assert counted == ref, shown
