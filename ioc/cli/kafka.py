"""``ioc kafka ...``: the local broker."""

from __future__ import annotations

from typing import Annotated

import typer

from ioc.cli._common import say, settings
from ioc.local.kafka import KafkaDistribution, LocalKafka

app = typer.Typer(help="Broker Kafka cục bộ / The local Kafka broker.", no_args_is_help=True)


@app.command("fetch")
def fetch() -> None:
    """Tải các jar Kafka vào bộ nhớ đệm / Fetch the Kafka jars into the cache."""
    distribution = KafkaDistribution(settings().cache_dir)
    distribution.ensure(progress=typer.echo)
    say(
        f"Kafka {distribution.version} đã sẵn sàng tại {distribution.libs_dir}",
        f"Kafka {distribution.version} is ready in {distribution.libs_dir}",
    )


@app.command("start")
def start() -> None:
    """Khởi động broker Kafka cục bộ / Start the local Kafka broker."""
    result = LocalKafka(settings()).start(progress=typer.echo)
    if result.already_running:
        say(
            f"Broker Kafka đã chạy sẵn tại {result.bootstrap}",
            f"The Kafka broker is already running at {result.bootstrap}",
        )
    else:
        say(
            f"Broker Kafka đã sẵn sàng sau {result.seconds:.1f} s",
            f"Kafka broker ready after {result.seconds:.1f} s",
        )
    typer.echo(result.bootstrap)


@app.command("stop")
def stop() -> None:
    """Dừng broker Kafka cục bộ / Stop the local Kafka broker."""
    if LocalKafka(settings()).stop():
        say("Đã dừng broker Kafka", "The Kafka broker has stopped")
    else:
        say("Không có broker Kafka nào đang chạy", "No Kafka broker is running")


@app.command("status")
def status() -> None:
    """Trạng thái broker (mã thoát 3 nếu không chạy) / Broker status (exit 3 when stopped)."""
    state = LocalKafka(settings()).status()
    if state.running:
        say(
            f"Broker Kafka đang chạy (pid {state.pid}) tại {state.bootstrap}",
            f"The Kafka broker is running (pid {state.pid}) at {state.bootstrap}",
        )
    else:
        say("Broker Kafka không chạy", "The Kafka broker is not running")
    typer.echo(f"data: {state.data_dir}\nlog:  {state.log_file}")
    raise typer.Exit(0 if state.running else 3)


@app.command("reset")
def reset(
    yes: Annotated[bool, typer.Option("--yes", help="Không hỏi lại / Do not ask.")] = False,
) -> None:
    """Xoá dữ liệu broker cục bộ / Wipe the local broker's data."""
    kafka = LocalKafka(settings())
    if not yes:
        typer.confirm(
            f"Xoá toàn bộ dữ liệu tại {kafka.log_dirs}? / Delete all data in {kafka.log_dirs}?",
            abort=True,
        )
    kafka.reset()
    say("Đã xoá dữ liệu broker", "The broker's data was deleted")
