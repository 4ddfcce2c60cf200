"""``ioc kafka start|stop|status`` on a real broker, and the errors a person can act on."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ioc.local.process import ServiceRecord, free_port, pid_alive

pytestmark = pytest.mark.integration


def ioc_kafka(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ioc", "kafka", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.fixture
def broker_env(tmp_path: Path) -> dict[str, str]:
    """Environment for a broker of this test's own, on free ports, in a temporary directory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOC_")}
    return env | {
        "IOC_KAFKA_PORT": str(free_port()),
        "IOC_KAFKA_CONTROLLER_PORT": str(free_port()),
        "IOC_KAFKA_DATA_DIR": str(tmp_path / "kafka"),
    }


def test_start_twice_stop_twice(broker_env: dict[str, str], tmp_path: Path) -> None:
    bootstrap = f"127.0.0.1:{broker_env['IOC_KAFKA_PORT']}"
    first = ioc_kafka(broker_env, "start")
    try:
        assert first.returncode == 0, first.stderr
        assert first.stdout.strip().splitlines()[-1] == bootstrap
        record = ServiceRecord.read(tmp_path / "kafka" / "broker.json")
        assert record is not None
        assert pid_alive(record.pid)
        # The broker runs with the JVM's quick compiler only (Settings.kafka_jit, "c1").
        arguments = Path(f"/proc/{record.pid}/cmdline").read_bytes().split(b"\0")
        assert b"-XX:TieredStopAtLevel=1" in arguments

        second = ioc_kafka(broker_env, "start")
        assert second.returncode == 0, second.stderr
        assert "already running" in second.stdout
        assert bootstrap in second.stdout

        status = ioc_kafka(broker_env, "status")
        assert status.returncode == 0
        assert f"pid {record.pid}" in status.stdout
    finally:
        stopped = ioc_kafka(broker_env, "stop")
    assert stopped.returncode == 0
    assert "has stopped" in stopped.stdout
    assert not pid_alive(record.pid)

    again = ioc_kafka(broker_env, "stop")
    assert again.returncode == 0
    assert "No Kafka broker is running" in again.stdout
    assert ioc_kafka(broker_env, "status").returncode == 3


def test_taken_port_names_the_port_and_the_fix(broker_env: dict[str, str]) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        result = ioc_kafka(broker_env | {"IOC_KAFKA_PORT": str(port)}, "start")

    assert result.returncode == 6
    assert f"127.0.0.1:{port}" in result.stderr
    assert "IOC_KAFKA_PORT" in result.stderr
    assert "already in use" in result.stderr


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("\x00\x01garbage without equals\n", "unreadable"),
        ("version=1\nnode.id=1\n", "lacks cluster.id"),
        ("version=1\ncluster.id=abc\nnode.id=7\n", "node.id is 7"),
    ],
)
def test_corrupt_meta_properties(
    broker_env: dict[str, str], tmp_path: Path, content: str, problem: str
) -> None:
    data = tmp_path / "kafka" / "data"
    data.mkdir(parents=True)
    (data / "meta.properties").write_text(content)

    result = ioc_kafka(broker_env, "start")

    assert result.returncode == 6
    assert "corrupt" in result.stderr
    assert problem in result.stderr
    assert "ioc kafka reset" in result.stderr


def test_data_without_meta_properties_is_corrupt(
    broker_env: dict[str, str], tmp_path: Path
) -> None:
    data = tmp_path / "kafka" / "data"
    (data / "ioc.feed.ict-0").mkdir(parents=True)

    result = ioc_kafka(broker_env, "start")

    assert result.returncode == 6
    assert "no meta.properties" in result.stderr


def test_reset_then_start_recovers_from_corruption(
    broker_env: dict[str, str], tmp_path: Path
) -> None:
    data = tmp_path / "kafka" / "data"
    data.mkdir(parents=True)
    (data / "meta.properties").write_text("garbage")
    assert ioc_kafka(broker_env, "reset", "--yes").returncode == 0
    try:
        started = ioc_kafka(broker_env, "start")
        assert started.returncode == 0, started.stderr
    finally:
        ioc_kafka(broker_env, "stop")


def test_missing_java_says_how_to_install(broker_env: dict[str, str]) -> None:
    env = {k: v for k, v in broker_env.items() if k != "JAVA_HOME"} | {"PATH": "/nonexistent"}

    result = ioc_kafka(env, "start")

    assert result.returncode == 6
    assert "Java was not found" in result.stderr
    assert "apt-get install" in result.stderr


def test_missing_maven_says_how_to_install(broker_env: dict[str, str], tmp_path: Path) -> None:
    java = shutil.which("java")
    assert java, "these tests need Java 17 installed"
    java_home = Path(os.path.realpath(java)).parent.parent
    env = broker_env | {
        "PATH": "/nonexistent",
        "JAVA_HOME": str(java_home),
        "IOC_CACHE_DIR": str(tmp_path / "empty-cache"),
    }

    result = ioc_kafka(env, "start")

    assert result.returncode == 6
    assert "Maven (mvn) was not found" in result.stderr
