"""Process plumbing shared by the local services: ports, pid files, deadlines, shutdown."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from ioc.errors import PortInUseError


def port_is_free(host: str, port: int) -> bool:
    """True when nothing listens on ``host:port`` and we may bind it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now, chosen by the kernel."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def ensure_ports_free(service: str, host: str, ports: dict[str, int]) -> None:
    """Raise :class:`PortInUseError` naming the port, its setting and how to free or move it.

    ``ports`` maps the environment variable that sets a port to its value.
    """
    for variable, port in ports.items():
        if not port_is_free(host, port):
            raise PortInUseError(
                f"Cổng {host}:{port} của {service} đang bị chiếm. "
                f"Hãy dừng tiến trình đang dùng cổng (xem: ss -ltnp 'sport = :{port}') "
                f"hoặc chọn cổng khác bằng {variable}=<cổng>.\n"
                f"Port {host}:{port} needed by {service} is already in use. "
                f"Stop the process holding it (see: ss -ltnp 'sport = :{port}') "
                f"or pick another port with {variable}=<port>."
            )


def wait_until(
    condition: Callable[[], bool],
    timeout: float,
    *,
    interval: float = 0.1,
    abort: Callable[[], bool] | None = None,
) -> bool:
    """Poll ``condition`` until it holds (True) or ``timeout`` seconds pass (False).

    ``abort`` is checked as often; when it holds, waiting stops early with False (for example
    when the process we wait on has exited).
    """
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if abort is not None and abort():
            return False
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def pid_alive(pid: int, cmdline_marker: str | None = None) -> bool:
    """True when ``pid`` runs; with a marker, only if its command line contains it.

    The marker guards against a stale pid file whose pid was reused by another program.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if _is_zombie(pid):  # exited, but its parent (maybe init) has not reaped it yet
        return False
    if cmdline_marker is None:
        return True
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    return cmdline_marker.encode() in cmdline


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # Field 3, after the parenthesised command name, is the state letter.
    return stat.rpartition(")")[2].split()[0] == "Z"


def terminate(pid: int, timeout: float, cmdline_marker: str | None = None) -> bool:
    """SIGTERM the process group led by ``pid``; SIGKILL it after ``timeout``. True if it ended."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            try:
                os.killpg(pid, sig)
            except (ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        if wait_until(lambda: not pid_alive(pid, cmdline_marker), wait, interval=0.1):
            return True
    return not pid_alive(pid, cmdline_marker)


@dataclass(frozen=True)
class ServiceRecord:
    """What a running local service left behind: enough to find it and stop it again."""

    pid: int
    address: str
    log_file: str
    started_at: float

    def write(self, path: Path) -> None:
        """Save the record atomically next to the service's data."""
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self)))
        tmp.replace(path)

    @classmethod
    def read(cls, path: Path) -> ServiceRecord | None:
        """Load a record; None when absent or unreadable (an unreadable one is stale)."""
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return None
