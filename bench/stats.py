"""Small, exact statistics of the benchmark: percentiles, rates, ratios, peak RSS, CPU."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` percentile (0..1) of ``values`` by the nearest-rank method.

    Nearest rank returns a value that was observed: p99 of 40,000 latencies is the 39,600th
    smallest. Raises ValueError on an empty sequence or a fraction outside 0..1.
    """
    if not values:
        msg = "percentile of no values"
        raise ValueError(msg)
    if not 0.0 <= fraction <= 1.0:
        msg = f"fraction must be within 0..1, got {fraction}"
        raise ValueError(msg)
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def rate(events: int, seconds: float) -> float:
    """Events per second; 0 when nothing was timed."""
    return events / seconds if seconds > 0 else 0.0


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator``, or None when either is missing or the denominator is 0."""
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


def peak_rss_bytes(pid: int, proc: Path = Path("/proc")) -> int | None:
    """The peak resident set size (``VmHWM``) of a live process, or None when unreadable."""
    try:
        text = (proc / str(pid) / "status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmHWM:"):
            parts = line.split()
            return int(parts[1]) * 1024 if parts[2] == "kB" else int(parts[1])
    return None


@dataclass(frozen=True)
class CpuSample:
    """CPU time of one process read at one moment, in seconds: its main thread's, that of
    all its other threads (those that have ended included), and the machine's idle time over
    all its cores; ``wall`` is ``time.monotonic()`` then."""

    wall: float
    main: float
    others: float
    idle: float


def _busy_seconds(stat: str) -> float:
    # /proc/<pid>/stat: the command sits in parentheses and may hold spaces; utime and stime
    # are the 14th and 15th fields, the 12th and 13th after it.
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_sample(pid: int, proc: Path = Path("/proc")) -> CpuSample | None:
    """The CPU time of process ``pid`` and the machine's idle time now, or None when the
    process cannot be read (it has exited)."""
    try:
        # The main thread first: the process's total, read after it, can only have grown.
        main = _busy_seconds((proc / str(pid) / "task" / str(pid) / "stat").read_text())
        total = _busy_seconds((proc / str(pid) / "stat").read_text())
        machine = (proc / "stat").read_text().split("\n", 1)[0].split()
    except (OSError, IndexError, ValueError):
        return None
    # The machine's line: "cpu user nice system idle iowait ...", in clock ticks.
    idle = (int(machine[4]) + int(machine[5])) / os.sysconf("SC_CLK_TCK")
    return CpuSample(time.monotonic(), main, max(0.0, total - main), idle)


def cpu_use(
    before: CpuSample | None, after: CpuSample | None, cores: int
) -> dict[str, float] | None:
    """What a process used between two samples, in cores (1.0 is one core busy the whole
    time): its main thread, its other threads; and the share of the machine's ``cores``
    that stood idle. None when a sample is missing or no time passed.

    Each figure is good to a clock tick (10 ms) over the interval, so over an interval of a
    few ticks it says little; it is kept within what can be: a thread uses at most one
    core, and the idle share is between 0 and 1. (The kernel also rounds a thread's time
    and the process's total each on its own: the other threads can seem to lose a tick.)"""
    if before is None or after is None or after.wall <= before.wall:
        return None
    wall = after.wall - before.wall
    return {
        "seconds": wall,
        "main_thread": min(1.0, max(0.0, after.main - before.main) / wall),
        "other_threads": max(0.0, after.others - before.others) / wall,
        "machine_idle": min(1.0, max(0.0, after.idle - before.idle) / (wall * cores)),
    }
