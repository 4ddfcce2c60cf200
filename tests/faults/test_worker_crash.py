"""Kill -9 the worker at random points while the week streams in: nothing lost, nothing doubled."""

from __future__ import annotations

import random
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
    kill_points,
    settle,
    workload,
)

pytestmark = [pytest.mark.integration, pytest.mark.faults, UNCLOSED_CLIENT_SOCKET]

KILLS = 3
STREAM_SECONDS = 30.0


def test_kill_9_at_random_points_loses_and_doubles_nothing(
    kafka_bootstrap: str, tmp_path: Path, reference: Reference, ledger: Ledger, fault_seed: int
) -> None:
    settings = fault_settings(kafka_bootstrap, tmp_path)
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    points = kill_points(random.Random(fault_seed), KILLS, STREAM_SECONDS)
    worker.start()
    started = time.monotonic()
    sender = Sender(settings, workload(), STREAM_SECONDS)
    sender.start()
    killed_at: list[float] = []
    try:
        for point in points:
            time.sleep(max(0.0, started + point - time.monotonic()))
            killed_at.append(time.monotonic() - started)
            worker.kill()  # SIGKILL: no LeaveGroup, no flush, no commit
            worker.start(timeout=120)
        sent = sender.finish()
        snapshot = settle(settings, 240, "the run with kills", [worker.log_file])
    finally:
        worker.stop()
    comparison = compare(reference.snapshot, snapshot)
    ledger.add(
        Figures(
            scenario="Worker crash / Worker bị kill -9",
            faults=f"{KILLS} × kill -9 at " + ", ".join(f"{t:.1f}" for t in killed_at) + " s",
            events=sent,
            comparison=comparison,
            seconds=time.monotonic() - started,
            seed=fault_seed,
        )
    )
    assert len(killed_at) == KILLS
    assert comparison.exact, str(comparison)
