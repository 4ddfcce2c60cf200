"""Prometheus and Alertmanager on loopback, run from the Debian packages with ``deploy/`` config.

:class:`LocalPrometheus` and :class:`LocalAlertmanager` each render a run directory from the
configuration shared with ``docker-compose.yml`` (``deploy/prometheus/``,
``deploy/alertmanager/``), start the binary in its own session, wait for ``/-/ready`` with a
deadline, and stop it again. :class:`LocalMonitoringStack` runs the two together. Only what
a local run must differ in is changed when rendering: the target files (loopback addresses),
and, on request, the timings tests shorten and the on-call webhook URL.

A run directory looks like::

    prometheus/  prometheus.yml  rules/*.yml  targets/{worker,alertmanager}.json
                 data/  prometheus.log  prometheus.json (pid record)
    alertmanager/ alertmanager.yml  data/  alertmanager.log  alertmanager.json
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar

import yaml

from ioc.errors import (
    ConfigurationError,
    LocalServiceError,
    PortInUseError,
    PrerequisiteMissing,
    ServiceStartError,
)
from ioc.local.process import ServiceRecord, ensure_ports_free, pid_alive, terminate, wait_until
from ioc.settings import PROJECT_ROOT, Settings

PROMETHEUS_DEPLOY_DIR = PROJECT_ROOT / "deploy" / "prometheus"
ALERTMANAGER_DEPLOY_DIR = PROJECT_ROOT / "deploy" / "alertmanager"

#: The address both services bind: they serve this host only.
LOOPBACK = "127.0.0.1"

#: Executable names, Debian's first (``prometheus-alertmanager``), then upstream tarballs'.
PROMETHEUS_BINARIES = ("prometheus",)
PROMTOOL_BINARIES = ("promtool",)
ALERTMANAGER_BINARIES = ("prometheus-alertmanager", "alertmanager")
AMTOOL_BINARIES = ("amtool",)

INSTALL_COMMAND = "sudo apt-get install -y prometheus prometheus-alertmanager"

#: Labels of the worker's scrape targets (targets/compose/worker.json has the same).
WORKER_TARGET_LABELS = {"service": "ioc-worker"}


def find_binary(candidates: Sequence[str]) -> str:
    """Path of the first of ``candidates`` on PATH; :class:`PrerequisiteMissing` otherwise."""
    for name in candidates:
        path = shutil.which(name)
        if path is not None:
            return path
    names = " / ".join(candidates)
    raise PrerequisiteMissing(
        f"Không tìm thấy {names} trên PATH. Cài đặt: {INSTALL_COMMAND}\n"
        f"{names} was not found on PATH. Install it with: {INSTALL_COMMAND}"
    )


def prometheus_available() -> bool:
    """True when prometheus, promtool, Alertmanager and amtool are all on PATH."""
    groups = (PROMETHEUS_BINARIES, PROMTOOL_BINARIES, ALERTMANAGER_BINARIES, AMTOOL_BINARIES)
    return all(any(shutil.which(name) for name in group) for group in groups)


def scrape_address(host: str, port: int) -> str:
    """``host:port`` to scrape a server bound to ``host`` (a wildcard bind means loopback)."""
    if host in ("", "0.0.0.0", "::", "[::]"):
        host = LOOPBACK
    return f"{host}:{port}"


# --- results --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sample:
    """One sample of a query result: the series' labels (``__name__`` included), its value."""

    labels: Mapping[str, str]
    value: float
    timestamp: float

    @property
    def name(self) -> str:
        """The metric name, or "" for an expression whose result has none."""
        return self.labels.get("__name__", "")


@dataclass(frozen=True)
class ServiceStatus:
    """Whether a local service runs, and where (what a ``status`` command prints)."""

    running: bool
    url: str
    pid: int | None
    run_dir: Path
    log_file: Path


@dataclass(frozen=True)
class ServiceStartResult:
    """Outcome of a ``start``."""

    url: str
    already_running: bool
    seconds: float


