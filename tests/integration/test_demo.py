"""``ioc demo`` (what ``make demo`` runs): the seed value at /metrics, and Ctrl-C leaves nothing."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ioc.local.process import free_port
from ioc.local.worker import http_get
from tests.support import sample, scrape, wait_for

pytestmark = pytest.mark.integration


def processes_with(marker: str) -> list[int]:
    """Pids of every process whose environment holds ``marker`` (our children, and theirs)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                state = (entry / "stat").read_text().rpartition(")")[2].split()[0]
                if state != "Z":
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_demo_shows_the_seed_value_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    worker_port, prometheus_port = free_port(), free_port()
    marker = f"IOC_DEMO_TEST_MARKER={tmp_path.name}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOC_")} | {
        "IOC_KAFKA_PORT": str(free_port()),
        "IOC_KAFKA_CONTROLLER_PORT": str(free_port()),
        "IOC_KAFKA_DATA_DIR": str(tmp_path / "kafka"),
        "IOC_WORKER_PORT": str(worker_port),
        "IOC_PROMETHEUS_PORT": str(prometheus_port),
        "IOC_ALERTMANAGER_PORT": str(free_port()),
        "IOC_WORKER_DATA_DIR": str(tmp_path / "worker"),
        "IOC_DEMO_TEST_MARKER": tmp_path.name,  # inherited by every child
    }
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        # Started as a script's background job is (``make demo &``): with SIGINT ignored (the
        # shell's trap, kept across exec). Ctrl-C must stop it all the same.
        demo = subprocess.Popen(
            ["sh", "-c", f"trap '' INT; exec {shlex.quote(sys.executable)} -m ioc demo"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: "Ctrl-C" in log.read_text(), 180, "the demo to be ready")
        url = f"http://127.0.0.1:{worker_port}"
        value = sample(
            scrape(url),
            "ioc_indicator_value",
            source="ict",
            indicator="online_application_rate",
            area="son-la",
            level="province",
        )
        assert value == 69.46
        # the demo, the broker, the worker, the simulator, Prometheus, Alertmanager
        assert len(processes_with(marker)) >= 6
        query = f"http://127.0.0.1:{prometheus_port}/api/v1/query?query=up"
        wait_for(
            lambda: b'"job":"ioc-worker"' in (http_get(query) or b""),
            60,
            "Prometheus to scrape the worker",
        )

        demo.send_signal(signal.SIGINT)  # what Ctrl-C sends
        assert demo.wait(timeout=90) == 0
    finally:
        if demo.poll() is None:
            demo.kill()
    output = log.read_text()
    assert "Kafka is unsecured (loopback only 127.0.0.1:" in output  # said before it starts
    assert "Everything has stopped" in output
    wait_for(lambda: not processes_with(marker), 15, "every demo process to exit")
