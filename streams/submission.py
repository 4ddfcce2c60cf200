"""What an agency's submission goes through before anything is sent: every row is checked
against the event contract and the catalogue, locally, and every bad row is reported."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from streams.catalogue import Catalogue
from streams.events import IndicatorEvent
from streams.reports import RowError, parse_report
from streams.validation import check_against_catalogue


@dataclass(frozen=True)
class Submission:
    """The rows of a report that may be sent, and those that may not."""

    events: list[tuple[int, IndicatorEvent]]
    errors: list[RowError]

    @property
    def row_count(self) -> int:
        """Rows read from the file (blank rows excluded)."""
        return len(self.events) + len(self.errors)


def check_events(
    numbered: list[tuple[int, IndicatorEvent]], catalogue: Catalogue, now: datetime | None = None
) -> Submission:
    """Split events into those the catalogue accepts and a row error for each other one."""
    now = now or datetime.now(UTC)
    good: list[tuple[int, IndicatorEvent]] = []
    errors: list[RowError] = []
    for row, event in numbered:
        rejection = check_against_catalogue(event, catalogue, now)
        if rejection is None:
            good.append((row, event))
        else:
            errors.append(
                RowError(row, rejection.reason, rejection.message_vi, rejection.message_en)
            )
    return Submission(good, errors)


def prepare_report(path: Path, catalogue: Catalogue, *, source: str | None = None) -> Submission:
    """Read a CSV/XLSX report and check every row (nothing is sent here)."""
    parsed = parse_report(path, source=source)
    checked = check_events(parsed.events, catalogue)
    errors = sorted([*parsed.errors, *checked.errors], key=lambda error: error.row)
    return Submission(checked.events, errors)
