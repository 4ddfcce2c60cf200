"""Reporting timeliness and completeness of each source, judged against the catalogue.

For each indicator of a source, the period that matters is the latest one whose deadline has
passed. Expected reports for it: one per area at the indicator's reporting levels existing
in that period. A source is *overdue* when some indicator has no report at all for that
period; the reporting rate is received over expected (never above 1), and a report is on time
when sent no later than its deadline. Periods due before the monitor started watching a
source are not held against it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from streams.catalogue import Catalogue, Indicator
from streams.periods import Period

#: Periods of reporting state kept per indicator (the due one and a few before).
KEEP_PERIODS = 4


def latest_due_period(indicator: Indicator, now: datetime) -> Period:
    """The most recent period of ``indicator`` whose deadline is not after ``now``."""
    period = Period.containing(now, indicator.period_type)
    while indicator.due_at(period) > now:
        period = period.previous()
    return period


@lru_cache(maxsize=8192)
def _expected(catalogue: Catalogue, code: str, period: Period) -> int:
    indicator = catalogue.indicators[code]
    return sum(
        1
        for unit in catalogue.areas.values()
        if unit.level in indicator.levels and unit.exists_on(period.last_day)
    )


def expected_reports(catalogue: Catalogue, indicator: Indicator, period: Period) -> int:
    """How many reports the indicator expects for ``period``: one per area at its levels.

    Areas are those existing on the period's last day, as for rollups: a period spanning the
    2025 reform is reported by the units that exist when it closes.
    """
    return _expected(catalogue, indicator.code, period)


def record_receipts(
    state: dict[str, Any], indicator: Indicator, period: Period, sent: Mapping[str, datetime]
) -> None:
    """Add the reports of ``indicator`` for ``period`` received from areas (area: when it
    was sent) to a source's state. Idempotent per area and period: a correction re-judges
    its area, never counts it twice."""
    periods = state.setdefault("periods", {}).setdefault(indicator.code, {})
    areas = periods.setdefault(str(period), {"areas": {}})["areas"]
    due = indicator.due_at(period)
    for area, sent_at in sent.items():
        areas[area] = sent_at <= due
    if len(periods) > KEEP_PERIODS:
        for old in sorted(periods)[:-KEEP_PERIODS]:
            del periods[old]
    if not sent:
        return
    # Instants compared, not their texts: agencies send times at different UTC offsets.
    newest = max(sent.values())
    last = state.get("last_report")
    if last is None or newest > datetime.fromisoformat(last):
        state["last_report"] = newest.isoformat()


@dataclass(frozen=True)
class Timeliness:
    """A source's standing now."""

    overdue: tuple[str, ...]  # indicators with no report for their latest due period
    expected: int
    received: int
    on_time: int

    @property
    def reporting_rate(self) -> float | None:
        """Received over expected, at most 1; None when nothing is due yet."""
        return min(1.0, self.received / self.expected) if self.expected else None

    @property
    def on_time_rate(self) -> float | None:
        """On-time reports over received ones; None when nothing was received."""
        return self.on_time / self.received if self.received else None


def assess_source(
    catalogue: Catalogue, source: str, state: dict[str, Any], now: datetime
) -> Timeliness:
    """Judge a source's reporting for the latest due period of each of its indicators."""
    watch_since = datetime.fromisoformat(state["watch_since"])
    overdue: list[str] = []
    expected = received = on_time = 0
    periods = state.get("periods", {})
    for indicator in catalogue.indicators_of(source):
        period = latest_due_period(indicator, now)
        if indicator.due_at(period) < watch_since:
            continue  # due before we started watching
        areas: dict[str, bool] = (
            periods.get(indicator.code, {}).get(str(period), {}).get("areas", {})
        )
        want = expected_reports(catalogue, indicator, period)
        expected += want
        received += min(len(areas), want)
        on_time += sum(1 for ok in areas.values() if ok)
        if not areas:
            overdue.append(indicator.code)
    return Timeliness(tuple(overdue), expected, received, min(on_time, received))
