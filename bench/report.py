"""The benchmark's figures: per runner, the ratios, a table for people and JSON for tools."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.child import RunnerResult
from bench.stats import percentile, rate, ratio

#: Runner names, with what each is, Vietnamese then English.
RUNNERS: dict[str, tuple[str, str]] = {
    "raw": ("trần: aiokafka + orjson", "ceiling: aiokafka + orjson"),
    "peer": ("đối chứng: Quix Streams", "peer: Quix Streams"),
    "worker": ("worker của dự án (Faust)", "this project's worker (Faust)"),
}


@dataclass
class RunnerFigures:
    """What one runner reached on the pre-load and on the live load."""

    name: str
    processes: int
    given: int  # messages pre-loaded for it
    timed: int  # messages processed while the clock ran
    seconds: float
    events_per_second: float
    p50_ms: float | None
    p99_ms: float | None
    live_events: int  # live messages whose latency was measured
    peak_rss_bytes: int | None
    counts: dict[str, Any] = field(default_factory=dict)
    #: Which of the run's pairs of peer and worker runs this was (``--pairs``; 1 otherwise).
    round: int = 1

    @property
    def row(self) -> str:
        """The runner's name in the table: ``×N`` for several processes, ``#R`` for a
        round after the first."""
        processes = f" ×{self.processes}" if self.processes > 1 else ""
        return f"{self.name}{processes}" + (f" #{self.round}" if self.round > 1 else "")

    @property
    def label(self) -> str:
        """``name`` and what it is (English), with ``×N`` for several processes."""
        vi, en = RUNNERS.get(self.name, (self.name, self.name))
        suffix = f" ×{self.processes}" if self.processes > 1 else ""
        return f"{self.name}{suffix} — {vi} / {en}"


def figures(
    name: str, processes: int, given: int, result: RunnerResult, round_: int = 1
) -> RunnerFigures:
    """A runner's figures from what it measured (in round ``round_`` of ``--pairs``)."""
    latencies = [float(sample[1]) for sample in result.samples]
    return RunnerFigures(
        name=name,
        processes=processes,
        given=given,
        timed=result.seen,
        seconds=result.seconds,
        events_per_second=rate(result.seen, result.seconds),
        p50_ms=percentile(latencies, 0.50) if latencies else None,
        p99_ms=percentile(latencies, 0.99) if latencies else None,
        live_events=len(latencies),
        peak_rss_bytes=result.peak_rss_bytes,
        counts=result.counts,
        round=round_,
    )