# --- overrides ------------------------------------------------------------------------------
@dataclass(frozen=True)
class PrometheusOverrides:
    """What a local run may change in ``deploy/prometheus/``; None keeps the shipped value.

    ``alert_for`` replaces the ``for:`` of named alerts (for example ``{"IOCWorkerDown":
    "5s"}``), so an end-to-end test need not wait a production minute.
    """

    scrape_interval: str | None = None
    evaluation_interval: str | None = None
    alert_for: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AlertmanagerOverrides:
    """What a local run may change in ``deploy/alertmanager/``; None keeps the shipped value.

    ``webhook_url`` replaces the URL of every webhook receiver; the timings replace the keys
    of that name wherever the route tree sets them, so no child route keeps a slow one.
    """

    webhook_url: str | None = None
    group_wait: str | None = None
    group_interval: str | None = None
    repeat_interval: str | None = None
    resolve_timeout: str | None = None


# --- rendering (pure functions: the unit tests check them with promtool and amtool) ---------
def _dump_yaml(data: Any, origin: Path) -> str:
    header = f"# Rendered by ioc.local.prometheus from {origin.relative_to(PROJECT_ROOT)}.\n"
    return header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=1000)


def _write_atomically(path: Path, text: str) -> None:
    # Prometheus watches target files: it must never read a half-written one.
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _override_for(rule_files: Sequence[Path], alert_for: Mapping[str, str]) -> dict[Path, Any]:
    """The rule files whose alerts ``alert_for`` names, loaded and changed."""
    changed: dict[Path, Any] = {}
    found: set[str] = set()
    for path in rule_files:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for group in data.get("groups", []):
            for rule in group.get("rules", []):
                if rule.get("alert") in alert_for:
                    rule["for"] = alert_for[rule["alert"]]
                    found.add(rule["alert"])
                    changed[path] = data
    unknown = sorted(set(alert_for) - found)
    if unknown:
        raise ConfigurationError(
            f"Không có cảnh báo {', '.join(unknown)} trong deploy/prometheus/rules/. / "
            f"No alert named {', '.join(unknown)} in deploy/prometheus/rules/."
        )
    return changed


def render_prometheus(
    directory: Path,
    *,
    worker_targets: Sequence[str],
    alertmanager_targets: Sequence[str],
    overrides: PrometheusOverrides | None = None,
) -> Path:
    """Write ``prometheus.yml``, ``rules/`` and ``targets/`` into ``directory``; return the config.

    The rule files are copied as shipped, except for the ``for:`` of alerts named in
    ``overrides.alert_for``.
    """
    overrides = overrides or PrometheusOverrides()
    source = PROMETHEUS_DEPLOY_DIR / "prometheus.yml"
    config = yaml.safe_load(source.read_text(encoding="utf-8"))
    timings = {
        "scrape_interval": overrides.scrape_interval,
        "evaluation_interval": overrides.evaluation_interval,
    }
    config.setdefault("global", {}).update({k: v for k, v in timings.items() if v is not None})

    directory.mkdir(parents=True, exist_ok=True)
    rules_dir = directory / "rules"
    shutil.rmtree(rules_dir, ignore_errors=True)
    rules_dir.mkdir()
    shipped_rules = sorted((PROMETHEUS_DEPLOY_DIR / "rules").glob("*.yml"))
    changed = _override_for(shipped_rules, overrides.alert_for)
    for path in shipped_rules:
        if path in changed:
            (rules_dir / path.name).write_text(_dump_yaml(changed[path], path), encoding="utf-8")
        else:
            shutil.copyfile(path, rules_dir / path.name)

    targets_dir = directory / "targets"
    targets_dir.mkdir(exist_ok=True)
    worker = [{"targets": list(worker_targets), "labels": WORKER_TARGET_LABELS}]
    alertmanager = [{"targets": list(alertmanager_targets)}]
    _write_atomically(targets_dir / "worker.json", json.dumps(worker, indent=2) + "\n")
    _write_atomically(targets_dir / "alertmanager.json", json.dumps(alertmanager, indent=2) + "\n")

    config_file = directory / "prometheus.yml"
    config_file.write_text(_dump_yaml(config, source), encoding="utf-8")
    return config_file


def _override_route_timings(route: dict[str, Any], timings: Mapping[str, str]) -> None:
    for key, value in timings.items():
        if key in route:
            route[key] = value
    for child in route.get("routes", []):
        _override_route_timings(child, timings)


