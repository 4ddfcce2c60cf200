"""Fixtures: one real Kafka broker per test session, a unique topic prefix per test, and
factories for settings and worker processes."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ioc.local.kafka import LocalKafka
from ioc.local.process import free_port
from ioc.local.worker import WorkerProcess
from ioc.settings import Settings


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap address of a real broker: ``IOC_KAFKA_BOOTSTRAP`` if set, else one we start."""
    external = os.environ.get("IOC_KAFKA_BOOTSTRAP")
    if external:
        yield external
        return
    home = tmp_path_factory.mktemp("kafka")
    kafka = LocalKafka(
        Settings(
            kafka_port=free_port(),
            kafka_controller_port=free_port(),
            kafka_data_dir=home,
        )
    )
    result = kafka.start()
    try:
        yield result.bootstrap
    finally:
        kafka.stop()


@pytest.fixture
def topic_prefix() -> str:
    """A prefix no other test uses, so topics and consumer groups never meet."""
    return f"t{uuid.uuid4().hex[:10]}."


#: Lines of each worker's log printed after a test (IOC_TEST_LOG_LINES to see more).
LOG_LINES = int(os.environ.get("IOC_TEST_LOG_LINES", "30"))

SettingsFactory = Callable[..., Settings]


@pytest.fixture
def settings_factory(kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> SettingsFactory:
    """Settings bound to the session broker and this test's prefix; keywords override."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "kafka_bootstrap": kafka_bootstrap,
            "topic_prefix": topic_prefix,
            "worker_port": free_port(),
            "worker_data_dir": tmp_path / f"worker-{uuid.uuid4().hex[:6]}",
            "partitions": 2,
        }
        return Settings(**(values | overrides))

    return make


@pytest.fixture
def worker_factory(tmp_path: Path) -> Iterator[Callable[[Settings], WorkerProcess]]:
    """Start ``ioc worker`` processes; all are stopped (and their logs shown on failure)."""
    workers: list[WorkerProcess] = []

    def start(settings: Settings) -> WorkerProcess:
        worker = WorkerProcess(settings, tmp_path / f"worker-{len(workers)}.log")
        workers.append(worker)
        worker.start()
        return worker

    yield start
    for worker in workers:
        worker.stop()
        print(f"--- {worker.log_file} (tail) ---")
        lines = worker.log_file.read_text(errors="replace").splitlines()
        print("\n".join(lines[-LOG_LINES:]))


# Prometheus, Alertmanager and an on-call webhook receiver, for the alerting tests.
from tests.promstack import monitoring_factory, webhook_receiver  # noqa: E402, F401
