"""This project's worker, end to end: real ``ioc worker`` processes on the pre-loaded feeds.

Each run has its own topic prefix (its own copy of the data, its own internal topics) and a
fresh app id (its own consumer group and changelogs). The rate is taken from the worker's own
``/metrics``: events taken by the ``evaluate`` agent (``ioc_batch_events_sum``), the last
stage every valid event passes through. The clock starts when every worker answers
``/readyz`` (joined and recovered), from the count finished by then, and stops at the first
scrape that shows all of them finished (evaluated, or dropped as duplicates); scrapes are
spaced by the expected time left, at most 15 s apart as Prometheus would scrape.

Latency is exact per event: the worker posts a receipt of every evaluated event to
``ioc.internal.receipts`` (the areas of one indicator and period in one item, the items of a
source in one record per batch, sent when the batch is done), stamped by the worker's producer
as it is sent, and the benchmark stamped each event as it produced it. Both stamps come from
this machine's clock. The worker's own histogram (``ioc_processing_latency_seconds``) measures
the same interval but only to its bucket bounds; its bound for p99 is reported beside the exact
figure as a check.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from bench.child import RunnerResult
from bench.dataset import Dataset, Record
from bench.load import create_feeds, paced_load, preload, read_topic
from bench.stats import CpuSample, cpu_sample, cpu_use, peak_rss_bytes
from ioc.errors import ServiceStartError
from ioc.local.process import free_port
from ioc.local.worker import WorkerProcess, http_get
from ioc.settings import Settings
from streams.catalogue import Catalogue
from streams.reader import uncommitted
from streams.topics import Topics

#: A run fails when the counts stop moving for this long before every message is received.
STALL_SECONDS = 120.0
#: Every message received and the counts still for this long: the rest were lost.
QUIET_SECONDS = 30.0

#: After the pre-load, how long the agents behind the ingest agent (rollups, rules,
#: reporting) may take to read what it sent them, before the latency run starts anyway.
CATCH_UP_SECONDS = 300.0
#: Longest wait, once the counts are reached, for the group to commit every feed message.
COMMITTED_SECONDS = 120.0
#: Pause between two looks while waiting for them: a scrape costs the worker a few tenths of
#: a second, so looking more often would slow what it waits for.
CATCH_UP_POLL_SECONDS = 2.0

#: Between two scrapes, how often the workers' CPU is read (:meth:`WorkerRun.rest`), and the
#: main threads' cores, summed, that count as busy and as quiet.
QUIET_POLL_SECONDS = 0.25
BUSY_CORES = 0.5
QUIET_CORES = 0.1
#: The agent that validates and evaluates the feeds (its batches end the pre-load's clock).
INGEST_AGENT = "validate"

#: Longest pause between two scrapes: Prometheus' default scrape interval. A scrape renders
#: every series the worker holds (tenths of a second once it holds thousands), so the worker
#: is scraped about as often as in production; the pause shrinks as the end comes near.
MAX_POLL_SECONDS = 15.0

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@dataclass(frozen=True)
class Progress:
    """Counts of all workers together: feed messages received, events evaluated, and
    messages dropped by the validator (duplicates and rejects, which are never evaluated)."""

    received: int
    evaluated: int
    dropped: int

    @property
    def finished(self) -> int:
        """Messages that have left the pipeline: evaluated or dropped."""
        return self.evaluated + self.dropped


def scrape(url: str) -> Samples:
    """Every sample of ``<url>/metrics``, keyed by (name, labels); empty when unreachable."""
    body = http_get(f"{url}/metrics", timeout=10.0)
    if body is None:
        return {}
    return samples_of(text_string_to_metric_families(body.decode()))


def samples_of(families: Iterable[Metric]) -> Samples:
    """Every sample of metric families (parsed from a scrape, or a registry's ``collect()``),
    keyed by (name, labels)."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in families
        for sample in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of every series of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def behind_on(samples: Samples, topics: set[str]) -> int:
    """Messages a worker has still to read on ``topics`` (``ioc_consumer_lag_messages``)."""
    return int(sum(total(samples, "ioc_consumer_lag_messages", topic=t) for t in topics))


def evaluated(samples: Samples) -> int:
    """Events the evaluate stage has taken."""
    return int(total(samples, "ioc_batch_events_sum", agent="evaluate"))


def histogram_bound(samples: Samples, before: Samples, fraction: float) -> float | None:
    """The smallest latency bucket bound holding ``fraction`` of the observations made
    between two scrapes (``before`` and ``samples``), or None without observations."""
    name = "ioc_processing_latency_seconds_bucket"
    buckets: dict[float, float] = {}
    for (n, labels), value in samples.items():
        if n == name:
            bound = float(dict(labels)["le"])
            buckets[bound] = value - before.get((n, labels), 0.0)
    count = buckets.get(float("inf"), 0.0)
    if count <= 0:
        return None
    for bound in sorted(buckets):
        if buckets[bound] >= fraction * count:
            return bound
    return None


@dataclass
class WorkerRun:
    """Worker processes of one run and how to read them."""

    settings: list[Settings]
    log_dir: Path
    processes: list[WorkerProcess] = field(default_factory=list)
    #: The CPU time of each process at each moment :meth:`mark` returned.
    cpu_at: dict[float, list[CpuSample | None]] = field(default_factory=dict)

    def start(self) -> None:
        """Start every worker at once and wait until all are ready together."""
        self.processes = [
            WorkerProcess(s, self.log_dir / f"worker-{i}.log") for i, s in enumerate(self.settings)
        ]
        errors: list[BaseException] = []

        def start(process: WorkerProcess) -> None:
            try:
                process.start(timeout=180.0)
            except BaseException as exc:  # noqa: BLE001 - re-raised below, in this thread
                errors.append(exc)

        threads = [threading.Thread(target=start, args=(p,)) for p in self.processes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            self.stop()
            raise errors[0]
        deadline = time.monotonic() + 120.0
        while not all(p.ready() for p in self.processes):  # a late joiner rebalances the group
            if time.monotonic() > deadline:
                self.stop()
                raise ServiceStartError("worker không sẵn sàng / workers did not become ready")
            time.sleep(0.05)

    def mark(self) -> float:
        """Now (``perf_counter``), with each process's CPU time then kept in ``cpu_at``."""
        now = time.perf_counter()
        self.cpu_at[now] = [cpu_sample(p.pid) if p.pid else None for p in self.processes]
        return now

    def mark_nearest(self, moment: float, after: float) -> float:
        """The moment :meth:`mark` returned later than ``after`` that is nearest to
        ``moment``: a clock that stopped soon after it began still spans some time (a run
        of a few thousand events can stop nearer its first mark than any other). The caller
        has marked since ``after``."""
        return min(
            (marked for marked in self.cpu_at if marked > after),
            key=lambda marked: abs(marked - moment),
        )

    def cpu_use(self, began: float, ended: float) -> list[dict[str, float] | None]:
        """The cores each process used between two moments :meth:`mark` returned."""
        cores = os.cpu_count() or 1
        return [
            cpu_use(before, after, cores)
            for before, after in zip(self.cpu_at[began], self.cpu_at[ended], strict=True)
        ]

    def scrapes(self) -> list[Samples]:
        """One scrape of each worker."""
        return [scrape(s.worker_url) for s in self.settings]

    def catch_up(self, limit: float) -> float | None:
        """Wait until no worker has anything left to read on its internal topics (what the
        ingest agent sent the later agents); return how long that took, or None when they
        were still behind after ``limit`` seconds."""
        topics = Topics(self.settings[0].topic_prefix)
        internal = {topics.rollups, topics.rules, topics.receipts}
        began = time.perf_counter()
        while True:
            behind = sum(behind_on(samples, internal) for samples in self.scrapes())
            waited = time.perf_counter() - began
            if behind == 0:
                return waited
            if waited >= limit:
                return None
            time.sleep(CATCH_UP_POLL_SECONDS)

    def committed(self, topics: set[str], limit: float) -> tuple[float, Progress] | None:
        """Wait until the group has committed every message of ``topics`` (so processed
        them all); return when that was seen (``perf_counter``) and the progress then, or
        None if it had not after ``limit`` seconds."""
        began = time.monotonic()
        while uncommitted(self.settings[0], topics) > 0:
            if time.monotonic() - began >= limit:
                return None
            time.sleep(CATCH_UP_POLL_SECONDS)
        return self.mark(), self.progress()

    def progress(self) -> Progress:
        """What all workers together have received and finished."""
        scrapes = self.scrapes()

        def summed(name: str, **labels: str) -> int:
            return sum(int(total(samples, name, **labels)) for samples in scrapes)

        return Progress(
            received=summed("ioc_events_received_total"),
            evaluated=summed("ioc_batch_events_sum", agent="evaluate"),
            dropped=summed("ioc_events_duplicate_total") + summed("ioc_events_rejected_total"),
        )

    def wait_for(
        self, messages: int, events: int, began: float, start: Progress, limit: float | None
    ) -> tuple[float, Progress]:
        """Poll until ``messages`` are received and ``events`` evaluated, or ``limit``
        seconds after ``began`` (``perf_counter``); return when that was seen, and the
        progress then. ``start`` is the progress at ``began``, to pace the polls.

        When every message is received but the counts stop moving for :data:`QUIET_SECONDS`,
        some events were lost on the way (an agent crashed on them): return the last moment
        the counts moved. A run stuck before all messages are received is an error.
        """
        last, moved, moved_at = start, time.monotonic(), began
        while True:
            now_progress = self.progress()
            now = self.mark()
            if now_progress.received >= messages and now_progress.evaluated >= events:
                return now, now_progress
            if limit is not None and now - began >= limit:
                return now, now_progress
            if now_progress != last:
                last, moved, moved_at = now_progress, time.monotonic(), now
            elif now_progress.received >= messages and time.monotonic() - moved > QUIET_SECONDS:
                return moved_at, now_progress
            elif time.monotonic() - moved > STALL_SECONDS:
                raise ServiceStartError(
                    f"worker dừng ở {now_progress.received:,}/{messages:,} bản tin / workers "
                    f"stalled at {now_progress.received:,} of {messages:,} messages "
                    f"(logs: {self.log_dir})"
                )
            for process in self.processes:
                if not process.alive():
                    raise ServiceStartError(
                        f"worker đã thoát / a worker exited (log: {process.log_file})"
                    )
            moved_by = now_progress.received - start.received
            speed = moved_by / (now - began) if moved_by > 0 else 0.0
            left = (messages - now_progress.received) / speed if speed > 0 else 1.0
            if limit is not None:
                left = min(left, began + limit - now)
            # Most of the way at Prometheus' pace; near the end, a fifth of the time left;
            # and at once when the workers go quiet.
            self.rest(now, min(MAX_POLL_SECONDS, max(0.1, left * 0.8)))

    def rest(self, since: float, seconds: float) -> None:
        """Wait up to ``seconds`` after ``since`` (a moment :meth:`mark` returned) before the
        next scrape, marking the workers' CPU every :data:`QUIET_POLL_SECONDS`, and return
        early once their main threads, busy before, have gone quiet: done, or stalled.
        Reading ``/proc`` costs the workers nothing, a scrape does; a single long pause
        overshot the end of a pre-load by up to 15 s."""
        deadline = since + seconds
        previous = since
        busy = False
        while (now := time.perf_counter()) < deadline:
            time.sleep(min(QUIET_POLL_SECONDS, deadline - now))
            current = self.mark()
            uses = self.cpu_use(previous, current)
            previous = current
            if any(use is None for use in uses):
                return  # a worker has exited: the caller says so
            used = sum(use["main_thread"] for use in uses if use)
            if used >= BUSY_CORES:
                busy = True
            elif busy and used < QUIET_CORES:
                return

    def last_batch(self) -> float | None:
        """When the last batch of any worker's ingest agent closed (Unix time, from one more
        scrape), or None when no worker says."""
        seen = [
            total(samples, "ioc_agent_last_batch_timestamp_seconds", agent=INGEST_AGENT)
            for samples in self.scrapes()
        ]
        return max((moment for moment in seen if moment > 0), default=None)

    def peak_rss(self) -> list[int | None]:
        """Peak RSS of each worker process so far."""
        return [peak_rss_bytes(p.pid) if p.pid else None for p in self.processes]

    def stop(self) -> None:
        """Stop every worker."""
        for process in self.processes:
            process.stop()


def run_settings(base: Settings, processes: int, scratch: Path) -> list[Settings]:
    """Settings of ``processes`` workers of one fresh run (own prefix, app id and ports)."""
    run_id = uuid.uuid4().hex[:8]
    common = {"topic_prefix": f"bench{run_id}.", "app_id": f"ioc-bench-{run_id}"}
    return [
        base.model_copy(
            update=common
            | {"worker_port": free_port(), "worker_data_dir": scratch / f"{run_id}-{i}"}
        )
        for i in range(processes)
    ]


def _latencies(
    settings: Settings, live: Sequence[Record], produced_ms: Sequence[int]
) -> list[list[int]]:
    """``[produce time, receipt time - produce time]`` (ms) of each live event, matched by
    its series and period (each live event is the only one of its key)."""
    receipts: dict[str, int] = {}
    for received in read_topic(settings, Topics(settings.topic_prefix).receipts):
        if received.value is None:
            continue
        for item in orjson.loads(received.value)["items"]:
            if item.get("type") == "receipts":  # the areas of one indicator and period
                for area in item["areas"]:
                    key = f"{item['indicator']}|{area}|{item['period']}"
                    receipts.setdefault(key, received.timestamp_ms)
    out: list[list[int]] = []
    for record, produced in zip(live, produced_ms, strict=True):
        done = receipts.get(record.series_period)
        if done is not None:
            out.append([produced, done - produced])
    return out


def measure_workers(
    base: Settings,
    catalogue: Catalogue,
    dataset: Dataset,
    *,
    processes: int,
    rate: float,
    scratch: Path,
    max_seconds: float | None,
    progress: Callable[[str], None],
) -> RunnerResult:
    """Pre-load a fresh copy of the data and run ``processes`` workers through it (for at
    most ``max_seconds``), then offer the live events at ``rate`` and measure their latency.

    A run stopped by ``max_seconds`` is *partial*: its rate is what it finished in that time,
    and its latency is measured on fresh workers with nothing pre-loaded, as a backlog would
    be counted in every latency.
    """
    settings = run_settings(base, processes, scratch)
    feeds = set(create_feeds(settings[0], catalogue.sources))
    preload(settings[0], dataset.load)
    run = WorkerRun(settings, scratch / f"logs-{settings[0].app_id}")
    result = RunnerResult()
    run.start()
    try:
        began = run.mark()
        began_wall = time.time()
        start = run.progress()
        finished, end = run.wait_for(len(dataset.load), dataset.distinct, began, start, max_seconds)
        left = 0
        if end.received >= len(dataset.load) and end.evaluated >= dataset.distinct:
            # Messages read a second time after a rebalance count as received too, so the
            # counts can be reached while the last messages still wait to be read again (a
            # run counted 2,401 re-sent copies too few). The run ends when the group has
            # committed every feed message, later than the counts only if work went on.
            committed = run.committed(feeds, COMMITTED_SECONDS)
            if committed is None:
                left = uncommitted(settings[0], feeds)
            elif committed[1] != end:
                finished, end = committed
        finished, stopped_by = _clock_stop(run, began, began_wall, finished)
        result.seconds = finished - began
        result.seen = end.finished - start.finished
        result.counts = _counts(run.scrapes(), start)
        result.counts["uncommitted"] = left
        result.counts["clock_stopped_by"] = stopped_by
        partial = (
            left > 0
            or end.received < len(dataset.load)
            or (end.evaluated < dataset.distinct and not _quiet_loss(end, dataset))
        )
        result.counts["partial"] = partial
        ended = run.mark_nearest(finished, after=began)
        result.counts["cpu_per_process"] = run.cpu_use(began, ended)
        result.counts["lost"] = _lost(end, dataset) if not partial else None
        rss = run.peak_rss()
        result.counts["peak_rss_per_process"] = rss
        result.peak_rss_bytes = max((r for r in rss if r is not None), default=None)
        if dataset.live and partial:
            run.stop()
            run = WorkerRun(
                run_settings(base, processes, scratch), scratch / f"logs-{settings[0].app_id}-live"
            )
            create_feeds(run.settings[0], catalogue.sources)
            run.start()
        if dataset.live:
            if not partial:
                # The pre-load is done when the later agents have read it too: a latency run
                # started before would measure a worker still busy with the pre-load.
                result.counts["catch_up_seconds"] = run.catch_up(CATCH_UP_SECONDS)
            progress(
                f"worker ×{processes}: đo độ trễ ở {rate:g} sự kiện/s / "
                f"measuring latency at {rate:g} events/s"
            )
            result.samples, live_counts = _latency_run(run, dataset, rate, partial)
            result.counts |= live_counts
        return result
    finally:
        run.stop()


def _clock_stop(run: WorkerRun, began: float, began_wall: float, seen: float) -> tuple[float, str]:
    """When the pre-load's clock stops (``perf_counter``), and what said so: the moment the
    last batch of the ingest agent closed, which the scrape that ``seen`` the counts reached
    came after (by up to its pause, or the wait for commits); that scrape's own moment when
    no worker tells its last batch."""
    last = run.last_batch()
    stopped = None if last is None else began + (last - began_wall)
    if stopped is not None and began < stopped < seen:
        return stopped, "last batch"
    return seen, "scrape"


def _latency_run(
    run: WorkerRun, dataset: Dataset, rate: float, fresh: bool
) -> tuple[list[list[int]], dict[str, object]]:
    """Offer the live events to ``run`` at ``rate``; their latencies and what was counted."""
    before = run.scrapes()
    began = time.perf_counter()
    start = run.progress()
    paced = paced_load(run.settings[0], dataset.live, rate)
    loaded = 0 if fresh else len(dataset.load)
    distinct = 0 if fresh else dataset.distinct
    run.wait_for(loaded + len(dataset.live), distinct + len(dataset.live), began, start, None)
    after = run.scrapes()
    samples = _latencies(run.settings[0], dataset.live, paced.produced_ms)
    return samples, {
        "live_on_fresh_workers": fresh,
        "live_lost": len(dataset.live) - len(samples),
        "live_offered_rate": paced.offered_rate,
        "live_matched": len(samples),
        "histogram_p50_le": _shown(_bound(after, before, 0.50)),
        "histogram_p99_le": _shown(_bound(after, before, 0.99)),
    }


def _shown(bound: float | None) -> float | str | None:
    """A bucket bound for JSON: ``+Inf`` (past the last bound) as Prometheus writes it."""
    return "+Inf" if bound == float("inf") else bound


def _lost(end: Progress, dataset: Dataset) -> int:
    """Accepted events the evaluate stage never finished (it crashed on their batch)."""
    return max(0, dataset.distinct - end.evaluated) if end.received >= len(dataset.load) else 0


def _quiet_loss(end: Progress, dataset: Dataset) -> bool:
    return end.received >= len(dataset.load) and end.evaluated < dataset.distinct


def _bound(after: list[Samples], before: list[Samples], fraction: float) -> float | None:
    merged_after: Samples = {}
    merged_before: Samples = {}
    for samples, merged in ((after, merged_after), (before, merged_before)):
        for one in samples:
            for key, value in one.items():
                merged[key] = merged.get(key, 0.0) + value
    return histogram_bound(merged_after, merged_before, fraction)


def _counts(scrapes: list[Samples], start: Progress) -> dict[str, object]:
    def summed(name: str) -> int:
        return int(sum(total(samples, name) for samples in scrapes))

    return {
        "received": summed("ioc_events_received_total"),
        "accepted": summed("ioc_events_accepted_total"),
        "duplicates": summed("ioc_events_duplicate_total"),
        "rejected": summed("ioc_events_rejected_total"),
        "evaluated": sum(evaluated(samples) for samples in scrapes),
        "finished_before_clock": start.finished,
        "per_process_evaluated": [evaluated(samples) for samples in scrapes],
    }
