"""Fixtures of the fault suite: the uninterrupted reference run, and the figures it writes."""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ioc.local.process import free_port
from ioc.local.worker import WorkerProcess
from ioc.settings import PROJECT_ROOT, Settings
from tests.faults.harness import (
    Ledger,
    Reference,
    exported,
    outcomes,
    send,
    settle,
    workload,
)
from tests.integration.test_hostile_input import CASES

REPORT = PROJECT_ROOT / "docs" / "reliability.md"


@pytest.fixture(scope="session")
def ledger() -> Iterator[Ledger]:
    """Figures of every scenario; written to ``docs/reliability.md`` when all of them ran."""
    book = Ledger()
    yield book
    if book.rows:
        print("\n" + book.write(REPORT, inputs_tried=len(CASES)))


@pytest.fixture(scope="session")
def fault_seed() -> int:
    """The seed of the kill points and join/leave moments (``IOC_FAULT_SEED`` replays one)."""
    seed = int(os.environ.get("IOC_FAULT_SEED") or random.SystemRandom().randrange(1, 10**6))
    print(f"[faults] seed {seed} (IOC_FAULT_SEED={seed} replays it)")
    return seed


def fault_settings(bootstrap: str, home: Path, **overrides: object) -> Settings:
    """Settings for one run: its own topic prefix (so its own group and changelogs)."""
    values: dict[str, object] = {
        "kafka_bootstrap": bootstrap,
        "topic_prefix": f"f{uuid.uuid4().hex[:10]}.",
        "worker_port": free_port(),
        "worker_data_dir": home / f"worker-{uuid.uuid4().hex[:6]}",
        "partitions": 2,
    }
    return Settings(**(values | overrides))


@pytest.fixture(scope="session")
def reference(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Reference:
    """The workload through one worker that is never disturbed: what every fault run must equal."""
    home = tmp_path_factory.mktemp("reference")
    settings = fault_settings(kafka_bootstrap, home)
    worker = WorkerProcess(settings, home / "worker.log")
    worker.start()
    try:
        send(settings, workload())
        snapshot = settle(settings, 180, "the reference run", [worker.log_file])
        values, _ = exported([settings.worker_url])
        counted = outcomes(settings.worker_url)
    finally:
        worker.stop()
    # The workload exercises every part of the state the fault runs are compared on.
    assert snapshot.series
    assert snapshot.rollups
    assert snapshot.alerts
    assert values
    assert counted["duplicate"]
    assert counted["rejected"]
    return Reference(snapshot, values, counted)
