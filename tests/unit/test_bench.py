"""``ioc bench`` without a broker: the data it loads, its statistics, its report."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from kafka.partitioner.default import murmur2
from prometheus_client import CollectorRegistry

from agents.gatekeeper import position_of
from agents.metrics import PipelineMetrics, SeriesCollector
from agents.quality import target_for
from bench import run
from bench.agents import measure_agents
from bench.child import RunnerArgs, RunnerResult, parse_args
from bench.dataset import Dataset, build_dataset
from bench.load import Partitioner
from bench.report import BenchReport, figures, render_table
from bench.run import QUIX_MISSING, BenchOptions, private_broker_jit, require_quix
from bench.stats import (
    CpuSample,
    cpu_sample,
    cpu_use,
    peak_rss_bytes,
    percentile,
    rate,
    ratio,
)
from bench.worker import Progress, WorkerRun, _clock_stop, behind_on, histogram_bound, total
from ioc.errors import ConfigurationError, PrerequisiteMissing
from ioc.settings import Settings
from streams.catalogue import Catalogue, default_catalogue
from streams.periods import LOCAL_TZ
from streams.validation import check_against_catalogue, parse_feed_message

END = datetime(2026, 3, 1, tzinfo=LOCAL_TZ)


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return default_catalogue()


@pytest.fixture(scope="module")
def dataset(catalogue: Catalogue) -> Dataset:
    return build_dataset(catalogue, 600, live=80, duplicate_rate=0.05, end=END)


# --- the generator ---------------------------------------------------------------------------


def test_every_event_keeps_the_contract_and_the_catalogue(
    catalogue: Catalogue, dataset: Dataset
) -> None:
    now = datetime.now(UTC)
    for record in [*dataset.load, *dataset.live]:
        event = parse_feed_message(record.value, record.source)
        assert not hasattr(event, "reason"), (record, event)
        assert record.key == event.key  # the SDK's key: indicator|area
        assert record.period == event.period
        assert check_against_catalogue(event, catalogue, now) is None, record


def test_the_preload_has_distinct_keys_then_exact_resends(dataset: Dataset) -> None:
    originals = dataset.load[: dataset.distinct]
    resent = dataset.load[dataset.distinct :]
    assert dataset.distinct == 600
    assert dataset.duplicates == len(resent) == 30
    assert len({r.series_period for r in originals}) == 600
    assert all(r in originals for r in resent)  # byte for byte, same event id
    assert len({r.value for r in resent}) == 30


def test_every_source_is_in_the_preload_even_when_small(catalogue: Catalogue) -> None:
    small = build_dataset(catalogue, len(catalogue.sources), duplicate_rate=0, end=END)
    assert small.sources == sorted(catalogue.sources)
    assert len({r.series_period for r in small.load}) == len(catalogue.sources)


def test_live_events_have_keys_of_their_own(catalogue: Catalogue, dataset: Dataset) -> None:
    assert len(dataset.live) == 80
    loaded = {r.series_period for r in dataset.load}
    live = {r.series_period for r in dataset.live}
    assert len(live) == 80
    assert not loaded & live
    assert set(dataset.sources) == set(catalogue.sources)


def test_per_source_counts_add_up(dataset: Dataset) -> None:
    assert sum(dataset.per_source().values()) == len(dataset.load)
    assert sum(dataset.per_source(originals_only=True).values()) == dataset.distinct


def test_events_get_fresh_ids_from_the_sdk(catalogue: Catalogue) -> None:
    one = build_dataset(catalogue, 50, duplicate_rate=0, end=END)
    two = build_dataset(catalogue, 50, duplicate_rate=0, end=END)
    assert [r.series_period for r in one.load] == [r.series_period for r in two.load]
    assert {r.value for r in one.load}.isdisjoint({r.value for r in two.load})


@pytest.mark.parametrize(("events", "rate_"), [(10, 0.0), (100, -0.1), (100, 1.5)])
def test_impossible_datasets_are_refused(catalogue: Catalogue, events: int, rate_: float) -> None:
    with pytest.raises(ConfigurationError, match="--"):
        build_dataset(catalogue, events, duplicate_rate=rate_, end=END)


def test_keys_go_to_the_partition_every_project_producer_picks() -> None:
    """The SDK's kafka-python producer: murmur2 of the key, positive, modulo partitions."""
    ours = Partitioner(3)
    keys = [b"population|son-la", b"grdp|moc-chau", b"online_application_rate|x", b"a|b"]
    assert [ours(key) for key in keys] == [(murmur2(key) & 0x7FFFFFFF) % 3 for key in keys]
    assert len({ours(key) for key in keys}) > 1


