"""``ioc`` commands as child processes (the worker, the simulator), for the demo and the tests."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from ioc.errors import ServiceStartError
from ioc.local.process import ensure_ports_free, terminate, wait_until
from ioc.settings import Settings, settings_env


def http_get(url: str, timeout: float = 2.0) -> bytes | None:
    """Body of a GET, or None when the server does not answer 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body: bytes = response.read()
            return body if response.status == 200 else None
    except urllib.error.HTTPError as exc:
        exc.close()  # it holds the connection (a 503 from /readyz while a worker recovers)
        return None
    except (urllib.error.URLError, OSError):
        return None


class IocProcess:
    """One ``python -m ioc <args>`` child process with its own log file and session."""

    args: tuple[str, ...] = ()
    name = "ioc"

    def __init__(self, settings: Settings, log_file: Path, *extra_args: str) -> None:
        self.settings = settings
        self.log_file = log_file
        self.extra_args = extra_args
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """Process id while running."""
        return self._proc.pid if self._proc else None

    def start(self, timeout: float = 60.0) -> None:
        """Launch the process and wait until :meth:`ready` holds."""
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        env = os.environ | settings_env(self.settings)
        with self.log_file.open("ab") as log:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "ioc", *self.args, *self.extra_args],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches the parent, which stops us in order
            )
        proc = self._proc
        ready = wait_until(self.ready, timeout, interval=0.2, abort=lambda: proc.poll() is not None)
        if not ready:
            self.stop()
            tail = "\n".join(self.log_file.read_text(errors="replace").splitlines()[-20:])
            raise ServiceStartError(
                f"{self.name} không sẵn sàng / {self.name} did not become ready "
                f"(log: {self.log_file}):\n{tail}"
            )

    def ready(self) -> bool:
        """Whether the process is ready for use (by default: it is running)."""
        return self.alive()

    def alive(self) -> bool:
        """True while the child process runs."""
        return self._proc is not None and self._proc.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a crash would (for fault tests)."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()

    def stop(self, timeout: float = 30.0) -> int | None:
        """Stop the process cleanly (SIGTERM, SIGKILL after ``timeout``); its exit status
        (None when none was running)."""
        if self._proc is None:
            return None
        if self._proc.poll() is None:
            terminate(self._proc.pid, timeout)
        status = self._proc.wait()
        self._proc = None
        return status


class WorkerProcess(IocProcess):
    """``ioc worker``: ready when ``/readyz`` says it has joined and recovered."""

    args = ("worker",)
    name = "worker"

    def start(self, timeout: float = 60.0) -> None:
        """Check the web port is free, launch the worker and wait for ``/readyz``."""
        ensure_ports_free(
            "worker", self.settings.worker_host, {"IOC_WORKER_PORT": self.settings.worker_port}
        )
        super().start(timeout)

    def ready(self) -> bool:
        """Whether the worker has joined its group and recovered its tables."""
        return http_get(f"{self.settings.worker_url}/readyz") is not None


class SimulatorProcess(IocProcess):
    """``ioc simulate ...``: traffic from the 41 sources."""

    args = ("simulate",)
    name = "simulator"
