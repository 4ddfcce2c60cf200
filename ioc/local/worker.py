"""The worker as a child process (``python -m ioc worker``), for the demo and the tests."""

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
    except (urllib.error.URLError, OSError):
        return None


class WorkerProcess:
    """One ``ioc worker`` child process with its own log file."""

    def __init__(self, settings: Settings, log_file: Path) -> None:
        self.settings = settings
        self.log_file = log_file
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """Process id while running."""
        return self._proc.pid if self._proc else None

    def start(self, timeout: float = 60.0) -> None:
        """Launch the worker and wait until its web server answers ``/healthz``."""
        ensure_ports_free(
            "worker", self.settings.worker_host, {"IOC_WORKER_PORT": self.settings.worker_port}
        )
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        env = os.environ | settings_env(self.settings)
        with self.log_file.open("ab") as log:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "ioc", "worker"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        proc = self._proc
        ready = wait_until(
            lambda: http_get(f"{self.settings.worker_url}/healthz") is not None,
            timeout,
            interval=0.2,
            abort=lambda: proc.poll() is not None,
        )
        if not ready:
            self.stop()
            tail = "\n".join(self.log_file.read_text(errors="replace").splitlines()[-20:])
            raise ServiceStartError(
                f"Worker không sẵn sàng / The worker did not become ready "
                f"(log: {self.log_file}):\n{tail}"
            )

    def alive(self) -> bool:
        """True while the child process runs."""
        return self._proc is not None and self._proc.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a crash would (for fault tests)."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the worker cleanly (SIGTERM, SIGKILL after ``timeout``)."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            terminate(self._proc.pid, timeout)
        self._proc.wait()
        self._proc = None
