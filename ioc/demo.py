"""``make demo``: the live monitor on this machine, stopped cleanly by Ctrl-C or ``--duration``.

It starts Kafka (unless one already runs, which it then leaves running), the worker, pushes the
seed figures of the catalogue, starts the simulator of all 41 sources (with a few injected
problems: a silent source, outliers, late, malformed, duplicate and spoofed reports) and
prints where to look. Everything it started, it stops.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from types import FrameType

import typer

from ioc.errors import ConfigurationError
from ioc.local.kafka import LocalKafka
from ioc.local.process import wait_until
from ioc.local.prometheus import (
    AlertmanagerOverrides,
    LocalMonitoringStack,
    prometheus_available,
)
from ioc.local.worker import SimulatorProcess, WorkerProcess, http_get
from ioc.settings import Settings
from streams.catalogue import Catalogue, default_catalogue
from streams.events import IndicatorEvent
from streams.periods import LOCAL_TZ
from streams.producer import IndicatorProducer
from streams.topics import Topics, ensure_topics

#: What the demo installs when Prometheus or Alertmanager is missing (and it may).
DEBIAN_PACKAGES = ("prometheus", "prometheus-alertmanager")


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
def _stop_signals_as_interrupt() -> Iterator[None]:
    """SIGINT and SIGTERM both stop the demo, in order, as Ctrl-C does.

    SIGINT is set here too: Python keeps an inherited "ignore" for it, and a shell script runs
    its background jobs (``make demo &``, ``nohup``) with SIGINT ignored, so ``kill -INT`` did
    nothing to such a demo (seen: the demo test, run from a background job, waited 90 s).
    """

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    stop_signals = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, handler) for sig in stop_signals}
    try:
        yield
    finally:
        for sig, action in previous.items():
            signal.signal(sig, action)


def _sample(metrics: bytes, name: str) -> float:
    total = 0.0
    for line in metrics.decode().splitlines():
        if line.startswith(name):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def unsecured_notice(settings: Settings) -> str:
    """The line the demo starts with: its broker has no logins and no ACLs, so it must be
    reachable from this machine only. Refuses settings under which that would be untrue."""
    if settings.kafka_security_protocol != "PLAINTEXT":
        raise ConfigurationError(
            "Demo luôn chạy Kafka không bảo mật; bỏ IOC_KAFKA_SECURITY_PROTOCOL, hoặc chạy "
            "bảo mật theo docs/security.md. / The demo always runs Kafka unsecured; unset "
            "IOC_KAFKA_SECURITY_PROTOCOL, or run secured as docs/security.md shows."
        )
    if not _is_loopback(settings.kafka_host):
        raise ConfigurationError(
            f"Demo chạy Kafka không bảo mật nên chỉ được nghe trên loopback, không phải "
            f"IOC_KAFKA_HOST={settings.kafka_host}. / The demo's Kafka is unsecured, so it "
            f"listens on loopback only, not IOC_KAFKA_HOST={settings.kafka_host}."
        )
    address = f"{settings.kafka_host}:{settings.kafka_port}"
    return (
        f"Kafka không bảo mật (chỉ loopback {address}, không đăng nhập, không ACL) / "
        f"Kafka is unsecured (loopback only {address}, no logins, no ACLs); "
        "cách bảo mật / how to secure it: docs/security.md"
    )


def demo_settings(settings: Settings, speed: float) -> Settings:
    """The demo's settings: one simulated clock, starting now, shared by every process."""
    if settings.clock_start is not None:
        return settings  # the operator chose a clock already
    return settings.model_copy(
        update={
            "clock_start": datetime.now(LOCAL_TZ).replace(microsecond=0),
            "clock_epoch": time.time(),
            "clock_speed": speed,
        }
    )


def _summary(body: bytes) -> str:
    return (
        f"  nhận / received {_sample(body, 'ioc_events_received_total'):.0f}"
        f"  hợp lệ / accepted {_sample(body, 'ioc_events_accepted_total'):.0f}"
        f"  trùng / duplicate {_sample(body, 'ioc_events_duplicate_total'):.0f}"
        f"  từ chối / rejected {_sample(body, 'ioc_events_rejected_total'):.0f}"
        f"  quá hạn / overdue {_sample(body, 'ioc_source_overdue{'):.0f}"
        f"  cảnh báo / alerts {_sample(body, 'ioc_alert_active{'):.0f}"
    )


