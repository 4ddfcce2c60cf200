"""Bulk reports from agencies: CSV or XLSX files, one indicator value per row.

Columns (English or Vietnamese headers, any order, case and diacritics ignored):

=============  ==========================================  =========================
column         Vietnamese headers accepted                 required
=============  ==========================================  =========================
source         nguồn, mã nguồn, đơn vị                     unless ``--source`` given
indicator      chỉ tiêu, mã chỉ tiêu                       yes
area           địa bàn, mã địa bàn                         yes
period         kỳ, kỳ báo cáo                              yes
value          giá trị                                     yes
numerator      tử số                                       no
denominator    mẫu số                                      no
observed_at    thời điểm, ngày số liệu                     no (default: now)
event_id       mã sự kiện                                  no (see below)
=============  ==========================================  =========================

Without an ``event_id`` column, each row gets a deterministic id derived from its source,
indicator, area, period and value: sending the same file twice is then deduplicated by the
worker instead of counted twice, while a changed value is a new event (a correction).
"""

from __future__ import annotations

import csv
import io
import unicodedata
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from ioc.errors import EventError
from streams.events import IndicatorEvent
from streams.validation import rejection_from_validation_error

#: Namespace of the deterministic event ids of report rows.
REPORT_NAMESPACE = uuid.UUID("6f1f5a52-3c1e-4d0e-9a47-1c0de0105ea1")

COLUMNS: Mapping[str, tuple[str, ...]] = {
    "source": ("source", "nguon", "ma nguon", "don vi"),
    "indicator": ("indicator", "chi tieu", "ma chi tieu"),
    "area": ("area", "dia ban", "ma dia ban"),
    "period": ("period", "ky", "ky bao cao"),
    "value": ("value", "gia tri"),
    "numerator": ("numerator", "tu so"),
    "denominator": ("denominator", "mau so"),
    "observed_at": ("observed_at", "observed at", "thoi diem", "ngay so lieu"),
    "event_id": ("event_id", "event id", "ma su kien"),
}
REQUIRED = ("indicator", "area", "period", "value")


@dataclass(frozen=True)
class RowError:
    """One bad row: its number as a person sees it in the file (header = row 1)."""

    row: int
    reason: str
    message_vi: str
    message_en: str

    def __str__(self) -> str:
        return f"dòng / row {self.row}: {self.message_vi} / {self.message_en}"


@dataclass(frozen=True)
class ParsedReport:
    """The events of the valid rows, and an error for each bad row."""

    events: list[tuple[int, IndicatorEvent]]
    errors: list[RowError]


def _fold(text: str) -> str:
    """Lowercase, strip diacritics (đ too), collapse spaces and underscores."""
    decomposed = unicodedata.normalize("NFD", text.strip().lower().replace("đ", "d"))
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(bare.replace("_", " ").split())


_HEADER_LOOKUP = {_fold(alias): column for column, aliases in COLUMNS.items() for alias in aliases}


def _header_map(header: list[Any]) -> dict[int, str]:
    mapping: dict[int, str] = {}
    unknown: list[str] = []
    for index, cell in enumerate(header):
        name = "" if cell is None else str(cell)
        if not name.strip():
            continue
        column = _HEADER_LOOKUP.get(_fold(name))
        if column is None:
            unknown.append(name)
        elif column in mapping.values():
            raise EventError(
                "duplicate_column",
                f"Cột '{name}' lặp lại cột {column} / Column '{name}' repeats column {column}",
            )
        else:
            mapping[index] = column
    if unknown:
        known = ", ".join(COLUMNS)
        raise EventError(
            "unknown_column",
            f"Cột không rõ: {', '.join(unknown)}. Các cột hợp lệ: {known} / "
            f"Unknown columns: {', '.join(unknown)}. Valid columns: {known}",
        )
    return mapping