# --- statistics ------------------------------------------------------------------------------


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(100, 0, -1)]  # 1..100, unsorted
    assert percentile(values, 0.5) == 50
    assert percentile(values, 0.99) == 99
    assert percentile(values, 1.0) == 100
    assert percentile(values, 0.0) == 1
    assert percentile([7.0], 0.99) == 7
    assert percentile([1.0, 2.0, 3.0], 0.5) == 2


@pytest.mark.parametrize(("values", "fraction"), [([], 0.5), ([1.0], 1.5), ([1.0], -0.1)])
def test_percentile_refuses_nonsense(values: list[float], fraction: float) -> None:
    with pytest.raises(ValueError, match=r"percentile|fraction"):
        percentile(values, fraction)


def test_rates_and_ratios() -> None:
    assert rate(1000, 2.0) == 500
    assert rate(1000, 0.0) == 0
    assert ratio(30.0, 20.0) == 1.5
    assert ratio(None, 20.0) is None
    assert ratio(30.0, None) is None
    assert ratio(30.0, 0.0) is None


def test_peak_rss_reads_vmhwm(tmp_path: Path) -> None:
    (tmp_path / "42").mkdir()
    (tmp_path / "42" / "status").write_text(
        "Name:\tpython\nVmPeak:\t  900000 kB\nVmHWM:\t  123456 kB\nVmRSS:\t  100000 kB\n"
    )
    assert peak_rss_bytes(42, tmp_path) == 123456 * 1024
    assert peak_rss_bytes(43, tmp_path) is None
    own = peak_rss_bytes(os.getpid())
    assert own is not None
    assert own > 10 * 2**20


def _stat(pid: int, command: str, utime: int, stime: int) -> str:
    # The fields of /proc/<pid>/stat up to stime (14 and 15); the command may hold spaces.
    return f"{pid} ({command}) S 1 1 1 0 -1 4194304 10 0 0 0 {utime} {stime} 0 0 20 0 3\n"


