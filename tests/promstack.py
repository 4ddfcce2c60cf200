"""Prometheus and Alertmanager for tests: a webhook receiver that records notifications, and
fixtures that start the real stack (ioc.local.prometheus) against a worker URL.

Use from a test module (pyflakes reads fixture parameters as redefinitions, hence the noqa)::

    from tests.promstack import MonitoringFactory, WebhookReceiver
    from tests.promstack import monitoring_factory, webhook_receiver  # noqa: F401

    def test_page(
        monitoring_factory: MonitoringFactory,  # noqa: F811
        webhook_receiver: WebhookReceiver,  # noqa: F811
    ) -> None:
        stack = monitoring_factory(worker.settings.worker_url)
        ...
        alert = webhook_receiver.wait_for_firing(30, alertname="IOCTargetOffTrack", source="ict")

Timings are shortened (scrape and evaluation every second, Alertmanager groups after one
second), so a metric change reaches the receiver in about two seconds. Every wait has a
deadline.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import pytest

from ioc.local.process import free_port
from ioc.local.prometheus import (
    AlertmanagerOverrides,
    LocalMonitoringStack,
    PrometheusOverrides,
)
from ioc.settings import Settings
from tests.support import wait_for

AlertStatus = Literal["firing", "resolved"]

#: Prometheus timings for tests: a change is scraped and evaluated within about a second.
FAST_PROMETHEUS = PrometheusOverrides(scrape_interval="1s", evaluation_interval="1s")


def fast_alertmanager(webhook_url: str) -> AlertmanagerOverrides:
    """Alertmanager timings for tests, notifying ``webhook_url``.

    repeat_interval stays long so a test sees one notification per change, not reminders.
    """
    return AlertmanagerOverrides(
        webhook_url=webhook_url,
        group_wait="1s",
        group_interval="1s",
        repeat_interval="1h",
        resolve_timeout="10s",
    )


@dataclass(frozen=True)
class ReceivedAlert:
    """One alert of one notification, as Alertmanager's webhook sent it."""

    status: AlertStatus
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: str
    ends_at: str
    #: ``time.monotonic()`` when the notification arrived (to measure latencies).
    received_at: float
    #: Unix time when the notification arrived.
    received_unix: float

    def matches(self, labels: Mapping[str, str]) -> bool:
        """True when every one of ``labels`` is on this alert with that value."""
        return all(self.labels.get(name) == value for name, value in labels.items())


@dataclass(frozen=True)
class Notification:
    """One POST from Alertmanager: a group of alerts with its own status."""

    payload: Mapping[str, Any]
    received_at: float
    received_unix: float

    @property
    def status(self) -> str:
        """``firing`` when any alert of the group fires, else ``resolved``."""
        return str(self.payload.get("status", ""))

    @property
    def alerts(self) -> list[ReceivedAlert]:
        """The group's alerts, each with its own status."""
        return [
            ReceivedAlert(
                status=alert["status"],
                labels=alert.get("labels", {}),
                annotations=alert.get("annotations", {}),
                starts_at=alert.get("startsAt", ""),
                ends_at=alert.get("endsAt", ""),
                received_at=self.received_at,
                received_unix=self.received_unix,
            )
            for alert in self.payload.get("alerts", [])
        ]