def _monitoring(settings: Settings, run_dir: Path, install: bool) -> LocalMonitoringStack | None:
    """Prometheus and Alertmanager for the demo, installing the Debian packages if allowed.

    Returns None (and says how to get them) when they are missing and cannot be installed.
    """
    if not prometheus_available():
        apt = shutil.which("apt-get")
        if install and apt and os.geteuid() == 0:
            typer.echo(
                "Cài Prometheus và Alertmanager (gói Debian) ... / "
                "Installing Prometheus and Alertmanager (Debian packages) ..."
            )
            env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
            subprocess.run([apt, "update", "-qq"], check=False, env=env)
            subprocess.run(
                [apt, "install", "-y", "-qq", "--no-install-recommends", *DEBIAN_PACKAGES],
                check=False,
                env=env,
            )
        if not prometheus_available():
            typer.echo(
                "Không có Prometheus/Alertmanager; demo chạy tiếp không có chúng. Cài bằng: "
                f"sudo apt-get install -y {' '.join(DEBIAN_PACKAGES)} / "
                "Prometheus/Alertmanager are missing; the demo goes on without them. "
                f"Install with: sudo apt-get install -y {' '.join(DEBIAN_PACKAGES)}",
                err=True,
            )
            return None
    worker = f"{settings.worker_host}:{settings.worker_port}"
    return LocalMonitoringStack(
        settings,
        run_dir,
        alertmanager_overrides=AlertmanagerOverrides(
            webhook_url=f"{settings.worker_url}/api/v1/oncall"
        ),
        worker_targets=[worker],
    )


def run_demo(
    settings: Settings, duration: float | None, speed: float = 720.0, install: bool = True
) -> None:
    """Run broker, worker and the simulator of every source until Ctrl-C (or ``duration``).

    Time runs ``speed`` times faster than the wall clock (720: a day every two minutes), so
    deadlines pass and a silent source turns overdue while you watch.
    """
    settings = demo_settings(settings, speed)
    notice = unsecured_notice(settings)
    catalogue = default_catalogue()
    kafka = LocalKafka(settings)
    run_dir = settings.worker_data_dir / "demo"
    worker = WorkerProcess(settings, run_dir / "worker.log")
    # The tax department stays silent: its daily e-invoice figure is due at 08:00, so at x720
    # the wall sees it turn overdue within a minute or so.
    simulator = SimulatorProcess(
        settings,
        run_dir / "simulator.log",
        *("--backfill", "2", "--faults", "demo", "--silent", "tax"),
    )
    started_kafka = False
    monitoring: LocalMonitoringStack | None = None
    with _stop_signals_as_interrupt():
        try:
            typer.echo(notice)
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
            if not wait_until(
                lambda: (
                    _sample(http_get(metrics_url) or b"", "ioc_events_accepted_total")
                    >= len(events)
                ),
                30,
                interval=0.5,
            ):
                typer.echo(
                    f"Cảnh báo: worker chưa xử lý hết {len(events)} số liệu gốc sau 30 s / "
                    f"Warning: the worker has not processed the {len(events)} seed figures "
                    f"after 30 s; see {worker.log_file}",
                    err=True,
                )
            typer.echo(
                "Khởi động mô phỏng 41 nguồn ... / Starting the simulator of the 41 sources ..."
            )
            simulator.start()
            monitoring = _monitoring(settings, run_dir / "monitoring", install)
            if monitoring is not None:
                typer.echo(
                    "Khởi động Prometheus và Alertmanager ... / "
                    "Starting Prometheus and Alertmanager ..."
                )
                monitoring.start()
            prometheus = (
                f"http://127.0.0.1:{settings.prometheus_port}"
                if monitoring
                else "(không có / none)"
            )
            alertmanager = (
                f"http://127.0.0.1:{settings.alertmanager_port}"
                if monitoring
                else "(không có / none)"
            )
            typer.echo(
                "\nIOC đang chạy / The IOC monitor is running:\n"
                f"  Kafka:    {result.bootstrap} (không bảo mật, chỉ trên loopback / "
                "unsecured, loopback only)\n"
                f"  Màn hình / wall:  {settings.worker_url}/wall\n"
                f"  Metrics:  {metrics_url}\n"
                f"  Prometheus:   {prometheus}\n"
                f"  Alertmanager: {alertmanager}\n"
                f"  Ví dụ / e.g.: curl -s {metrics_url} | grep online_application_rate\n"
                f"  Đồng hồ mô phỏng / simulated clock: x{settings.clock_speed:g} "
                f"từ / from {settings.clock_start}\n"
                f"  Nhật ký / logs: {run_dir}\n"
                "Nhấn Ctrl-C để dừng / Press Ctrl-C to stop.\n"
            )
            deadline = None if duration is None else time.monotonic() + duration
            while deadline is None or time.monotonic() < deadline:
                typer.echo(_summary(http_get(metrics_url) or b""))
                pause = 5.0 if deadline is None else min(5.0, deadline - time.monotonic())
                time.sleep(max(0.0, pause))
        except KeyboardInterrupt:
            typer.echo("\nĐang dừng ... / Stopping ...")
        finally:
            if monitoring is not None:
                monitoring.stop()
            simulator.stop()
            worker.stop()
            if started_kafka:
                kafka.stop()
            typer.echo("Đã dừng tất cả / Everything has stopped.")