def read_rows(path: Path) -> Iterator[list[Any]]:
    """The rows of a CSV (UTF-8, with or without BOM) or XLSX file (first sheet), header first."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        try:
            text = path.read_bytes().decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise EventError(
                "not_utf8",
                f"Tệp {path.name} không phải UTF-8 (byte {exc.start}); hãy lưu lại dạng "
                f"'CSV UTF-8' / {path.name} is not UTF-8 (byte {exc.start}); save it as "
                "'CSV UTF-8'",
            ) from None
        yield from csv.reader(io.StringIO(text, newline=""))
    elif suffix in (".xlsx", ".xlsm"):
        import openpyxl  # noqa: PLC0415 - heavy, only for spreadsheets

        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
        try:
            for values in workbook.worksheets[0].iter_rows(values_only=True):
                yield list(values)
        finally:
            workbook.close()
    else:
        raise EventError(
            "unsupported_file",
            f"Chỉ nhận tệp .csv hoặc .xlsx, không nhận '{path.suffix}' / "
            f"Only .csv and .xlsx files are accepted, not '{path.suffix}'",
        )


def _number(cell: Any) -> Any:
    """Spreadsheet numbers arrive as numbers, CSV ones as text: accept '1,886' and '69,46'."""
    if isinstance(cell, bool) or cell is None:
        return cell
    if isinstance(cell, int | float):
        return float(cell)
    text = str(cell).strip().replace("\u00a0", "").replace(" ", "")
    if not text:
        return None
    if text.count(",") == 1 and "." not in text and len(text.split(",")[1]) != 3:
        text = text.replace(",", ".")  # Vietnamese decimal comma: 69,46
    else:
        text = text.replace(",", "")  # thousands separators: 1,886 or 1,554,000
    try:
        return float(text)
    except ValueError:
        return str(cell)


def _timestamp(cell: Any) -> Any:
    if isinstance(cell, datetime):
        return cell if cell.tzinfo else cell.replace(tzinfo=UTC)
    return cell


def parse_report(path: Path, *, source: str | None = None) -> ParsedReport:
    """Read a bulk report and validate every row against the event contract."""
    rows = read_rows(path)
    header = next(rows, None)
    if header is None:
        raise EventError("empty_file", f"Tệp {path.name} rỗng / {path.name} is empty")
    columns = _header_map(header)
    missing = [c for c in REQUIRED if c not in columns.values()]
    if source is None and "source" not in columns.values():
        missing.insert(0, "source")
    if missing:
        raise EventError(
            "missing_column",
            f"Thiếu cột: {', '.join(missing)} / Missing columns: {', '.join(missing)}",
        )
    events: list[tuple[int, IndicatorEvent]] = []
    errors: list[RowError] = []
    now = datetime.now(UTC)
    for number, cells in enumerate(rows, start=2):
        if all(c is None or str(c).strip() == "" for c in cells):
            continue
        record = {columns[i]: cell for i, cell in enumerate(cells) if i in columns}
        if source is not None:
            if record.get("source") not in (None, "", source):
                errors.append(
                    RowError(
                        number,
                        "source_mismatch",
                        f"Dòng ghi nguồn '{record['source']}' nhưng gửi với --source {source}",
                        f"The row names source '{record['source']}' but --source is {source}",
                    )
                )
                continue
            record["source"] = source
        result = _row_event(record, now)
        if isinstance(result, RowError):
            errors.append(RowError(number, result.reason, result.message_vi, result.message_en))
        else:
            events.append((number, result))
    return ParsedReport(events, errors)


def _row_event(record: dict[str, Any], now: datetime) -> IndicatorEvent | RowError:
    values: dict[str, Any] = {
        key: (str(cell).strip() if isinstance(cell, str) else cell)
        for key, cell in record.items()
        if cell is not None and cell != ""
    }
    for key in ("value", "numerator", "denominator"):
        if key in values:
            values[key] = _number(values[key])
    for key in ("source", "indicator", "area", "period"):
        if key in values and not isinstance(values[key], str):
            values[key] = str(values[key])
    if "observed_at" in values:
        values["observed_at"] = _timestamp(values["observed_at"])
    values.setdefault("observed_at", now)
    if "event_id" not in values:
        identity = "|".join(
            str(values.get(k, "")) for k in ("source", "indicator", "area", "period", "value")
        )
        values["event_id"] = str(uuid.uuid5(REPORT_NAMESPACE, identity))
    values["sent_at"] = now
    try:
        # Exactly the validation a wire message gets: strict JSON mode.
        return IndicatorEvent.from_json(orjson.dumps(values))
    except ValidationError as exc:
        rejection = rejection_from_validation_error(exc)
        return RowError(0, rejection.reason, rejection.message_vi, rejection.message_en)
