"""``ioc simulate``: realistic traffic from every source, on the (shared) simulated clock."""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from types import FrameType
from typing import Annotated

import orjson
import typer

from ioc.cli._common import say, settings
from ioc.clock import Clock, ScaledClock, clock_from_settings
from ioc.errors import ConfigurationError
from ioc.settings import Settings
from streams.catalogue import default_catalogue
from streams.events import IndicatorEvent
from streams.periods import LOCAL_TZ
from streams.producer import IndicatorProducer
from streams.simulator import (
    Emission,
    FaultPreset,
    Faults,
    PacerStats,
    StopReason,
    describe,
    generate_events,
    run,
)
from streams.topics import Topics, ensure_topics

#: How far ahead the generator is asked for emissions when nothing else bounds the run.
_HORIZON = timedelta(days=3653)
#: Periods end in 2100 at the latest (streams.periods.MAX_YEAR).
_LAST_MOMENT = datetime(2099, 12, 31, tzinfo=LOCAL_TZ)

_STOPPED_BY: dict[StopReason, tuple[str, str]] = {
    "exhausted": ("hết bản tin trong khoảng mô phỏng", "no emissions left in the window"),
    "max_events": ("đã gửi đủ --max-events", "--max-events reached"),
    "duration": ("hết thời gian --duration", "--duration elapsed"),
    "stopped": ("dừng theo yêu cầu", "stopped on request"),
    "interrupted": ("dừng theo yêu cầu (Ctrl-C)", "stopped on request (Ctrl-C)"),
}


class _DryRunSender:
    """Sends nothing: ``--dry-run`` prints each emission instead."""

    def send_many(self, events: Iterable[IndicatorEvent]) -> Sequence[object]:
        """Accept the events and do nothing."""
        return list(events)

    def send_raw(self, topic: str, value: bytes, key: bytes | None = None) -> object:
        """Accept the bytes and do nothing."""
        return None


def _json_line(emission: Emission, topics: Topics) -> str:
    """One emission as a JSON line: when, where, which fault, and the message."""
    line: dict[str, object] = {
        "at": emission.at.isoformat(),
        "topic": topics.feed(emission.topic_source),
        "fault": emission.fault,
    }
    if emission.raw is None:
        line["event"] = orjson.loads(emission.payload)
    else:
        line["raw"] = emission.raw.decode("utf-8", errors="backslashreplace")
    return orjson.dumps(line).decode()


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT and SIGTERM set ``stop``: the pacer finishes the batch it is sending, then ends."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _clock(config: Settings, speed: float | None, start: datetime | None) -> Clock:
    """The shared clock when IOC_CLOCK_START is set, else a scaled clock of our own."""
    if config.clock_start is not None:
        if speed is not None or start is not None:
            say(
                "Bỏ qua --speed/--start: dùng đồng hồ chung IOC_CLOCK_START/IOC_CLOCK_SPEED",
                "Ignoring --speed/--start: using the shared clock IOC_CLOCK_START/IOC_CLOCK_SPEED",
                err=True,
            )
        return clock_from_settings(config)
    if speed is not None and speed <= 0:
        raise ConfigurationError(
            f"--speed phải lớn hơn 0, nhận được {speed:g} / "
            f"--speed must be above 0, received {speed:g}"
        )
    if start is None:
        start = datetime.now(LOCAL_TZ)
    elif start.utcoffset() is None:
        start = start.replace(tzinfo=LOCAL_TZ)  # a time without offset is province time
    clock = ScaledClock(start, time.time(), 1.0 if speed is None else speed)
    if clock.speed != 1.0 or start > datetime.now(LOCAL_TZ):
        say(
            "Lưu ý: worker chạy theo giờ thực sẽ từ chối số liệu 'ở tương lai' của đồng hồ mô "
            "phỏng này; đặt IOC_CLOCK_START, IOC_CLOCK_EPOCH, IOC_CLOCK_SPEED chung cho cả hai",
            "Note: a worker on real time rejects this clock's reports as from the future; set "
            "IOC_CLOCK_START, IOC_CLOCK_EPOCH and IOC_CLOCK_SPEED for both",
            err=True,
        )
    return clock