def test_cpu_sample_splits_the_main_thread_from_the_others(tmp_path: Path) -> None:
    ticks = os.sysconf("SC_CLK_TCK")
    task = tmp_path / "42" / "task" / "42"
    task.mkdir(parents=True)
    (tmp_path / "42" / "stat").write_text(_stat(42, "python -m ioc) worker", 5 * ticks, ticks))
    (task / "stat").write_text(_stat(42, "python -m ioc) worker", 4 * ticks, ticks // 2))
    (tmp_path / "stat").write_text(f"cpu  10 0 10 {30 * ticks} {ticks} 0 0 0 0 0\ncpu0 1 2\n")
    sample = cpu_sample(42, tmp_path)
    assert sample is not None
    assert (sample.main, sample.others, sample.idle) == (4.5, 1.5, 31.0)
    assert cpu_sample(43, tmp_path) is None


def test_cpu_use_is_in_cores_over_the_interval() -> None:
    before = CpuSample(wall=100.0, main=10.0, others=1.0, idle=50.0)
    after = CpuSample(wall=104.0, main=13.8, others=1.4, idle=53.2)
    use = cpu_use(before, after, cores=2)
    assert use == pytest.approx(
        {"seconds": 4.0, "main_thread": 0.95, "other_threads": 0.1, "machine_idle": 0.4}
    )
    # Over a few clock ticks (10 ms each) a figure can pass what is possible: kept within it.
    # Here the process's total and the main thread's were rounded apart (a tick "lost").
    ticks = CpuSample(wall=100.005, main=10.01, others=0.99, idle=50.03)
    short = cpu_use(before, ticks, cores=2)
    assert short is not None
    assert (short["main_thread"], short["other_threads"], short["machine_idle"]) == (1, 0, 1)
    assert cpu_use(None, after, 2) is None
    assert cpu_use(after, before, 2) is None


def test_cpu_of_this_process_counts_a_busy_thread_as_another_thread() -> None:
    def spin(seconds: float) -> None:
        end = time.thread_time() + seconds
        while time.thread_time() < end:
            pass

    before = cpu_sample(os.getpid())
    thread = threading.Thread(target=spin, args=(0.3,))
    thread.start()
    thread.join()
    middle = cpu_sample(os.getpid())
    spin(0.3)
    after = cpu_sample(os.getpid())
    assert before is not None
    assert middle is not None
    assert after is not None
    ticks = 1 / os.sysconf("SC_CLK_TCK")
    # The thread has ended: its time stays counted among the others.
    assert middle.others - before.others >= 0.3 - 2 * ticks
    assert middle.main - before.main < 0.1
    assert after.main - middle.main >= 0.3 - 2 * ticks


# --- the worker's metrics --------------------------------------------------------------------


def test_the_clock_stops_when_the_last_batch_closed_not_at_the_scrape_that_saw_it() -> None:
    def run(last: float | None) -> Any:
        return SimpleNamespace(last_batch=lambda: last)

    # began at perf_counter 100.0, Unix time 1000.0; the counts were seen reached at 120.0
    assert _clock_stop(run(1015.5), 100.0, 1000.0, 120.0) == (115.5, "last batch")
    assert _clock_stop(run(None), 100.0, 1000.0, 120.0) == (120.0, "scrape")
    assert _clock_stop(run(990.0), 100.0, 1000.0, 120.0) == (120.0, "scrape")  # before the run
    assert _clock_stop(run(1030.0), 100.0, 1000.0, 120.0) == (120.0, "scrape")  # a later batch


def test_the_cpu_clock_ends_at_a_mark_after_its_start_however_soon_it_stopped(
    tmp_path: Path,
) -> None:
    run = WorkerRun([], tmp_path, processes=[SimpleNamespace(pid=os.getpid())])
    began = run.mark()
    time.sleep(0.05)
    later = run.mark()
    time.sleep(0.05)
    last = run.mark()
    # The clock stopped a moment after it began: nearer its first mark than any other.
    assert run.mark_nearest(began + 0.001, after=began) == later
    assert run.mark_nearest(last + 5.0, after=began) == last
    (use,) = run.cpu_use(began, run.mark_nearest(began + 0.001, after=began))
    assert use is not None
    assert use["seconds"] > 0


def _rest_beside(tmp_path: Path, busy: float, seconds: float) -> tuple[float, WorkerRun]:
    """How long :meth:`WorkerRun.rest` for ``seconds`` waits beside a process that spins for
    ``busy`` seconds of CPU and then sleeps; and the run, with its marks."""
    script = tmp_path / "spin.py"
    script.write_text(
        "import time\n"
        f"end = time.process_time() + {busy}\n"
        "while time.process_time() < end:\n"
        "    pass\n"
        "time.sleep(30)\n"
    )
    spinner = subprocess.Popen([sys.executable, str(script)])
    try:
        run = WorkerRun([], tmp_path, processes=[SimpleNamespace(pid=spinner.pid)])
        began = run.mark()
        run.rest(began, seconds)
        return time.perf_counter() - began, run
    finally:
        spinner.kill()
        spinner.wait()


def test_the_wait_between_scrapes_ends_once_busy_workers_go_quiet(tmp_path: Path) -> None:
    waited, run = _rest_beside(tmp_path, busy=0.6, seconds=20.0)
    assert waited < 10.0  # back soon after the spin, not after the 20 s
    assert waited >= 0.5
    assert len(run.cpu_at) >= 3  # marked every quarter of a second meanwhile


def test_the_wait_between_scrapes_runs_its_course_while_nothing_was_busy(tmp_path: Path) -> None:
    waited, _ = _rest_beside(tmp_path, busy=0.0, seconds=1.0)
    assert waited >= 1.0  # quiet from the start (a stall, or not begun): the usual pace


def _bucket(le: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return ("ioc_processing_latency_seconds_bucket", frozenset({("le", le)}))


def test_histogram_bound_counts_only_the_interval() -> None:
    before = {_bucket("0.05"): 10.0, _bucket("0.1"): 10.0, _bucket("0.25"): 10.0}
    before[_bucket("+Inf")] = 10.0
    after = {_bucket("0.05"): 60.0, _bucket("0.1"): 108.0, _bucket("0.25"): 109.0}
    after[_bucket("+Inf")] = 110.0  # 100 new: 50 <= 50 ms, 98 <= 100 ms, 99 <= 250 ms
    assert histogram_bound(after, before, 0.5) == 0.05
    assert histogram_bound(after, before, 0.98) == 0.1
    assert histogram_bound(after, before, 0.99) == 0.25
    assert histogram_bound(after, before, 1.0) == float("inf")
    assert histogram_bound(before, before, 0.5) is None


def test_totals_sum_the_matching_series() -> None:
    samples = {
        ("ioc_batch_events_sum", frozenset({("agent", "evaluate")})): 120.0,
        ("ioc_batch_events_sum", frozenset({("agent", "validate")})): 130.0,
        ("ioc_events_received_total", frozenset({("source", "ict")})): 100.0,
        ("ioc_events_received_total", frozenset({("source", "tax")})): 30.0,
    }
    assert total(samples, "ioc_events_received_total") == 130
    assert total(samples, "ioc_batch_events_sum", agent="evaluate") == 120
    assert Progress(received=130, evaluated=120, dropped=10).finished == 130


def test_what_is_left_to_read_counts_only_the_topics_asked_for() -> None:
    def lag(topic: str, partition: str) -> tuple[str, frozenset[tuple[str, str]]]:
        return (
            "ioc_consumer_lag_messages",
            frozenset({("topic", topic), ("partition", partition)}),
        )

    samples = {
        lag("b.ioc.internal.rollups", "0"): 3.0,
        lag("b.ioc.internal.rollups", "1"): 4.0,
        lag("b.ioc.internal.receipts", "0"): 0.0,
        lag("b.ioc.feed.ict", "0"): 50.0,
        ("ioc_events_received_total", frozenset({("topic", "b.ioc.internal.rollups")})): 9.0,
    }
    assert behind_on(samples, {"b.ioc.internal.rollups", "b.ioc.internal.receipts"}) == 7
    assert behind_on(samples, {"b.ioc.internal.receipts"}) == 0
    assert behind_on({}, {"b.ioc.internal.rollups"}) == 0


# --- the peer's job (Quix's state replaced by a dict) ----------------------------------------


class FakeState:
    """The part of Quix's per-key State the job uses: it holds JSON, as Quix's does (a
    value JSON cannot hold fails here as it would there)."""

    def __init__(self) -> None:
        self.values: dict[str, bytes] = {}

    def get(self, key: str, default: Any = None) -> Any:
        value = self.values.get(key)
        return default if value is None else orjson.loads(value)

    def set(self, key: str, value: Any) -> None:
        self.values[key] = orjson.dumps(value)

    def delete(self, key: str) -> None:
        self.values.pop(key, None)


def test_the_peer_job_validates_dedupes_keeps_latest_and_counts(
    catalogue: Catalogue, dataset: Dataset, tmp_path: Path
) -> None:
    # Never skipped: `make test` installs the benchmark's extra, and a missing one must show.
    try:
        peer = importlib.import_module("bench.peer")
    except ImportError as exc:
        pytest.fail(f"the peer needs the extra `.[bench]` (make install): {exc}")
    job_class, latest = peer.PeerJob, peer.LATEST

    args = RunnerArgs("127.0.0.1:9", "p.", "g", len(dataset.load), tmp_path / "r.json")
    job = job_class(catalogue, args)
    states: dict[bytes, FakeState] = {}
    for offset, record in enumerate([*dataset.load, b"not json"]):
        if isinstance(record, bytes):  # a broken message on the ict feed
            job.handle("p.ioc.feed.ict", position_of(0, offset), record, b"k|a", 0, FakeState())  # type: ignore[arg-type]
            continue
        state = states.setdefault(record.key, FakeState())
        topic = f"p.ioc.feed.{record.source}"
        job.handle(topic, position_of(0, offset), record.value, record.key, 0, state)  # type: ignore[arg-type]
    counts = job.counts()
    assert counts["received"] == len(dataset.load) + 1
    assert counts["accepted"] == dataset.distinct
    assert counts["duplicates"] == dataset.duplicates
    assert counts["rejected"] == 1
    assert counts["per_source"] == dict(sorted(dataset.per_source(originals_only=True).items()))
    newest: dict[bytes, str] = {}
    for record in dataset.load:
        newest[record.key] = max(newest.get(record.key, ""), record.period)
    assert {key: state.get(latest)[0] for key, state in states.items()} == newest
    assert job.result.seen == len(dataset.load)  # the pre-load; the broken one was live
    assert job.result.counts["accepted"] == dataset.distinct


def test_the_agents_alone_take_the_preload_and_post_onwards(
    catalogue: Catalogue, dataset: Dataset
) -> None:
    rounds = measure_agents(Settings(), catalogue, dataset, rounds=2)

    for result in rounds:  # each round on empty tables: the same counts
        assert result.events == len(dataset.load)
        assert result.counts == {
            "accepted": dataset.distinct,
            "duplicates": dataset.duplicates,
            "rejected": 0,
        }
        assert set(result.seconds) == {"ingest", "rollup", "rules", "reporting"}
        assert all(seconds > 0 for seconds in result.seconds.values())
        # Receipts: one record per source and ingest batch; every source is in the data.
        assert result.records["receipts"] >= len(dataset.sources)
        assert result.records["rollup"] > 0
        assert result.to_json()["counts"] == result.counts


def test_bench_agents_prints_a_round_per_line_and_refuses_too_few_events() -> None:
    def ioc(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "ioc", "bench-agents", *args]
        return subprocess.run(command, capture_output=True, text=True, check=False)

    result = ioc("--events", "100", "--rounds", "2", "--json")
    assert result.returncode == 0, result.stderr
    rounds = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert [r["round"] for r in rounds] == [1, 2]
    assert all(r["counts"]["accepted"] == 100 and r["counts"]["duplicates"] == 1 for r in rounds)

    refused = ioc("--events", "3")
    assert refused.returncode == ConfigurationError.exit_code
    assert "--events phải ít nhất 41" in refused.stderr
    assert "--events must be at least 41" in refused.stderr


def test_a_missing_peer_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(PrerequisiteMissing) as caught:
        require_quix()
    assert "pip install -e '.[bench]'" in str(caught.value)
    assert str(caught.value) == QUIX_MISSING
    assert caught.value.exit_code == 6


# --- child protocol and report ---------------------------------------------------------------


def test_runner_args_survive_the_command_line(tmp_path: Path) -> None:
    args = RunnerArgs("h:1", "x.", "grp", 10, tmp_path / "r.json", live=5, timeout=7.0)
    assert parse_args(args.argv()) == args


_CPU = {"seconds": 0.25, "main_thread": 0.9, "other_threads": 0.125, "machine_idle": 0.05}


def _report() -> BenchReport:
    def result(seen: int, seconds: float, latencies: list[int], **counts: Any) -> RunnerResult:
        return RunnerResult(
            seen=seen,
            seconds=seconds,
            peak_rss_bytes=100 * 2**20,
            counts=counts,
            samples=[[0, lat] for lat in latencies],
        )

    return BenchReport(
        events=1000,
        duplicates=10,
        sources=41,
        partitions=2,
        live_events=100,
        offered_rate=2000,
        preload_seconds=1.5,
        runners=[
            figures("raw", 1, 1010, result(1010, 0.01, list(range(1, 101)), decoded=1010)),
            figures("peer", 1, 1010, result(1010, 1.0, [5] * 100, accepted=1000, duplicates=10)),
            figures("worker", 1, 1010, result(1010, 0.5, [20] * 99 + [300], accepted=1000)),
            figures(
                "worker",
                2,
                1010,
                result(1010, 0.25, [30] * 100, partial=True, cpu_per_process=[_CPU, _CPU]),
            ),
        ],
        machine={"cores": 2, "load_before": 1.0, "load_after": 2.0},
    )


def test_report_figures_and_ratios() -> None:
    report = _report()
    raw, _, worker = report.runners[:3]
    assert raw.events_per_second == 101_000
    assert (raw.p50_ms, raw.p99_ms) == (50, 99)
    assert (worker.p50_ms, worker.p99_ms) == (20, 20)  # 99 of 100 at 20 ms
    assert worker.live_events == 100
    ratios = report.ratios
    assert ratios["ours_vs_peer"] == pytest.approx(2.0)
    assert ratios["ours_vs_raw"] == pytest.approx(2020 / 101_000)
    assert ratios["two_workers_vs_one"] == pytest.approx(2.0)
    data = report.to_json()
    assert data["messages"] == 1010
    assert [r["name"] for r in data["runners"]] == ["raw", "peer", "worker", "worker"]
    assert data["runners"][2]["counts"] == {"accepted": 1000}


def test_a_saved_report_renders_the_same_table() -> None:
    report = _report()
    saved = orjson.loads(orjson.dumps(report.to_json()))
    assert render_table(BenchReport.from_json(saved)) == render_table(report)


def test_the_table_is_vietnamese_first_with_every_runner() -> None:
    table = render_table(_report())
    lines = table.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("Bộ chạy"))
    assert lines[header + 1].startswith("Runner")
    assert "Sự kiện/s" in lines[header]
    assert "Events/s" in lines[header + 1]
    rows = [line.split()[0] for line in lines[header + 3 : header + 7]]
    assert rows == ["raw", "peer", "worker", "worker"]
    assert "2.00×" in table  # ours over the peer
    assert "101,000" in table
    assert "*" in lines[header + 6]  # the partial run is marked
    assert "Tỷ lệ / Ratios" in table
    cpu = lines.index(next(line for line in lines if line.startswith("CPU khi")))
    assert "main thread + other threads" in lines[cpu]
    # Only the run that measured its CPU has a line: both processes, and the machine's idle.
    assert lines[cpu + 1].split() == [
        "worker", "×2", "0.90", "+", "0.12", "|", "0.90", "+", "0.12", "rảnh", "/", "idle", "5%",
    ]  # fmt: skip
    assert not lines[cpu + 2].strip()


def _paired(rates: list[tuple[float, float]]) -> BenchReport:
    """A report of pairs of runs: per pair, the peer's and one worker's events/s."""
    runners = []
    for round_, (peer, worker) in enumerate(rates, start=1):
        for name, per_second in (("peer", peer), ("worker", worker)):
            result = RunnerResult(seen=round(per_second), seconds=1.0, counts={"accepted": 1})
            runners.append(figures(name, 1, 1010, result, round_))
    raw = RunnerResult(seen=100_000, seconds=1.0)
    return BenchReport(1000, 10, 41, 2, 0, 2000, 1.0, [figures("raw", 1, 1010, raw), *runners])


def test_over_pairs_ours_over_the_peer_is_the_median_of_each_pairs_ratio() -> None:
    # Ratios 0.5, 2.0, 1.2: their median is 1.2. The ratio of the median rates would be
    # 1,000 / 1,000 = 1.0: a slow worker beside a fast peer would count against a pair it
    # was not in.
    report = _paired([(2000, 1000), (500, 1000), (1000, 1200)])
    assert [pair["ratio"] for pair in report.pairs] == pytest.approx([0.5, 2.0, 1.2])
    assert report.ratios["ours_vs_peer"] == pytest.approx(1.2)
    assert report.ratios["ours_vs_raw"] == pytest.approx(1000 / 100_000)  # the median rate
    data = report.to_json()
    assert [pair["round"] for pair in data["pairs"]] == [1, 2, 3]
    assert BenchReport.from_json(orjson.loads(orjson.dumps(data))).pairs == report.pairs

    table = render_table(report)
    rows = [line.split()[0:2] for line in table.splitlines() if line.startswith(("peer", "worker"))]
    assert rows[:4] == [["peer", "1"], ["worker", "1"], ["peer", "#2"], ["worker", "#2"]]
    assert "1.20× (trung vị của 3 cặp / median of 3 pairs: 0.50×, 2.00×, 1.20×)" in table
    assert table.count("peer — đối chứng: Quix Streams") == 1  # each runner told once
    # One pair is its own median: no list.
    assert "median of" not in render_table(_paired([(1000, 900)]))


def test_pairs_alternate_which_runner_goes_first(monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[str] = []

    def child(module: str, *_: Any) -> RunnerResult:
        ran.append(module.rsplit(".", 1)[-1])
        return RunnerResult(seen=10, seconds=1.0, counts={"preload_seconds": 0.5})

    def workers(*_: Any, processes: int, **__: Any) -> RunnerResult:
        ran.append(f"worker×{processes}")
        return RunnerResult(seen=10, seconds=1.0)

    monkeypatch.setattr(run, "require_quix", lambda: None)
    monkeypatch.setattr(run, "measure_child", child)
    monkeypatch.setattr(run, "measure_workers", workers)
    settings = Settings(kafka_bootstrap="localhost:1")  # taken as given: no broker starts
    options = BenchOptions(events=100, latency_seconds=0, workers=2, pairs=3)
    report = run.run_bench(settings, options)
    assert ran == ["raw", "peer", "worker×1", "worker×1", "peer", "peer", "worker×1", "worker×2"]
    assert [(one.row, one.round) for one in report.runners] == [
        ("raw", 1), ("peer", 1), ("worker", 1), ("worker #2", 2), ("peer #2", 2),
        ("peer #3", 3), ("worker #3", 3), ("worker ×2", 1),
    ]  # fmt: skip

    with pytest.raises(ConfigurationError, match="--pairs must be 1 or more"):
        run.run_bench(settings, BenchOptions(events=100, pairs=0))


def test_default_options_are_the_issues() -> None:
    options = BenchOptions()
    assert options.events == 1_000_000
    assert options.live_events == 40_000
    assert Counter(vars(options).keys()) >= Counter({"rate": 1, "workers": 1})


# --- the worker's optimisations keep its behaviour -------------------------------------------


def test_cached_targets_are_target_for(catalogue: Catalogue) -> None:
    collector = SeriesCollector(SimpleNamespace(catalogue=catalogue))  # type: ignore[arg-type]
    checked = 0
    for indicator in catalogue.indicators.values():
        for area in {t.area for t in indicator.targets} | {"son-la", "moc-chau"}:
            for year in range(2018, 2034):
                assert collector.target(indicator, area, year) == target_for(
                    indicator, area, year
                ), (indicator.code, area, year)
                checked += 1
    assert checked > 1000
    assert any(t.targets for t in catalogue.indicators.values())


def test_fast_labels_are_the_same_children() -> None:
    registry = CollectorRegistry()
    metrics = PipelineMetrics(registry, ["ict"])
    child = metrics.rejected.labels("ict", "not_json")
    assert metrics.rejected.labels("ict", "not_json") is child
    assert metrics.rejected.labels(source="ict", reason="not_json") is child
    child.inc()
    metrics.rejected.labels("tax", "empty").inc(2)  # a new label set: prometheus' own path
    metrics.batch_size.labels("evaluate").observe(3)
    assert (
        registry.get_sample_value(
            "ioc_events_rejected_total", {"source": "ict", "reason": "not_json"}
        )
        == 1
    )
    assert (
        registry.get_sample_value("ioc_events_rejected_total", {"source": "tax", "reason": "empty"})
        == 2
    )
    assert registry.get_sample_value("ioc_batch_events_sum", {"agent": "evaluate"}) == 3
    with pytest.raises(ValueError, match="Incorrect label count"):
        metrics.received.labels("ict", "extra")


def test_the_private_broker_compiles_as_a_production_broker_unless_told(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("IOC_KAFKA_JIT", raising=False)
    assert Settings().kafka_jit == "c1"  # the tests' and the demo's local broker
    assert private_broker_jit(Settings()) == "tiered"
    monkeypatch.setenv("IOC_KAFKA_JIT", "c1")
    assert private_broker_jit(Settings()) == "c1"
