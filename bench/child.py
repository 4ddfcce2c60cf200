"""In-process runners (raw, peer) run as child processes, so each has its own peak RSS.

The parent starts ``python -m bench.<runner>`` with :class:`RunnerArgs` on the command line.
The child consumes the ``expect`` pre-loaded messages (the throughput run), then prints
``READY`` on a line and goes on with the ``live`` messages the parent now offers at a fixed
rate (the latency run). It writes its :class:`RunnerResult` as JSON to ``--result`` and exits;
it gives up when no message comes for ``timeout`` seconds.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from bench.stats import CpuSample, cpu_sample, cpu_use, peak_rss_bytes
from ioc.errors import ServiceStartError

READY = "READY"


@dataclass(frozen=True)
class RunnerArgs:
    """What a child runner is told."""

    bootstrap: str
    prefix: str
    group: str
    expect: int
    result: Path
    live: int = 0
    timeout: float = 120.0
    state_dir: Path | None = None

    def argv(self) -> list[str]:
        """The command-line arguments that :func:`parse_args` reads back."""
        argv = [
            "--bootstrap", self.bootstrap, "--prefix", self.prefix, "--group", self.group,
            "--expect", str(self.expect), "--result", str(self.result),
            "--live", str(self.live), "--timeout", str(self.timeout),
        ]  # fmt: skip
        if self.state_dir is not None:
            argv += ["--state-dir", str(self.state_dir)]
        return argv


def parse_args(argv: list[str] | None = None) -> RunnerArgs:
    """The :class:`RunnerArgs` of this child process."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--prefix", default="")
    parser.add_argument("--group", required=True)
    parser.add_argument("--expect", type=int, required=True)
    parser.add_argument("--result", type=Path, required=True)
    parser.add_argument("--live", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--state-dir", type=Path, default=None)
    return RunnerArgs(**vars(parser.parse_args(argv)))


@dataclass
class RunnerResult:
    """What a runner measured.

    ``seen`` messages of the pre-load were processed in ``seconds``: from the moment the first
    was in hand to the moment the last was processed, so start-up and joining the group are
    not counted. ``counts`` are the runner's own tallies of the pre-load. ``samples`` are
    ``[produce_ms, latency_ms]`` of each live message.
    """

    seen: int = 0
    seconds: float = 0.0
    peak_rss_bytes: int | None = None
    counts: dict[str, Any] = field(default_factory=dict)
    samples: list[list[int]] = field(default_factory=list)
    error: str | None = None


def announce_ready() -> None:
    """Tell the parent the pre-load is processed and live messages are awaited."""
    sys.stdout.write(f"{READY}\n")
    sys.stdout.flush()


def own_cpu() -> CpuSample | None:
    """This process's CPU time now (:func:`bench.stats.cpu_sample`)."""
    return cpu_sample(os.getpid())


def record_cpu(result: RunnerResult, began: CpuSample | None) -> None:
    """Count in ``result`` the cores this process used since ``began`` (its clock's start),
    as the worker's runs count theirs: ``cpu_per_process``, one entry."""
    result.counts["cpu_per_process"] = [cpu_use(began, own_cpu(), os.cpu_count() or 1)]


def finish(args: RunnerArgs, result: RunnerResult) -> None:
    """Record this process's peak RSS and write ``result`` where the parent reads it."""
    result.peak_rss_bytes = peak_rss_bytes(os.getpid())
    args.result.write_bytes(orjson.dumps(asdict(result)))


class ChildRunner:
    """A started ``python -m <module>`` runner, seen from the parent."""

    def __init__(self, module: str, args: RunnerArgs, log_file: Path) -> None:
        self.module = module
        self.args = args
        self.log_file = log_file
        self._ready = threading.Event()
        log_file.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_file.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, *args.argv()],
            stdout=subprocess.PIPE,
            stderr=self._log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._reader.start()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.strip() == READY.encode():
                self._ready.set()
            else:
                self._log.write(line)

    def wait_ready(self, timeout: float) -> None:
        """Block until the child has processed the pre-load; raise when it died or took too
        long."""
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise ServiceStartError(
                    f"{self.module} không sẵn sàng / {self.module} did not become ready "
                    f"(log: {self.log_file}):\n{self._tail()}"
                )

    def result(self, timeout: float) -> RunnerResult:
        """Wait for the child to exit and return what it measured."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
        self._reader.join(5)
        self._log.close()
        if not self.args.result.exists():
            raise ServiceStartError(
                f"{self.module} không ghi kết quả / {self.module} wrote no result "
                f"(exit {self.proc.returncode}, log: {self.log_file}):\n{self._tail()}"
            )
        return RunnerResult(**orjson.loads(self.args.result.read_bytes()))

    def stop(self) -> None:
        """Stop the child (SIGTERM, then SIGKILL)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def _tail(self) -> str:
        if not self._log.closed:
            self._log.flush()
        lines = self.log_file.read_text(errors="replace").splitlines()
        return "\n".join(lines[-20:])
