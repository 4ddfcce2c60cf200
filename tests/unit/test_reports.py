"""Bulk reports (CSV/XLSX): headers in either language, every bad row named by its number."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import openpyxl
import pytest

from ioc.errors import EventError
from streams.catalogue import default_catalogue
from streams.reports import parse_report
from streams.submission import prepare_report

ROWS = [
    ["ict", "online_application_rate", "son-la", "2023", "69,46"],
    ["ict", "dvc_online_total", "son-la", "2024-Q3", "1,886"],
    ["ict", "dvc_online_partial", "son-la", "2024-Q3", "312"],
]


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    lines = [",".join(header)] + [",".join(f'"{c}"' for c in row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8-sig")
    return path


def test_vietnamese_headers_and_number_formats(tmp_path: Path) -> None:
    report = write_csv(
        tmp_path / "bao-cao.csv", ["Nguồn", "Chỉ tiêu", "Địa bàn", "Kỳ báo cáo", "Giá trị"], ROWS
    )

    parsed = parse_report(report)

    assert parsed.errors == []
    assert [(row, e.indicator, e.value) for row, e in parsed.events] == [
        (2, "online_application_rate", 69.46),
        (3, "dvc_online_total", 1886.0),
        (4, "dvc_online_partial", 312.0),
    ]


def test_same_row_gets_the_same_event_id_so_a_resend_is_a_duplicate(tmp_path: Path) -> None:
    header = ["source", "indicator", "area", "period", "value"]
    first = parse_report(write_csv(tmp_path / "a.csv", header, ROWS))
    again = parse_report(write_csv(tmp_path / "b.csv", header, ROWS))
    changed = parse_report(write_csv(tmp_path / "c.csv", header, [[*ROWS[0][:4], "70"]]))

    assert [e.event_id for _, e in first.events] == [e.event_id for _, e in again.events]
    assert changed.events[0][1].event_id != first.events[0][1].event_id


def test_xlsx_with_source_option(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["Mã chỉ tiêu", "Mã địa bàn", "Kỳ", "Giá trị", "Thời điểm"])
    sheet.append(["eid_activated", "son-la", "2024-Q3", 539304, datetime(2024, 9, 30, 17, 0)])
    path = tmp_path / "cong-an.xlsx"
    workbook.save(path)

    parsed = parse_report(path, source="police")

    assert parsed.errors == []
    ((row, ev),) = parsed.events
    assert (row, ev.source, ev.value) == (2, "police", 539304.0)
    assert ev.observed_at == datetime(2024, 9, 30, 17, 0, tzinfo=UTC)


def test_every_bad_row_is_reported_with_its_number(tmp_path: Path) -> None:
    rows = [
        ROWS[0],
        ["ict", "online_application_rate", "son-la", "2023", "sáu mươi"],
        ["ict", "online_application_rate", "son-la", "2023-13", "1"],
        ["ict", "dvc_online_total", "son-la", "2024-Q3", "1886"],
        ["tax", "online_application_rate", "son-la", "2023", "50"],
        ["ict", "online_application_rate", "son-la", "2023", "120"],
    ]
    report = write_csv(tmp_path / "r.csv", ["source", "indicator", "area", "period", "value"], rows)

    submission = prepare_report(report, default_catalogue())

    assert [row for row, _ in submission.events] == [2, 5]
    assert [(e.row, e.reason) for e in submission.errors] == [
        (3, "invalid_field"),
        (4, "wrong_period"),
        (6, "not_owner"),
        (7, "out_of_range"),
    ]
    assert "row 3" in str(submission.errors[0])
    assert "'value'" in str(submission.errors[0])


def test_source_column_must_agree_with_the_option(tmp_path: Path) -> None:
    report = write_csv(tmp_path / "r.csv", ["source", "indicator", "area", "period", "value"], ROWS)

    parsed = parse_report(report, source="tax")

    assert [e.reason for e in parsed.errors] == ["source_mismatch"] * 3


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("r.csv", b"", "empty_file"),
        ("r.csv", b"indicator,area,period\n", "missing_column"),
        ("r.csv", b"source,indicator,area,period,value,colour\n", "unknown_column"),
        ("r.csv", b"source,source,indicator,area,period,value\n", "duplicate_column"),
        ("r.csv", "nguồn,chỉ tiêu\n".encode("utf-16"), "not_utf8"),
        ("r.pdf", b"%PDF", "unsupported_file"),
    ],
)
def test_unusable_files_say_why(tmp_path: Path, name: str, content: bytes, reason: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)

    with pytest.raises(EventError) as caught:
        parse_report(path)

    assert caught.value.reason == reason