def render_alertmanager(directory: Path, overrides: AlertmanagerOverrides | None = None) -> Path:
    """Write ``alertmanager.yml`` into ``directory``, changing only what ``overrides`` sets."""
    overrides = overrides or AlertmanagerOverrides()
    source = ALERTMANAGER_DEPLOY_DIR / "alertmanager.yml"
    config = yaml.safe_load(source.read_text(encoding="utf-8"))
    if overrides.webhook_url is not None:
        for receiver in config.get("receivers", []):
            for webhook in receiver.get("webhook_configs", []):
                webhook["url"] = overrides.webhook_url
    timings = {
        "group_wait": overrides.group_wait,
        "group_interval": overrides.group_interval,
        "repeat_interval": overrides.repeat_interval,
    }
    _override_route_timings(config["route"], {k: v for k, v in timings.items() if v is not None})
    if overrides.resolve_timeout is not None:
        config.setdefault("global", {})["resolve_timeout"] = overrides.resolve_timeout

    directory.mkdir(parents=True, exist_ok=True)
    config_file = directory / "alertmanager.yml"
    config_file.write_text(_dump_yaml(config, source), encoding="utf-8")
    return config_file


# --- HTTP -----------------------------------------------------------------------------------
def _get_json(url: str, service: str, timeout: float) -> Any:
    """GET ``url`` and decode its JSON; an API error's own message is kept in the exception."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            body = exc.read().decode(errors="replace")
        try:
            detail = json.loads(body).get("error", body)
        except (ValueError, AttributeError):
            detail = body
        raise LocalServiceError(
            f"{service} trả lỗi HTTP {exc.code} cho {url}: {detail}\n"
            f"{service} answered HTTP {exc.code} to {url}: {detail}"
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        raise LocalServiceError(
            f"Không kết nối được {service} tại {url} ({exc}). Dịch vụ đã chạy chưa?\n"
            f"Could not reach {service} at {url} ({exc}). Is it running?"
        ) from None


def _answers_ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=1.0) as response:
            return bool(response.status == 200)
    except urllib.error.HTTPError as exc:  # 503 while starting; close it, it holds a socket
        exc.close()
        return False
    except (urllib.error.URLError, OSError):
        return False


# --- the services ---------------------------------------------------------------------------
class _LocalService(ABC):
    """What Prometheus and Alertmanager share: run directory, process, readiness, stop."""

    display_name: ClassVar[str]
    slug: ClassVar[str]
    port_variable: ClassVar[str]
    binaries: ClassVar[Sequence[str]]

    def __init__(self, settings: Settings, run_dir: Path, port: int) -> None:
        self.settings = settings
        self.run_dir = run_dir
        self.port = port
        self.config_file = run_dir / f"{self.slug}.yml"
        self.data_dir = run_dir / "data"
        self.log_file = run_dir / f"{self.slug}.log"
        self.record_file = run_dir / f"{self.slug}.json"
        # Kept while this object lives, so the process we started is reaped when it stops.
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """``host:port`` the service listens on."""
        return f"{LOOPBACK}:{self.port}"

    @property
    def url(self) -> str:
        """Base URL of the service's web server and API."""
        return f"http://{self.address}"

    @abstractmethod
    def render(self) -> Path:
        """Write the run directory's configuration; return the config file."""

    @abstractmethod
    def _arguments(self) -> list[str]: ...

    # --- status -----------------------------------------------------------------------------
    def _running_record(self) -> ServiceRecord | None:
        record = ServiceRecord.read(self.record_file)
        if record is None:
            return None
        # The config path is on the command line and unique to this run directory.
        if pid_alive(record.pid, str(self.config_file)):
            return record
        self.record_file.unlink(missing_ok=True)  # stale: it died or the host rebooted
        return None

    def is_running(self) -> bool:
        """True while the process started from this run directory is alive."""
        return self._running_record() is not None

    def is_ready(self) -> bool:
        """True when the service answers ``/-/ready`` with 200."""
        return _answers_ready(self.url)

    def status(self) -> ServiceStatus:
        """Whether the service runs, and where."""
        record = self._running_record()
        return ServiceStatus(
            running=record is not None,
            url=f"http://{record.address}" if record else self.url,
            pid=record.pid if record else None,
            run_dir=self.run_dir,
            log_file=self.log_file,
        )

    # --- start / stop -----------------------------------------------------------------------
    def start(self, timeout: float = 30.0) -> ServiceStartResult:
        """Render the run directory, start the service and return once ``/-/ready`` answers.

        Does nothing when this run directory's service runs already. Raises
        :class:`PrerequisiteMissing`, :class:`PortInUseError` or :class:`ServiceStartError`,
        each saying what to do.
        """
        began = time.monotonic()
        record = self._running_record()
        if record is not None:
            return ServiceStartResult(f"http://{record.address}", True, 0.0)

        binary = find_binary(self.binaries)
        ensure_ports_free(self.display_name, LOOPBACK, {self.port_variable: self.port})
        self.render()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_file.write_text("")
        with self.log_file.open("ab") as log:
            proc = subprocess.Popen(
                [binary, *self._arguments()],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C on the starting command must not reach it
                cwd=self.run_dir,
            )
        ready = wait_until(
            self.is_ready, timeout, interval=0.1, abort=lambda: proc.poll() is not None
        )
        if not ready:
            exited = proc.poll() is not None
            if not exited:
                terminate(proc.pid, 10.0)
            proc.wait()
            raise self._diagnose_failure(exited, timeout)
        self._process = proc
        ServiceRecord(proc.pid, self.address, str(self.log_file), time.time()).write(
            self.record_file
        )
        return ServiceStartResult(self.url, False, time.monotonic() - began)

    def stop(self, timeout: float = 15.0) -> bool:
        """Stop the service (SIGTERM, SIGKILL after ``timeout``). False when none was running."""
        record = self._running_record()
        if record is None:
            return False
        terminate(record.pid, timeout, str(self.config_file))
        if self._process is not None and self._process.pid == record.pid:
            self._process.wait()
            self._process = None
        self.record_file.unlink(missing_ok=True)
        return True

    def log_tail(self, lines: int = 25) -> str:
        """The last ``lines`` lines of the service's log."""
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def _diagnose_failure(self, exited: bool, timeout: float) -> LocalServiceError:
        tail = self.log_tail()
        if "address already in use" in tail.lower():
            return PortInUseError(
                f"{self.display_name} không mở được cổng {self.address} (đã bị chiếm). "
                f"Chọn cổng khác bằng {self.port_variable}=<cổng>.\n"
                f"{self.display_name} could not bind {self.address} (already in use). "
                f"Pick another port with {self.port_variable}=<port>.\n{tail}"
            )
        state = "đã thoát / exited" if exited else "không sẵn sàng kịp / was not ready in time"
        return ServiceStartError(
            f"{self.display_name} {state} (giới hạn / limit {timeout:.0f} s). "
            f"Xem nhật ký / see the log: {self.log_file}\n{tail}"
        )


