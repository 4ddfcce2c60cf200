"""``ioc bench``: the worker against a raw consumer and a Quix Streams peer, on a real broker."""

from __future__ import annotations

from typing import Annotated

import orjson
import typer

from ioc.cli._common import settings


def bench(
    events: Annotated[
        int,
        typer.Option(
            help="Số sự kiện nạp trước, mỗi sự kiện một khoá riêng / Events pre-loaded, each "
            "with a key of its own",
        ),
    ] = 1_000_000,
    rate: Annotated[
        float,
        typer.Option(help="Tải đo độ trễ, sự kiện/s / Offered load of the latency run, events/s"),
    ] = 2000.0,
    latency_seconds: Annotated[
        float,
        typer.Option(help="Thời gian đo độ trễ, giây / Length of the latency run, seconds"),
    ] = 20.0,
    workers: Annotated[
        int,
        typer.Option(
            help="Đo thêm với tối đa N worker (2: mở rộng trên 2 phân vùng) / Also measure up "
            "to N worker processes (2: scale-out on 2 partitions)",
        ),
    ] = 1,
    duplicates: Annotated[
        float,
        typer.Option(
            help="Tỷ lệ sự kiện gửi lại lần hai (phải bị loại trùng) / Share of the events sent "
            "a second time (to be dropped as duplicates)",
        ),
    ] = 0.01,
    max_seconds: Annotated[
        float,
        typer.Option(
            help="Giới hạn thời gian mỗi lần đo worker trên dữ liệu nạp trước; quá thì dừng và "
            "tính trên phần đã xử lý (0: không giới hạn) / Time limit of each worker run on the "
            "pre-load; past it the run stops and counts what it finished (0: no limit)",
        ),
    ] = 900.0,
    pairs: Annotated[
        int,
        typer.Option(
            help="Số lần đo cặp đối chứng và một worker, xen kẽ; tỷ lệ là trung vị của các cặp "
            "/ Times to measure the peer and one worker, in alternating pairs; the ratio is the "
            "median of the pairs'",
        ),
    ] = 1,
    as_json: Annotated[
        bool, typer.Option("--json", help="In kết quả dạng JSON / Print the result as JSON")
    ] = False,
) -> None:
    """Đo hiệu năng worker so với Quix Streams và trần aiokafka / Benchmark the worker
    against Quix Streams and a raw aiokafka ceiling."""
    from bench.report import render_table  # noqa: PLC0415 - the benchmark is heavy to import
    from bench.run import BenchOptions, run_bench  # noqa: PLC0415

    def progress(line: str) -> None:
        typer.echo(line, err=True)

    options = BenchOptions(
        events=events,
        rate=rate,
        latency_seconds=latency_seconds,
        workers=workers,
        duplicate_rate=duplicates,
        max_seconds=max_seconds or None,
        pairs=pairs,
    )
    report = run_bench(settings(), options, progress)
    if as_json:
        typer.echo(orjson.dumps(report.to_json(), option=orjson.OPT_INDENT_2).decode())
    else:
        typer.echo(render_table(report))


def bench_agents(
    events: Annotated[
        int,
        typer.Option(
            help="Số sự kiện, mỗi sự kiện một khoá riêng / Events, each with a key of its own"
        ),
    ] = 100_000,
    rounds: Annotated[
        int,
        typer.Option(min=1, help="Số lần chạy, mỗi lần bảng trống / Rounds, each on empty tables"),
    ] = 1,
    pairs: Annotated[
        int,
        typer.Option(
            help="Số lần đo cặp đối chứng và một worker, xen kẽ; tỷ lệ là trung vị của các cặp "
            "/ Times to measure the peer and one worker, in alternating pairs; the ratio is the "
            "median of the pairs'",
        ),
    ] = 1,
    as_json: Annotated[
        bool, typer.Option("--json", help="In kết quả dạng JSON / Print the result as JSON")
    ] = False,
) -> None:
    """Đo riêng mã của các agent, không Kafka / Benchmark the agents' own code alone, in
    process, without Kafka (see bench/agents.py)."""
    from bench.agents import measure_agents  # noqa: PLC0415 - the benchmark is heavy to import
    from bench.dataset import build_dataset  # noqa: PLC0415
    from streams.catalogue import default_catalogue  # noqa: PLC0415

    catalogue = default_catalogue()
    dataset = build_dataset(catalogue, events, progress=lambda line: typer.echo(line, err=True))
    for number, result in enumerate(measure_agents(settings(), catalogue, dataset, rounds), 1):
        if as_json:
            typer.echo(orjson.dumps({"round": number, **result.to_json()}).decode())
            continue
        stages = "  ".join(
            f"{stage} {1e6 * seconds / result.events:.1f}"
            for stage, seconds in result.seconds.items()
        )
        typer.echo(
            f"Lần {number} / round {number}: {result.events_per_second:,.0f} sự kiện/s / "
            f"events/s; µs mỗi sự kiện / per event: {stages}; "
            f"chấp nhận / accepted {result.counts['accepted']:,}, "
            f"trùng lặp / duplicates {result.counts['duplicates']:,}"
        )
