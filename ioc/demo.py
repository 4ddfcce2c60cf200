"""``make demo``: the live monitor on this machine, stopped cleanly by Ctrl-C or ``--duration``.

It starts Kafka (unless one already runs, which it then leaves running), the worker, pushes the
seed figures of the catalogue, and prints where to look. Everything it started, it stops.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Iterator
from types import FrameType

import typer

from ioc.local.kafka import LocalKafka
from ioc.local.process import wait_until
from ioc.local.worker import WorkerProcess, http_get
from ioc.settings import Settings
from streams.catalogue import Catalogue, default_catalogue
from streams.events import IndicatorEvent
from streams.producer import IndicatorProducer
from streams.topics import Topics, ensure_topics


def seed_events(catalogue: Catalogue) -> Iterator[IndicatorEvent]:
    """One event per seed figure of the catalogue (the real values from the seeds)."""
    for indicator in catalogue.indicators.values():
        for point in indicator.history:
            yield IndicatorEvent.new(
                source=indicator.owner,
                indicator=indicator.code,
                area=point.area,
                period=str(point.period),
                value=point.value,
            )


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _sample(metrics: bytes, name: str) -> float:
    total = 0.0
    for line in metrics.decode().splitlines():
        if line.startswith(name):
            total += float(line.rsplit(" ", 1)[1])
    return total


def run_demo(settings: Settings, duration: float | None) -> None:
    """Run broker, worker and seed pushes until Ctrl-C (or ``duration`` seconds)."""
    catalogue = default_catalogue()
    kafka = LocalKafka(settings)
    run_dir = settings.worker_data_dir / "demo"
    worker = WorkerProcess(settings, run_dir / "worker.log")
    started_kafka = False
    with _sigterm_as_interrupt():
        try:
            typer.echo("Khởi động Kafka ... / Starting Kafka ...")
            result = kafka.start(progress=typer.echo)
            started_kafka = not result.already_running
            ensure_topics(settings, Topics(settings.topic_prefix).all(catalogue.sources))
            typer.echo("Khởi động worker ... / Starting the worker ...")
            worker.start()
            events = list(seed_events(catalogue))
            with IndicatorProducer(settings) as producer:
                producer.send_many(events)
            metrics_url = f"{settings.worker_url}/metrics"
            wait_until(
                lambda: (
                    _sample(http_get(metrics_url) or b"", "ioc_events_accepted_total")
                    >= len(events)
                ),
                30,
                interval=0.5,
            )
            typer.echo(
                "\nIOC đang chạy / The IOC monitor is running:\n"
                f"  Kafka:    {result.bootstrap}\n"
                f"  Metrics:  {metrics_url}\n"
                f"  Ví dụ / e.g.: curl -s {metrics_url} | grep online_application_rate\n"
                f"  Nhật ký worker / worker log: {worker.log_file}\n"
                "Nhấn Ctrl-C để dừng / Press Ctrl-C to stop.\n"
            )
            deadline = None if duration is None else time.monotonic() + duration
            while deadline is None or time.monotonic() < deadline:
                body = http_get(metrics_url) or b""
                typer.echo(
                    f"  nhận / received {_sample(body, 'ioc_events_received_total'):.0f}"
                    f"  hợp lệ / accepted {_sample(body, 'ioc_events_accepted_total'):.0f}"
                    f"  từ chối / rejected {_sample(body, 'ioc_events_rejected_total'):.0f}"
                )
                time.sleep(5 if deadline is None else min(5, max(0, deadline - time.monotonic())))
        except KeyboardInterrupt:
            typer.echo("\nĐang dừng ... / Stopping ...")
        finally:
            worker.stop()
            if started_kafka:
                kafka.stop()
            typer.echo("Đã dừng tất cả / Everything has stopped.")