class LocalAlertmanager(_LocalService):
    """Alertmanager on ``127.0.0.1:IOC_ALERTMANAGER_PORT``, clustering off, config from deploy/."""

    display_name = "Alertmanager"
    slug = "alertmanager"
    port_variable = "IOC_ALERTMANAGER_PORT"
    binaries = ALERTMANAGER_BINARIES

    def __init__(
        self,
        settings: Settings,
        run_dir: Path,
        overrides: AlertmanagerOverrides | None = None,
    ) -> None:
        super().__init__(settings, run_dir, settings.alertmanager_port)
        self.overrides = overrides or AlertmanagerOverrides()

    def render(self) -> Path:
        """Write ``alertmanager.yml`` (the shipped one with :attr:`overrides` applied)."""
        return render_alertmanager(self.run_dir, self.overrides)

    def _arguments(self) -> list[str]:
        return [
            f"--config.file={self.config_file}",
            f"--storage.path={self.data_dir}",
            f"--web.listen-address={self.address}",
            f"--web.external-url={self.url}",
            # Alone, never a cluster: the gossip port would default to 9094, Kafka's controller.
            "--cluster.listen-address=",
        ]

    def alerts(self) -> list[dict[str, Any]]:
        """The alerts Alertmanager holds now (``/api/v2/alerts``), inhibited ones included."""
        result: list[dict[str, Any]] = _get_json(
            f"{self.url}/api/v2/alerts", self.display_name, 5.0
        )
        return result