@dataclass
class BenchReport:
    """Everything one ``ioc bench`` run measured."""

    events: int  # distinct reports pre-loaded (distinct (indicator, area, period) keys)
    duplicates: int  # of them, sent a second time
    sources: int
    partitions: int
    live_events: int
    offered_rate: float
    preload_seconds: float
    runners: list[RunnerFigures]
    machine: dict[str, Any] = field(default_factory=dict)

    def runner(self, name: str, processes: int = 1) -> RunnerFigures | None:
        """The figures of one runner, or None when it did not run."""
        for one in self.runners:
            if one.name == name and one.processes == processes:
                return one
        return None

    def _rate(self, name: str, processes: int = 1) -> float | None:
        """The runner's rate: the median over its rounds, when it ran several."""
        rates = [
            one.events_per_second
            for one in self.runners
            if one.name == name and one.processes == processes
        ]
        return statistics.median(rates) if rates else None

    @property
    def pairs(self) -> list[dict[str, float | int | None]]:
        """Per round, the peer's and one worker's rate and their ratio (``--pairs``)."""
        by_round: dict[int, dict[str, float]] = {}
        for one in self.runners:
            if one.processes == 1 and one.name in ("peer", "worker"):
                by_round.setdefault(one.round, {})[one.name] = one.events_per_second
        return [
            {
                "round": round_,
                "peer": rates.get("peer"),
                "worker": rates.get("worker"),
                "ratio": ratio(rates.get("worker"), rates.get("peer")),
            }
            for round_, rates in sorted(by_round.items())
        ]

    @property
    def ratios(self) -> dict[str, float | None]:
        """Ours over the peer and over the raw ceiling (one worker), and the scale-out.

        Over several pairs of runs, ours over the peer is the median of the pairs' ratios
        (each worker against the peer run beside it), and every other ratio is of the
        runners' median rates.
        """
        ours = self._rate("worker")
        paired = [pair["ratio"] for pair in self.pairs if pair["ratio"] is not None]
        return {
            "ours_vs_peer": statistics.median(paired) if paired else None,
            "ours_vs_raw": ratio(ours, self._rate("raw")),
            "two_workers_vs_one": ratio(self._rate("worker", 2), ours),
            "two_workers_vs_peer": ratio(self._rate("worker", 2), self._rate("peer")),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BenchReport:
        """The report :meth:`to_json` wrote (for rendering a saved run as a table)."""
        return cls(
            events=data["events"],
            duplicates=data["duplicates"],
            sources=data["sources"],
            partitions=data["partitions"],
            live_events=data["live_events"],
            offered_rate=data["offered_rate"],
            preload_seconds=data["preload_seconds"],
            runners=[RunnerFigures(**runner) for runner in data["runners"]],
            machine=data.get("machine", {}),
        )

    def to_json(self) -> dict[str, Any]:
        """The report as plain JSON types."""
        return {
            "events": self.events,
            "duplicates": self.duplicates,
            "messages": self.events + self.duplicates,
            "distinct_keys": self.events,
            "sources": self.sources,
            "partitions": self.partitions,
            "live_events": self.live_events,
            "offered_rate": self.offered_rate,
            "preload_seconds": self.preload_seconds,
            "machine": self.machine,
            "runners": [asdict(one) for one in self.runners],
            "ratios": self.ratios,
            "pairs": self.pairs,
        }


def _number(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _megabytes(value: int | None) -> str:
    return "—" if value is None else f"{value / 2**20:,.0f}"


def _count(counts: dict[str, Any], key: str) -> str:
    value = counts.get(key)
    return "—" if value is None else f"{value:,}"


COLUMNS: Sequence[tuple[str, str]] = (
    ("Bộ chạy", "Runner"),
    ("Tiến trình", "Processes"),
    ("Sự kiện/s", "Events/s"),
    ("p50 ms", "p50 ms"),
    ("p99 ms", "p99 ms"),
    ("RSS đỉnh MB", "Peak RSS MB"),
    ("Đã nhận", "Received"),
    ("Chấp nhận", "Accepted"),
    ("Trùng lặp", "Duplicates"),
    ("Mất", "Lost"),
)


def render_table(report: BenchReport) -> str:
    """The report for people: a header, one row per runner, the ratios."""
    rows = [list(vi for vi, _ in COLUMNS), list(en for _, en in COLUMNS)]
    for one in report.runners:
        received = one.counts.get("received", one.counts.get("decoded"))
        rows.append(
            [
                one.row,
                str(one.processes),
                _number(one.events_per_second) + ("*" if one.counts.get("partial") else ""),
                _number(one.p50_ms),
                _number(one.p99_ms),
                _megabytes(one.peak_rss_bytes),
                "—" if received is None else f"{received:,}",
                _count(one.counts, "accepted"),
                _count(one.counts, "duplicates"),
                _count(one.counts, "lost"),
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = [
        f"Đo hiệu năng / Benchmark: {report.events:,} sự kiện khác khoá / events with distinct "
        f"keys + {report.duplicates:,} gửi lại / re-sent, {report.sources} nguồn / sources, "
        f"{report.partitions} phân vùng / partitions",
        f"Độ trễ / Latency: {report.live_events:,} sự kiện ở / events at "
        f"{report.offered_rate:,.0f}/s; nạp trước / pre-load: {report.preload_seconds:.1f} s",
    ]
    if report.machine:
        lines.append(
            f"Máy / Machine: {report.machine.get('cores')} lõi / cores, tải trước / load "
            f"before {report.machine.get('load_before')}, sau / after "
            f"{report.machine.get('load_after')}"
        )
    lines.append("")
    for index, row in enumerate(rows):
        cells = [
            cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)
        ]
        lines.append("  ".join(cells).rstrip())
        if index == 1:
            lines.append("  ".join("-" * width for width in widths))
    lines.append("")
    lines += [f"  {label}" for label in dict.fromkeys(one.label for one in report.runners)]
    if any(one.counts.get("partial") for one in report.runners):
        lines.append(
            "  * chưa xử lý hết dữ liệu nạp trước trong --max-seconds: tốc độ tính trên phần đã "
            "xử lý, độ trễ đo trên worker mới / not through the pre-load within --max-seconds: "
            "the rate counts what was finished, latency was measured on fresh workers"
        )
    lines += _cpu_lines(report)
    ratios = report.ratios
    lines += [
        "",
        "Tỷ lệ / Ratios: "
        f"worker/đối chứng (peer) {_times(ratios['ours_vs_peer'])}{_spread(report)}, "
        f"worker/trần (raw) {_times(ratios['ours_vs_raw'])}"
        + (
            f", 2 worker/1 worker {_times(ratios['two_workers_vs_one'])}"
            if ratios["two_workers_vs_one"] is not None
            else ""
        ),
    ]
    return "\n".join(lines)


def _times(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}×"


def _spread(report: BenchReport) -> str:
    """After several pairs, the ratio of each pair, in the order they ran."""
    paired = [pair["ratio"] for pair in report.pairs if pair["ratio"] is not None]
    if len(paired) < 2:  # one pair is its own median
        return ""
    each = ", ".join(_times(value) for value in paired)
    return f" (trung vị của {len(paired)} cặp / median of {len(paired)} pairs: {each})"


def _cpu_lines(report: BenchReport) -> list[str]:
    """Per runner, the cores each of its processes used while its clock ran, and how much
    of the machine stood idle meanwhile (``cpu_per_process``; runs saved before it was
    measured have none)."""
    rows = []
    for one in report.runners:
        uses = [use for use in one.counts.get("cpu_per_process") or [] if use]
        if not uses:
            continue
        threads = " | ".join(f"{u['main_thread']:.2f} + {u['other_threads']:.2f}" for u in uses)
        rows.append((one.row, threads, f"{uses[0]['machine_idle']:.0%}"))
    if not rows:
        return []
    name_width = max(len(name) for name, _, _ in rows)
    threads_width = max(len(threads) for _, threads, _ in rows)
    return [
        "",
        "CPU khi đồng hồ chạy, lõi / CPU while the clock ran, cores: luồng chính + các luồng "
        "khác / main thread + other threads; máy rảnh / machine idle",
        *(
            f"  {name.ljust(name_width)}  {threads.ljust(threads_width)}  rảnh / idle {idle}"
            for name, threads, idle in rows
        ),
    ]
