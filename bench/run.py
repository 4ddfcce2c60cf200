"""One ``ioc bench`` run: the broker, the data, each runner in turn, the report.

Every runner gets its own copy of the same pre-load (same records, same partitions) under a
topic prefix of its own, and its own consumer group: no runner reads another's data or
output, and each one's live events, offered after it has caught up, land where only it reads.
Runners run one after the other, never side by side: the machine has two cores.

With ``pairs`` above one, the peer and one worker run that many times, one pair after the
other, each run on a fresh copy of the data; the pairs alternate which of the two runs first,
so a drift over the run (the broker's log grows with every copy) does not favour either. The
machine's speed moves between runs by more than a change under study (the peer's rate moved
by 17 % over four runs of one day), and each pair's ratio is of two runs side by side.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.child import ChildRunner, RunnerArgs, RunnerResult
from bench.dataset import DEFAULT_SEED, Dataset, build_dataset
from bench.load import create_feeds, paced_load, preload
from bench.report import BenchReport, RunnerFigures, figures
from bench.worker import measure_workers
from ioc.errors import ConfigurationError, PrerequisiteMissing, ServiceStartError
from ioc.local.kafka import LocalKafka
from ioc.local.process import free_port
from ioc.settings import KafkaJit, Settings
from streams.catalogue import Catalogue, default_catalogue

Progress = Callable[[str], None]

QUIX_MISSING = (
    "Thiếu Quix Streams, thư viện đối chứng của phép đo. Cài bằng: "
    ".venv/bin/pip install -e '.[bench]' (hoặc `make install`). / "
    "Quix Streams, the peer the benchmark compares against, is not installed. Install it "
    "with: .venv/bin/pip install -e '.[bench]' (or `make install`)."
)


def _quiet(_: str) -> None:
    return None


@dataclass(frozen=True)
class BenchOptions:
    """What to measure."""

    events: int = 1_000_000
    rate: float = 2000.0
    latency_seconds: float = 20.0
    workers: int = 1
    duplicate_rate: float = 0.01
    seed: int = DEFAULT_SEED
    max_seconds: float | None = 900.0
    pairs: int = 1

    @property
    def live_events(self) -> int:
        """Events offered at ``rate`` for ``latency_seconds``."""
        return round(self.rate * self.latency_seconds)


def require_quix() -> None:
    """Raise :class:`PrerequisiteMissing` (saying how to install it) without Quix Streams."""
    if importlib.util.find_spec("quixstreams") is None:
        raise PrerequisiteMissing(QUIX_MISSING)


def _check(settings: Settings, options: BenchOptions) -> None:
    if settings.kafka_security_protocol != "PLAINTEXT":
        raise ConfigurationError(
            "ioc bench chỉ chạy trên broker không bảo mật (PLAINTEXT); bỏ "
            "IOC_KAFKA_SECURITY_PROTOCOL hoặc dùng broker riêng của phép đo / "
            "ioc bench runs on an unsecured (PLAINTEXT) broker only; unset "
            "IOC_KAFKA_SECURITY_PROTOCOL or let it start a broker of its own"
        )
    if not 1 <= options.workers <= settings.partitions:
        raise ConfigurationError(
            f"--workers phải từ 1 đến {settings.partitions} (số phân vùng) / "
            f"--workers must be within 1..{settings.partitions} (the partitions)"
        )
    if options.pairs < 1:
        raise ConfigurationError("--pairs phải từ 1 trở lên / --pairs must be 1 or more")
    if options.rate <= 0 or options.latency_seconds < 0:
        raise ConfigurationError(
            "--rate phải dương và --latency-seconds không âm / "
            "--rate must be positive and --latency-seconds not negative"
        )


def private_broker_jit(settings: Settings) -> KafkaJit:
    """The JIT of the benchmark's private broker: ``IOC_KAFKA_JIT`` when set, else the JVM's
    default (see :func:`broker`)."""
    return settings.kafka_jit if "kafka_jit" in settings.model_fields_set else "tiered"


@contextmanager
def broker(settings: Settings, scratch: Path, progress: Progress) -> Iterator[Settings]:
    """``settings`` bound to a broker: ``IOC_KAFKA_BOOTSTRAP``'s, else a private one.

    The private broker runs the JVM's default compilers (C1, then C2) unless
    ``IOC_KAFKA_JIT`` says otherwise: the runners' rates depend on the broker's compiled code
    (with C1 alone the raw ceiling was 15 % lower), and a production broker has long finished
    compiling. The local broker of the tests and the demo runs C1 alone (``Settings.kafka_jit``).
    """
    if settings.kafka_bootstrap:
        yield settings
        return
    private = settings.model_copy(
        update={
            "kafka_port": free_port(),
            "kafka_controller_port": free_port(),
            "kafka_data_dir": scratch / "kafka",
            "kafka_jit": private_broker_jit(settings),
        }
    )
    kafka = LocalKafka(private)
    progress("Đang khởi động broker Kafka riêng ... / Starting a private Kafka broker ...")
    started = kafka.start(progress=progress)
    try:
        yield private.model_copy(update={"kafka_bootstrap": started.bootstrap})
    finally:
        kafka.stop()


def _fresh(settings: Settings, name: str) -> Settings:
    return settings.model_copy(update={"topic_prefix": f"bench{uuid.uuid4().hex[:8]}.{name}."})


def measure_child(
    module: str,
    settings: Settings,
    catalogue: Catalogue,
    dataset: Dataset,
    options: BenchOptions,
    scratch: Path,
) -> RunnerResult:
    """Pre-load a fresh copy of the data and run ``python -m <module>`` through it and the
    live load."""
    name = module.rsplit(".", 1)[-1]
    own = _fresh(settings, name)
    create_feeds(own, catalogue.sources)
    loaded = preload(own, dataset.load)
    args = RunnerArgs(
        bootstrap=own.bootstrap_servers,
        prefix=own.topic_prefix,
        group=f"{own.topic_prefix}{name}",
        expect=len(dataset.load),
        live=len(dataset.live),
        result=scratch / f"{name}.json",
    )
    child = ChildRunner(module, args, scratch / f"{name}.log")
    try:
        child.wait_ready(timeout=300.0 + len(dataset.load) / 500)
        if dataset.live:
            paced_load(own, dataset.live, options.rate)
        result = child.result(timeout=args.timeout + 60.0)
    finally:
        child.stop()
    if result.error:
        raise ServiceStartError(f"{module}: {result.error} (log: {child.log_file})")
    result.counts["preload_seconds"] = loaded
    return result


def _round(round_: int, options: BenchOptions) -> str:
    return f" (cặp / pair {round_}/{options.pairs})" if options.pairs > 1 else ""


def run_bench(
    settings: Settings, options: BenchOptions, progress: Progress = _quiet
) -> BenchReport:
    """Measure every runner on the same data; return the report."""
    require_quix()
    _check(settings, options)
    catalogue = default_catalogue()
    base = settings.model_copy(update={"clock_start": None, "clock_epoch": None})
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="ioc-bench-") as tmp:
        scratch = Path(tmp)
        with broker(base, scratch, progress) as bound:
            progress(
                f"Đang tạo {options.events:,} sự kiện ... / "
                f"Generating {options.events:,} events ..."
            )
            dataset = build_dataset(
                catalogue,
                options.events,
                live=options.live_events,
                duplicate_rate=options.duplicate_rate,
                seed=options.seed,
                progress=progress,
            )
            runners: list[RunnerFigures] = []

            def child(name: str, round_: int = 1) -> None:
                progress(f"Đang đo / Measuring {name}{_round(round_, options)} ...")
                result = measure_child(f"bench.{name}", bound, catalogue, dataset, options, scratch)
                runners.append(figures(name, 1, len(dataset.load), result, round_))

            def workers(processes: int, round_: int = 1) -> None:
                progress(f"Đang đo / Measuring worker ×{processes}{_round(round_, options)} ...")
                result = measure_workers(
                    bound,
                    catalogue,
                    dataset,
                    processes=processes,
                    rate=options.rate,
                    scratch=scratch,
                    max_seconds=options.max_seconds,
                    progress=progress,
                )
                runners.append(figures("worker", processes, len(dataset.load), result, round_))

            child("raw")
            for round_ in range(1, options.pairs + 1):
                if round_ % 2:
                    child("peer", round_)
                    workers(1, round_)
                else:
                    workers(1, round_)
                    child("peer", round_)
            for processes in range(2, options.workers + 1):
                workers(processes)
    return BenchReport(
        events=dataset.distinct,
        duplicates=dataset.duplicates,
        sources=len(dataset.sources),
        partitions=settings.partitions,
        live_events=len(dataset.live),
        offered_rate=options.rate,
        preload_seconds=runners[0].counts["preload_seconds"],
        runners=runners,
        machine={
            "cores": os.cpu_count(),
            "load_before": round(load_before, 2),
            "load_after": round(os.getloadavg()[0], 2),
        },
    )
