"""The local Prometheus and Alertmanager, for real: a metric an agent exports becomes a page
at the on-call webhook and is resolved again; and the runner's errors say what to do.

The worker is a stand-in serving a /metrics body the test sets, so only the monitoring path
is under test here (tests/integration/test_alerting.py drives it with the real worker).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from ioc.errors import PortInUseError, ServiceStartError
from ioc.local.process import free_port
from ioc.local.prometheus import (
    LocalAlertmanager,
    LocalMonitoringStack,
    LocalPrometheus,
    PrometheusOverrides,
)
from ioc.settings import Settings
from tests.promstack import (  # noqa: F401  (fixtures)
    MonitoringFactory,
    WebhookReceiver,
    monitoring_factory,
    webhook_receiver,
)
from tests.support import wait_for

pytestmark = pytest.mark.integration

ALERT_LABELS = {
    "source": "ict",
    "indicator": "online_application_rate",
    "area": "son-la",
    "severity": "warning",
}
ALERT_SERIES = (
    'ioc_alert_active{alertname="target_off_track",severity="warning",source="ict",'
    'indicator="online_application_rate",area="son-la"}'
)
HEADER = (
    "# HELP ioc_alert_active 1 while a stream agent holds the alert.\n"
    "# TYPE ioc_alert_active gauge\n"
)


class FakeWorker:
    """A ``/metrics`` endpoint on a free loopback port whose body the test sets."""

    def __init__(self) -> None:
        self._body = b""
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with fake._lock:
                    body = fake._body
                self.send_response(200 if self.path == "/metrics" else 404)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def expose(self, text: str) -> None:
        with self._lock:
            self._body = text.encode()

    def __enter__(self) -> FakeWorker:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop answering, as a crashed worker would; safe to call twice."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture
def fake_worker() -> Iterator[FakeWorker]:
    with FakeWorker() as worker:
        yield worker


def test_agent_alert_pages_on_call_and_resolves(
    fake_worker: FakeWorker,
    monitoring_factory: MonitoringFactory,  # noqa: F811
    webhook_receiver: WebhookReceiver,  # noqa: F811
) -> None:
    fake_worker.expose(HEADER)
    stack = monitoring_factory(fake_worker.url)
    [up] = stack.query('up{job="ioc-worker"}')
    assert up.value == 1
    assert up.labels["service"] == "ioc-worker"

    # Raised: Prometheus scrapes it, evaluates IOCTargetOffTrack, Alertmanager pages.
    raised = time.monotonic()
    fake_worker.expose(f"{HEADER}{ALERT_SERIES} 1\n")
    [sample] = wait_for(
        lambda: stack.query('ioc_alert_active{source="ict"} == 1'), 15, "the scraped alert"
    )
    assert sample.labels["indicator"] == "online_application_rate"
    firing = webhook_receiver.wait_for_firing(
        30, alertname="IOCTargetOffTrack", labels=ALERT_LABELS
    )
    assert firing.labels["category"] == "indicator"
    assert firing.annotations["summary"].startswith(
        "Chỉ tiêu online_application_rate (son-la) chưa bám sát lộ trình mục tiêu / Indicator"
    )
    assert firing.annotations["runbook_url"] == "docs/runbooks.md#ioctargetofftrack"
    print(f"metric raised -> firing notification: {firing.received_at - raised:.1f} s")

    # Cleared (0): resolved.
    cleared = time.monotonic()
    fake_worker.expose(f"{HEADER}{ALERT_SERIES} 0\n")
    resolved = webhook_receiver.wait_for_resolved(
        30, after=cleared, labels=ALERT_LABELS, alertname="IOCTargetOffTrack"
    )
    print(f"metric cleared -> resolved notification: {resolved.received_at - cleared:.1f} s")

    # Raised again, then the series disappears (the agent dropped it): resolved again.
    raised = time.monotonic()
    fake_worker.expose(f"{HEADER}{ALERT_SERIES} 1\n")
    webhook_receiver.wait_for_firing(30, after=raised, alertname="IOCTargetOffTrack")
    removed = time.monotonic()
    fake_worker.expose(HEADER)
    resolved = webhook_receiver.wait_for_resolved(30, after=removed, alertname="IOCTargetOffTrack")
    print(f"series removed -> resolved notification: {resolved.received_at - removed:.1f} s")

    names = {
        alert.labels["alertname"] for n in webhook_receiver.notifications for alert in n.alerts
    }
    assert names == {"IOCTargetOffTrack"}, "nothing else should page"
    assert webhook_receiver.rejected == []


def test_worker_down_pages_with_a_shortened_for(
    fake_worker: FakeWorker,
    monitoring_factory: MonitoringFactory,  # noqa: F811
    webhook_receiver: WebhookReceiver,  # noqa: F811
) -> None:
    fake_worker.expose(HEADER)
    stack = monitoring_factory(fake_worker.url, alert_for={"IOCWorkerDown": "2s"})
    target = fake_worker.url.removeprefix("http://")

    fake_worker.stop()
    down = time.monotonic()
    firing = webhook_receiver.wait_for_firing(30, alertname="IOCWorkerDown", instance=target)
    assert firing.labels["severity"] == "critical"
    print(f"worker stopped -> IOCWorkerDown notification: {firing.received_at - down:.1f} s")
    assert stack.is_running()


@pytest.mark.parametrize(
    ("service", "variable"),
    [(LocalPrometheus, "IOC_PROMETHEUS_PORT"), (LocalAlertmanager, "IOC_ALERTMANAGER_PORT")],
)
def test_taken_port_names_the_port_and_its_variable(
    tmp_path: Path, service: type[LocalPrometheus | LocalAlertmanager], variable: str
) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        settings = Settings(prometheus_port=port, alertmanager_port=port)
        with pytest.raises(PortInUseError) as caught:
            service(settings, tmp_path).start()

    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message
    assert variable in message


def test_stack_leaves_nothing_running_when_prometheus_cannot_start(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        settings = Settings(
            prometheus_port=squatter.getsockname()[1], alertmanager_port=free_port()
        )
        stack = LocalMonitoringStack(settings, tmp_path)
        with pytest.raises(PortInUseError, match="IOC_PROMETHEUS_PORT"):
            stack.start()

    assert not stack.alertmanager.is_running()
    assert not stack.prometheus.is_running()


def test_start_is_idempotent_and_stop_reports_what_it_did(tmp_path: Path) -> None:
    settings = Settings(prometheus_port=free_port(), alertmanager_port=free_port())
    alertmanager = LocalAlertmanager(settings, tmp_path)
    first = alertmanager.start()
    try:
        assert not first.already_running
        assert alertmanager.is_running()
        assert alertmanager.is_ready()
        again = LocalAlertmanager(settings, tmp_path).start()  # e.g. a second `ioc` command
        assert again.already_running
        assert again.url == first.url
        status = alertmanager.status()
        assert status.running
        assert status.pid is not None
        assert alertmanager.alerts() == []
    finally:
        assert alertmanager.stop()
    assert not alertmanager.is_running()
    assert not alertmanager.stop()


def test_a_broken_rule_file_fails_with_the_log(tmp_path: Path) -> None:
    settings = Settings(prometheus_port=free_port(), alertmanager_port=free_port())
    prometheus = LocalPrometheus(
        settings, tmp_path, PrometheusOverrides(alert_for={"IOCWorkerDown": "a while"})
    )
    with pytest.raises(ServiceStartError) as caught:
        prometheus.start()

    assert str(prometheus.log_file) in str(caught.value)
    assert "a while" in str(caught.value)
    assert not prometheus.is_running()


def test_reload_scrapes_workers_added_later(tmp_path: Path, fake_worker: FakeWorker) -> None:
    settings = Settings(prometheus_port=free_port(), alertmanager_port=free_port())
    first = fake_worker.url.removeprefix("http://")
    prometheus = LocalPrometheus(
        settings, tmp_path, PrometheusOverrides(scrape_interval="1s"), worker_targets=[first]
    )
    prometheus.start()
    try:
        with FakeWorker() as second_worker:
            second = second_worker.url.removeprefix("http://")
            prometheus.worker_targets.append(second)
            prometheus.reload()
            wait_for(
                lambda: (
                    {s.labels["instance"] for s in prometheus.query("up == 1")} == {first, second}
                ),
                30,
                "both workers scraped",
            )
    finally:
        prometheus.stop()
