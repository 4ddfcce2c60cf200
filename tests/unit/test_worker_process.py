"""The worker process's own set-up."""

from __future__ import annotations

import gc
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agents.worker import FORCED_EXIT_STATUS, GC_THRESHOLDS, tune_garbage_collector
from ioc.settings import PROJECT_ROOT
from tests.support import wait_for


@pytest.fixture
def collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("collector")
def test_the_worker_freezes_what_it_built_and_collects_less_often() -> None:
    gc.unfreeze()
    built = [object() for _ in range(10)], {"a": [1]}  # containers made before consuming
    tune_garbage_collector()
    assert gc.get_threshold() == GC_THRESHOLDS
    assert gc.get_freeze_count() > 0
    assert all(o is not built for o in gc.get_objects())  # frozen: no collection walks it


#: A mode worker with the worker's bounded stop, running one service whose stop may never end.
STUCK_WORKER = """
import asyncio, sys
from mode import Service
from mode.worker import Worker
from agents.worker import BoundedStop

class Stuck(Service):
    async def on_started(self):
        print("started", flush=True)

    async def on_stop(self):
        if sys.argv[2] == "never":  # as Faust's last commit to a broker that is gone
            await asyncio.Event().wait()

class StuckWorker(BoundedStop, Worker):
    pass

StuckWorker(Stuck(), stop_seconds=float(sys.argv[1]), loglevel="INFO", quiet=True
            ).execute_from_commandline()
"""


Start = Callable[[float, str], tuple[subprocess.Popen[bytes], Path]]


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Start]:
    """Start a stuck worker (stop bound, whether its stop ends); killed after the test."""
    started: list[subprocess.Popen[bytes]] = []

    def start(stop_seconds: float, stop: str) -> tuple[subprocess.Popen[bytes], Path]:
        log = tmp_path / "worker.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-c", STUCK_WORKER, str(stop_seconds), stop],
                cwd=PROJECT_ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        started.append(proc)
        wait_for(lambda: "started" in log.read_text(), 30, "the worker to start")
        return proc, log

    yield start
    for proc in started:  # a worker the bound did not end (a failed test) ends here
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_a_stop_that_never_ends_exits_after_the_bound_and_says_what_it_waited_on(
    start_worker: Start,
) -> None:
    proc, log = start_worker(1.0, "never")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == FORCED_EXIT_STATUS
    output = log.read_text()
    assert "not stopped after 1 s" in output
    assert "Stuck.on_stop" in output  # the task that held the stop up, with its awaits
    assert "Event.wait" in output


def test_a_second_stop_signal_exits_at_once(start_worker: Start) -> None:
    proc, log = start_worker(600.0, "never")
    proc.send_signal(signal.SIGTERM)
    wait_for(lambda: "Stuck]: Stopping" in log.read_text(), 30, "the stop to begin")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == FORCED_EXIT_STATUS
    assert "a second stop signal (SIGINT)" in log.read_text()


def test_a_stop_that_ends_in_time_exits_cleanly(start_worker: Start) -> None:
    proc, log = start_worker(5.0, "at once")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0  # the timer thread held nothing up, and did not fire
    assert "without having stopped" not in log.read_text()