def _faults(
    preset: FaultPreset,
    silent: list[str] | None,
    rates: dict[str, float | None],
) -> Faults:
    base = Faults.preset(preset)
    changes: dict[str, object] = {name: rate for name, rate in rates.items() if rate is not None}
    if silent:
        changes["silent"] = base.silent | frozenset(silent)
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def simulate(
    speed: Annotated[
        float | None,
        typer.Option(
            help="Giây mô phỏng mỗi giây thực (mặc định 1) / Simulated seconds per real second "
            "(default 1); ignored when IOC_CLOCK_START is set",
        ),
    ] = None,
    start: Annotated[
        datetime | None,
        typer.Option(
            formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"],
            help="Thời điểm mô phỏng bắt đầu, giờ Sơn La (mặc định: bây giờ) / Simulated start, "
            "province time (default: now)",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Hạt giống ngẫu nhiên / Random seed")] = 0,
    duration: Annotated[
        float | None,
        typer.Option(min=0.0, help="Dừng sau N giây thực / Stop after N real seconds"),
    ] = None,
    max_events: Annotated[
        int | None, typer.Option(min=0, help="Dừng sau N bản tin / Stop after N messages")
    ] = None,
    backfill: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="Gửi ngay báo cáo của N ngày mô phỏng vừa qua / First send, at once, the "
            "reports of the last N simulated days",
        ),
    ] = 0.0,
    source: Annotated[
        list[str] | None,
        typer.Option(help="Chỉ các nguồn này (lặp lại được) / Only these sources (repeatable)"),
    ] = None,
    faults: Annotated[
        FaultPreset,
        typer.Option(help="Bộ lỗi cài sẵn / Fault preset: none, demo (a few of each)"),
    ] = "none",
    anomaly_rate: Annotated[
        float | None, typer.Option(help="Tỷ lệ giá trị bất thường / Share of outlier values")
    ] = None,
    late_rate: Annotated[
        float | None, typer.Option(help="Tỷ lệ báo cáo trễ hạn / Share of late reports")
    ] = None,
    malformed_rate: Annotated[
        float | None,
        typer.Option(help="Tỷ lệ bản tin sai định dạng / Share of malformed payloads"),
    ] = None,
    duplicate_rate: Annotated[
        float | None, typer.Option(help="Tỷ lệ gửi trùng / Share of reports sent twice")
    ] = None,
    correction_rate: Annotated[
        float | None, typer.Option(help="Tỷ lệ đính chính / Share of reports corrected later")
    ] = None,
    spoof_rate: Annotated[
        float | None,
        typer.Option(help="Tỷ lệ giả mạo nguồn khác / Share of reports followed by a spoof"),
    ] = None,
    silent: Annotated[
        list[str] | None,
        typer.Option(help="Nguồn im lặng (lặp lại được) / Silent source (repeatable)"),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(help="In dòng JSON, không gửi / Print JSON lines, send nothing"),
    ] = False,
    report_every: Annotated[
        float,
        typer.Option(min=0.1, help="In tóm tắt mỗi N giây / Print a summary every N seconds"),
    ] = 10.0,
    batch_size: Annotated[
        int, typer.Option(min=1, help="Số bản tin tối đa mỗi lô / Most messages per batch")
    ] = 500,
) -> None:
    """Mô phỏng dữ liệu của 41 nguồn / Simulate realistic traffic from the 41 sources.

    Each source reports its indicators at their own cadence, around their deadlines, with
    values grounded in the catalogue's seed figures. Fault switches inject outliers, late,
    malformed, duplicate, corrected and spoofed reports, and silent sources. Stops on
    --duration, --max-events or Ctrl-C.
    """
    config = settings()
    fault_config = _faults(
        faults,
        silent,
        {
            "anomaly": anomaly_rate,
            "late": late_rate,
            "malformed": malformed_rate,
            "duplicate": duplicate_rate,
            "correction": correction_rate,
            "spoof": spoof_rate,
        },
    )
    clock = _clock(config, speed, start)
    catalogue = default_catalogue()
    now = clock.now()
    emissions = generate_events(
        catalogue,
        seed=seed,
        start=now - timedelta(days=backfill),
        until=min(now + _HORIZON, _LAST_MOMENT),
        faults=fault_config,
        sources=source,
    )
    topics = Topics(config.topic_prefix)
    say(
        f"Mô phỏng từ {now.isoformat(timespec='seconds')}"
        + (f", gửi bù {backfill:g} ngày" if backfill else ""),
        f"Simulating from {now.isoformat(timespec='seconds')}"
        + (f", backfilling {backfill:g} days" if backfill else ""),
        err=dry_run,
    )

    def progress(stats: PacerStats) -> None:
        say(*describe(stats), err=dry_run)

    stop = threading.Event()
    with _stop_on_signals(stop):
        if dry_run:
            stats = run(
                emissions,
                _DryRunSender(),
                clock,
                topics=topics,
                max_events=max_events,
                duration=duration,
                max_batch=batch_size,
                stop=stop,
                on_progress=progress,
                progress_every=report_every,
                on_sent=lambda emission: typer.echo(_json_line(emission, topics)),
            )
        else:
            ensure_topics(config, topics.all(sorted(catalogue.sources)))
            with IndicatorProducer(config, client_id="ioc-simulator") as producer:
                stats = run(
                    emissions,
                    producer,
                    clock,
                    topics=topics,
                    max_events=max_events,
                    duration=duration,
                    max_batch=batch_size,
                    stop=stop,
                    on_progress=progress,
                    progress_every=report_every,
                )
    progress(stats)
    vi, en = _STOPPED_BY[stats.stopped_by or "exhausted"]
    say(f"Đã dừng: {vi}", f"Stopped: {en}", err=dry_run)
