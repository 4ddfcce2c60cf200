"""``ioc push`` and ``ioc rejects``: what an agency uses to send figures and see refusals."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from ioc.cli._common import say, settings
from ioc.errors import ConfigurationError, EventError
from streams.catalogue import default_catalogue
from streams.deadletter import DeadLetter
from streams.events import IndicatorEvent
from streams.producer import IndicatorProducer
from streams.reader import read_topic
from streams.submission import Submission, check_events, prepare_report
from streams.topics import Topics
from streams.validation import rejection_from_validation_error

EXIT_PARTIAL = 7


def _single_event(
    source: str | None,
    indicator: str | None,
    area: str,
    period: str | None,
    value: float | None,
    numerator: float | None,
    denominator: float | None,
) -> IndicatorEvent:
    missing = [
        f"--{name}"
        for name, given in (
            ("source", source),
            ("indicator", indicator),
            ("period", period),
            ("value", value),
        )
        if given is None
    ]
    if missing:
        raise ConfigurationError(
            f"Thiếu {', '.join(missing)} (hoặc dùng --file) / "
            f"Missing {', '.join(missing)} (or use --file)"
        )
    try:
        return IndicatorEvent.new(
            source=source or "",
            indicator=indicator or "",
            area=area,
            period=period or "",
            value=value if value is not None else 0.0,
            numerator=numerator,
            denominator=denominator,
        )
    except ValidationError as exc:
        rejection = rejection_from_validation_error(exc)
        raise EventError(rejection.reason, rejection.message) from None


def _report_errors(submission: Submission) -> None:
    for error in submission.errors:
        typer.echo(f"  {error}", err=True)


def push(
    source: Annotated[
        str | None, typer.Option(help="Mã nguồn / Source code, e.g. ict (or a file column)")
    ] = None,
    indicator: Annotated[str | None, typer.Option(help="Mã chỉ tiêu / Indicator code")] = None,
    period: Annotated[
        str | None, typer.Option(help="Kỳ / Period: 2024, 2024-Q3, 2024-09, 2024-W37, 2024-09-15")
    ] = None,
    value: Annotated[float | None, typer.Option(help="Giá trị / Value")] = None,
    area: Annotated[str, typer.Option(help="Mã địa bàn / Area code")] = "son-la",
    numerator: Annotated[float | None, typer.Option(help="Tử số / Numerator")] = None,
    denominator: Annotated[float | None, typer.Option(help="Mẫu số / Denominator")] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file", exists=True, dir_okay=False, help="Báo cáo .csv/.xlsx / A .csv/.xlsx report"
        ),
    ] = None,
    skip_invalid: Annotated[
        bool,
        typer.Option(help="Gửi các dòng hợp lệ, bỏ dòng lỗi / Send valid rows, skip bad ones"),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option(help="Chỉ kiểm tra, không gửi / Check only, send nothing")
    ] = False,
) -> None:
    """Gửi số liệu, chờ broker xác nhận / Send figures and wait for the broker's acknowledgement.

    One value with --source/--indicator/--period/--value, or a whole report with --file.
    Every row is checked against the catalogue first; nothing is sent while a row is bad,
    unless --skip-invalid is given.
    """
    catalogue = default_catalogue()
    if file is not None:
        submission = prepare_report(file, catalogue, source=source)
    else:
        event = _single_event(source, indicator, area, period, value, numerator, denominator)
        submission = check_events([(1, event)], catalogue)
        if submission.errors:
            error = submission.errors[0]
            raise EventError(error.reason, f"{error.message_vi} / {error.message_en}")
    if submission.errors:
        say(
            f"{len(submission.errors)}/{submission.row_count} dòng lỗi:",
            f"{len(submission.errors)}/{submission.row_count} rows are invalid:",
            err=True,
        )
        _report_errors(submission)
        if not skip_invalid:
            raise EventError(
                "invalid_rows",
                "Không gửi dòng nào; sửa các dòng trên hoặc dùng --skip-invalid / "
                "Nothing was sent; fix the rows above or use --skip-invalid",
            )
    if dry_run:
        say(
            f"Kiểm tra xong: {len(submission.events)} dòng hợp lệ, không gửi (--dry-run)",
            f"Checked: {len(submission.events)} valid rows, nothing sent (--dry-run)",
        )
        raise typer.Exit(EXIT_PARTIAL if submission.errors else 0)
    with IndicatorProducer(settings()) as producer:
        deliveries = producer.send_many([event for _, event in submission.events])
    if file is None:
        delivery = deliveries[0]
        say(
            f"Đã gửi, broker đã xác nhận: topic={delivery.topic} partition={delivery.partition} "
            f"offset={delivery.offset}",
            f"Sent and acknowledged: event_id={delivery.event_id}",
        )
        return
    for (row, _), delivery in zip(submission.events, deliveries, strict=True):
        typer.echo(
            f"  dòng / row {row}: topic={delivery.topic} partition={delivery.partition} "
            f"offset={delivery.offset}"
        )
    say(
        f"Đã gửi {len(deliveries)} dòng, broker đã xác nhận tất cả",
        f"Sent {len(deliveries)} rows, every one acknowledged by the broker",
    )
    if submission.errors:
        raise typer.Exit(EXIT_PARTIAL)


def rejects(
    source: Annotated[str, typer.Option(help="Mã nguồn / Source code")],
    limit: Annotated[int, typer.Option(help="Số bản ghi mới nhất / Newest records")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines")] = False,
) -> None:
    """Các bản tin bị từ chối của một nguồn / What was rejected for a source, and why."""
    config = settings()
    letters: list[DeadLetter] = []
    unreadable = 0
    for raw in read_topic(config, Topics(config.topic_prefix).deadletter):
        try:
            letter = DeadLetter.model_validate_json(raw)
        except ValidationError:
            unreadable += 1  # not written by the worker; reported below, never hidden
            continue
        if letter.source == source:
            letters.append(letter)
    if unreadable:
        say(
            f"Cảnh báo: {unreadable} bản ghi không đọc được trong topic dead-letter",
            f"Warning: {unreadable} unreadable records in the dead-letter topic",
            err=True,
        )
    letters.sort(key=lambda letter: letter.received_at)
    shown = letters[-limit:]
    if as_json:
        for letter in shown:
            typer.echo(letter.model_dump_json())
        return
    say(
        f"{len(letters)} bản tin bị từ chối của '{source}' (hiển thị {len(shown)})",
        f"{len(letters)} rejected messages for '{source}' (showing {len(shown)})",
    )
    for letter in shown:
        when = letter.received_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        original = letter.original[:120].decode("utf-8", errors="replace")
        typer.echo(
            f"- {when} [{letter.reason}] {letter.topic}/{letter.partition}@{letter.offset}\n"
            f"    {letter.message_vi}\n    {letter.message_en}\n    {original!r}"
        )