class WebhookReceiver:
    """An HTTP server on a free loopback port that records Alertmanager's notifications.

    Waiting uses a condition variable: a waiter wakes as soon as a notification arrives.
    """

    path = "/alerts"

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._notifications: list[Notification] = []
        self._rejected: list[str] = []
        self._changed = threading.Condition()
        self._server = ThreadingHTTPServer((host, 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                path = urllib.parse.urlsplit(self.path).path
                try:
                    payload = json.loads(body) if path == receiver.path else None
                except ValueError:
                    payload = None
                if not isinstance(payload, dict):
                    receiver._record_rejected(f"{self.path}: {body[:200]!r}")
                    self.send_response(400)
                else:
                    receiver._record(payload)
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return  # keep the test output for the test

        return Handler

    def _record(self, payload: dict[str, Any]) -> None:
        with self._changed:
            self._notifications.append(Notification(payload, time.monotonic(), time.time()))
            self._changed.notify_all()

    def _record_rejected(self, what: str) -> None:
        with self._changed:
            self._rejected.append(what)

    # --- lifecycle ----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The URL to give Alertmanager's webhook_configs."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{self.path}"

    def start(self) -> WebhookReceiver:
        """Serve in a background thread; returns self."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever, name="webhook-receiver", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # --- what arrived -------------------------------------------------------------------------
    @property
    def notifications(self) -> list[Notification]:
        """Every notification so far, oldest first."""
        with self._changed:
            return list(self._notifications)

    @property
    def rejected(self) -> list[str]:
        """Requests that were not a JSON notification on :attr:`path` (should stay empty)."""
        with self._changed:
            return list(self._rejected)

    def alerts(
        self,
        status: AlertStatus | None = None,
        *,
        after: float = 0.0,
        labels: Mapping[str, str] | None = None,
        **more_labels: str,
    ) -> list[ReceivedAlert]:
        """Alerts received so far with ``status`` (any when None) and all these labels,
        arrived after ``after`` (a ``time.monotonic()`` value), oldest first."""
        with self._changed:
            return self._matching(status, after, {**(labels or {}), **more_labels})

    def _matching(
        self, status: AlertStatus | None, after: float, labels: Mapping[str, str]
    ) -> list[ReceivedAlert]:
        return [
            alert
            for notification in self._notifications
            if notification.received_at > after
            for alert in notification.alerts
            if (status is None or alert.status == status) and alert.matches(labels)
        ]

    def wait_for_alert(
        self,
        status: AlertStatus,
        timeout: float = 30.0,
        *,
        after: float = 0.0,
        labels: Mapping[str, str] | None = None,
        **more_labels: str,
    ) -> ReceivedAlert:
        """The first alert with ``status`` and all of ``labels`` and ``more_labels`` that
        arrived after ``after`` (a ``time.monotonic()`` value); waits for it.

        Fails the test after ``timeout`` seconds, listing what did arrive.
        """
        labels = {**(labels or {}), **more_labels}
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = self._matching(status, after, labels)
                if found:
                    return found[0]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._changed.wait(remaining)
            seen = [
                (alert.status, dict(alert.labels))
                for notification in self._notifications
                for alert in notification.alerts
            ]
        raise AssertionError(
            f"timed out after {timeout:.0f} s waiting for a {status} alert with {labels} "
            f"(received: {seen or 'nothing'}; rejected requests: {self.rejected or 'none'})"
        )

    def wait_for_firing(
        self,
        timeout: float = 30.0,
        *,
        after: float = 0.0,
        labels: Mapping[str, str] | None = None,
        **more_labels: str,
    ) -> ReceivedAlert:
        """Wait for a firing alert with these labels (see :meth:`wait_for_alert`)."""
        return self.wait_for_alert("firing", timeout, after=after, labels=labels, **more_labels)

    def wait_for_resolved(
        self,
        timeout: float = 30.0,
        *,
        after: float = 0.0,
        labels: Mapping[str, str] | None = None,
        **more_labels: str,
    ) -> ReceivedAlert:
        """Wait for a resolved alert with these labels (see :meth:`wait_for_alert`)."""
        return self.wait_for_alert("resolved", timeout, after=after, labels=labels, **more_labels)


# --- the stack --------------------------------------------------------------------------------
def _worker_target(worker_url: str) -> str:
    parts = urllib.parse.urlsplit(worker_url)
    if not parts.hostname or not parts.port:
        raise ValueError(f"expected a worker URL such as http://127.0.0.1:6066, got {worker_url!r}")
    return f"{parts.hostname}:{parts.port}"


def start_monitoring(
    worker_urls: str | Sequence[str],
    run_dir: Path,
    webhook_url: str,
    *,
    alert_for: Mapping[str, str] | None = None,
    wait_for_scrape: float = 30.0,
) -> LocalMonitoringStack:
    """Start Alertmanager and Prometheus on free ports, scraping ``worker_urls``, with test
    timings and notifications to ``webhook_url``. The caller stops the stack.

    Returns once Prometheus has scraped every worker at least once (``up`` exists for each,
    whether 1 or 0): its target discovery alone takes about five seconds.

    ``alert_for`` shortens named alerts' ``for:`` (for example ``{"IOCWorkerDown": "2s"}``).
    Shorter than that discovery, IOCWorkerDown also fires once at start-up from
    ``absent(up)``, without an ``instance`` label: wait for the one with ``instance=...``.
    """
    urls = [worker_urls] if isinstance(worker_urls, str) else list(worker_urls)
    targets = [_worker_target(url) for url in urls]
    settings = Settings(prometheus_port=free_port(), alertmanager_port=free_port())
    stack = LocalMonitoringStack(
        settings,
        run_dir,
        prometheus_overrides=dataclasses.replace(FAST_PROMETHEUS, alert_for=dict(alert_for or {})),
        alertmanager_overrides=fast_alertmanager(webhook_url),
        worker_targets=targets,
    )
    stack.start()
    try:
        wait_until_scraped(stack, targets, wait_for_scrape)
    except BaseException:
        stack.stop()
        raise
    return stack


def wait_until_scraped(stack: LocalMonitoringStack, targets: Sequence[str], timeout: float) -> None:
    """Wait until Prometheus has an ``up`` sample for each of ``targets``."""

    def scraped() -> bool:
        seen = {s.labels.get("instance") for s in stack.query('up{job="ioc-worker"}')}
        return set(targets) <= seen

    wait_for(
        scraped,
        timeout,
        f"Prometheus to scrape {list(targets)} (log: {stack.prometheus.log_file})",
    )


def print_logs(stack: LocalMonitoringStack, lines: int = 30) -> None:
    """Print the tail of both services' logs (pytest shows it when a test fails)."""
    for service in (stack.prometheus, stack.alertmanager):
        print(f"--- {service.log_file} (tail) ---")
        print(service.log_tail(lines))


# --- fixtures ---------------------------------------------------------------------------------
MonitoringFactory = Callable[..., LocalMonitoringStack]


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    """A started :class:`WebhookReceiver`, stopped after the test."""
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture
def monitoring_factory(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> Iterator[MonitoringFactory]:
    """Start monitoring stacks that notify ``webhook_receiver``; all are stopped afterwards.

    Call it with the worker URL(s) and, optionally, ``alert_for={...}``; see
    :func:`start_monitoring`.
    """
    stacks: list[LocalMonitoringStack] = []

    def start(
        worker_urls: str | Sequence[str], *, alert_for: Mapping[str, str] | None = None
    ) -> LocalMonitoringStack:
        run_dir = tmp_path / f"monitoring-{len(stacks)}"
        stack = start_monitoring(worker_urls, run_dir, webhook_receiver.url, alert_for=alert_for)
        stacks.append(stack)
        return stack

    yield start
    for stack in stacks:
        stack.stop()
        print_logs(stack)
