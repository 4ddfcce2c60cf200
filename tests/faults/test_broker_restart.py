"""The broker stops and starts again mid-stream: producers retry, the worker reconnects."""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agents.worker import FORCED_EXIT_STATUS
from ioc.local.kafka import LocalKafka
from ioc.local.process import free_port, pid_alive
from ioc.local.worker import WorkerProcess
from ioc.settings import Settings
from tests.faults.conftest import fault_settings
from tests.faults.harness import (
    UNCLOSED_CLIENT_SOCKET,
    Figures,
    Ledger,
    Reference,
    Sender,
    compare,
    exported,
    kill_points,
    lag,
    send,
    settle,
    wait_until,
    workload,
)

pytestmark = [pytest.mark.integration, pytest.mark.faults, UNCLOSED_CLIENT_SOCKET]

STREAM_SECONDS = 30.0
DOWN_SECONDS = 5.0


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[LocalKafka]:
    """A broker of this test's own: restarting it disturbs no other test."""
    kafka = LocalKafka(
        Settings(
            kafka_port=free_port(),
            kafka_controller_port=free_port(),
            kafka_data_dir=tmp_path / "kafka",
        )
    )
    kafka.start()
    try:
        yield kafka
    finally:
        kafka.stop()


def test_broker_restart_mid_stream_loses_nothing(
    own_broker: LocalKafka, tmp_path: Path, reference: Reference, ledger: Ledger, fault_seed: int
) -> None:
    # Producers wait for the broker for up to two minutes before they give up (and say so).
    settings = fault_settings(own_broker.bootstrap, tmp_path, producer_timeout=120.0)
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    worker.start()
    (moment,) = kill_points(random.Random(fault_seed + 2), 1, STREAM_SECONDS)
    started = time.monotonic()
    sender = Sender(settings, workload(), STREAM_SECONDS)
    sender.start()
    try:
        time.sleep(max(0.0, started + moment - time.monotonic()))
        stopped_at = time.monotonic() - started
        own_broker.stop()
        time.sleep(DOWN_SECONDS)
        own_broker.start()
        back_at = time.monotonic() - started
        sent = sender.finish(timeout=240)
        snapshot = settle(settings, 240, "the run with a broker restart", [worker.log_file])
        assert worker.alive(), "the worker rode out the restart"
        values, _ = exported([settings.worker_url])
    finally:
        worker.stop()
    comparison = compare(reference.snapshot, snapshot)
    ledger.add(
        Figures(
            scenario="Broker restart / Khởi động lại Kafka",
            faults=f"broker down from {stopped_at:.0f} s to {back_at:.0f} s",
            events=sent,
            comparison=comparison,
            seconds=time.monotonic() - started,
            seed=fault_seed,
        )
    )
    assert comparison.exact, str(comparison)
    assert values == reference.values


def test_a_worker_told_to_stop_while_the_broker_is_gone_exits_within_its_bound(
    own_broker: LocalKafka, tmp_path: Path
) -> None:
    # Without the bound, Faust's last commit waited for the dead broker for ever ("Wait for
    # streams..."), and the worker outlived every SIGTERM. A worker with nothing left to
    # commit may still stop cleanly: the broker dies right after a burst, so there mostly is.
    settings = fault_settings(own_broker.bootstrap, tmp_path, worker_stop_seconds=5.0)
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    worker.start()
    try:
        send(settings, workload()[:100])
        wait_until(lambda: lag(settings) == 0, 60, "the worker to commit the first events")
        send(settings, workload()[100:2100])
        broker = own_broker.status().pid
        assert broker is not None
        os.kill(broker, signal.SIGKILL)
        wait_until(lambda: not pid_alive(broker), 10, "the broker to die")
        # SIGTERM, and SIGKILL (status -9) only after 60 s: the status is the worker's own
        status = worker.stop(timeout=60)
    finally:
        worker.stop()
    log = worker.log_file.read_text()
    assert status in (0, FORCED_EXIT_STATUS), f"exit status {status}"
    if status == FORCED_EXIT_STATUS:
        assert "not stopped after 5 s" in log
        assert "Its tasks were waiting on:" in log