class LocalPrometheus(_LocalService):
    """Prometheus on ``127.0.0.1:IOC_PROMETHEUS_PORT``, scraping the worker(s) of ``settings``."""

    display_name = "Prometheus"
    slug = "prometheus"
    port_variable = "IOC_PROMETHEUS_PORT"
    binaries = PROMETHEUS_BINARIES

    def __init__(
        self,
        settings: Settings,
        run_dir: Path,
        overrides: PrometheusOverrides | None = None,
        *,
        worker_targets: Sequence[str] | None = None,
    ) -> None:
        super().__init__(settings, run_dir, settings.prometheus_port)
        self.overrides = overrides or PrometheusOverrides()
        self.worker_targets = list(
            worker_targets or [scrape_address(settings.worker_host, settings.worker_port)]
        )

    def render(self) -> Path:
        """Write ``prometheus.yml``, ``rules/`` and ``targets/`` for this run."""
        return render_prometheus(
            self.run_dir,
            worker_targets=self.worker_targets,
            alertmanager_targets=[f"{LOOPBACK}:{self.settings.alertmanager_port}"],
            overrides=self.overrides,
        )

    def _arguments(self) -> list[str]:
        return [
            f"--config.file={self.config_file}",
            f"--storage.tsdb.path={self.data_dir}",
            f"--web.listen-address={self.address}",
            f"--web.external-url={self.url}",
            "--web.enable-lifecycle",  # POST /-/reload after re-rendering
        ]

    def query(self, promql: str, timeout: float = 5.0) -> list[Sample]:
        """Evaluate ``promql`` now (``/api/v1/query``); a range vector yields all its samples.

        Raises :class:`LocalServiceError` with Prometheus's own message for a bad expression,
        or when Prometheus cannot be reached.
        """
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        data = _get_json(url, self.display_name, timeout)["data"]
        kind, result = data["resultType"], data["result"]
        if kind == "scalar":
            return [Sample({}, float(result[1]), float(result[0]))]
        if kind == "string":
            raise LocalServiceError(
                f"Biểu thức {promql!r} trả về chuỗi, không phải số liệu. / "
                f"{promql!r} evaluates to a string, not samples."
            )
        samples: list[Sample] = []
        for series in result:
            points = series["values"] if kind == "matrix" else [series["value"]]
            samples += [Sample(series["metric"], float(v), float(t)) for t, v in points]
        return samples

    def alerts(self) -> list[dict[str, Any]]:
        """Alerts Prometheus holds now, pending and firing (``/api/v1/alerts``)."""
        data = _get_json(f"{self.url}/api/v1/alerts", self.display_name, 5.0)
        alerts: list[dict[str, Any]] = data["data"]["alerts"]
        return alerts

    def reload(self) -> None:
        """Re-render the run directory and make the running Prometheus read it again."""
        self.render()
        request = urllib.request.Request(f"{self.url}/-/reload", method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10.0):
                pass
        except (urllib.error.URLError, OSError) as exc:
            raise LocalServiceError(
                f"Prometheus không nạp lại được cấu hình ({exc}); xem {self.log_file}\n"
                f"Prometheus could not reload its configuration ({exc}); see {self.log_file}"
            ) from None


class LocalMonitoringStack:
    """Alertmanager and Prometheus together, in ``run_dir/alertmanager`` and ``run_dir/prometheus``.

    Usable as a context manager: started on entry, stopped on exit.
    """

    def __init__(
        self,
        settings: Settings,
        run_dir: Path,
        *,
        prometheus_overrides: PrometheusOverrides | None = None,
        alertmanager_overrides: AlertmanagerOverrides | None = None,
        worker_targets: Sequence[str] | None = None,
    ) -> None:
        self.run_dir = run_dir
        self.alertmanager = LocalAlertmanager(
            settings, run_dir / "alertmanager", alertmanager_overrides
        )
        self.prometheus = LocalPrometheus(
            settings, run_dir / "prometheus", prometheus_overrides, worker_targets=worker_targets
        )

    def start(self, timeout: float = 30.0) -> None:
        """Start Alertmanager, then Prometheus (so its first alerts have somewhere to go).

        If Prometheus cannot start, the Alertmanager started here is stopped again.
        """
        started = not self.alertmanager.start(timeout).already_running
        try:
            self.prometheus.start(timeout)
        except LocalServiceError:
            if started:
                self.alertmanager.stop()
            raise

    def stop(self, timeout: float = 15.0) -> None:
        """Stop Prometheus, then Alertmanager. Either may already be stopped."""
        self.prometheus.stop(timeout)
        self.alertmanager.stop(timeout)

    def is_running(self) -> bool:
        """True when both services run."""
        return self.prometheus.is_running() and self.alertmanager.is_running()

    def query(self, promql: str) -> list[Sample]:
        """Shorthand for ``self.prometheus.query``."""
        return self.prometheus.query(promql)

    def __enter__(self) -> LocalMonitoringStack:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
