"""``ioc topics create``, ``ioc worker`` and ``ioc demo``."""

from __future__ import annotations

from typing import Annotated

import typer

from ioc.cli._common import say, settings

topics_app = typer.Typer(help="Các topic Kafka / Kafka topics.", no_args_is_help=True)


@topics_app.command("create")
def create_topics() -> None:
    """Tạo các topic còn thiếu / Create the missing topics."""
    from streams.catalogue import default_catalogue  # noqa: PLC0415 - keep the CLI quick
    from streams.topics import Topics, ensure_topics  # noqa: PLC0415

    config = settings()
    names = Topics(config.topic_prefix).all(sorted(default_catalogue().sources))
    created = ensure_topics(config, names)
    say(
        f"Đã tạo {len(created)} topic, {len(names) - len(created)} đã có sẵn",
        f"Created {len(created)} topics, {len(names) - len(created)} existed already",
    )
    for name in created:
        typer.echo(f"  + {name}")


def worker() -> None:
    """Chạy worker Faust (kiểm tra, tổng hợp, /metrics) / Run the Faust worker."""
    from agents.worker import run_worker  # noqa: PLC0415 - Faust is slow to import

    run_worker(settings())


def demo(
    duration: Annotated[
        float | None,
        typer.Option(help="Dừng sau N giây / Stop after N seconds (default: until Ctrl-C)"),
    ] = None,
    speed: Annotated[
        float,
        typer.Option(help="Tốc độ đồng hồ mô phỏng / Simulated seconds per real second"),
    ] = 720.0,
    install: Annotated[
        bool,
        typer.Option(
            help="Cài Prometheus/Alertmanager nếu thiếu (apt-get, quyền root) / "
            "Install Prometheus/Alertmanager when missing (apt-get, as root)"
        ),
    ] = True,
) -> None:
    """Chạy toàn bộ hệ thống cục bộ / Run the whole monitor locally, until Ctrl-C."""
    from ioc.demo import run_demo  # noqa: PLC0415

    run_demo(settings(), duration=duration, speed=speed, install=install)
