"""Pure arithmetic of the evaluation agents: time aggregation, rollups, targets, data quality.

No Faust and no I/O here: every function takes plain values, so each rule has unit tests of
its own and the agents only move state around.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from streams.catalogue import Indicator, Ratio, Target

Status = Literal["on_track", "at_risk", "off_track"]
#: ``ioc_indicator_status`` values (the metrics contract).
STATUS_CODE: Mapping[Status, int] = {"on_track": 0, "at_risk": 1, "off_track": 2}

#: A period's reported figure: value, and for a rate its numerator and denominator.
Figure = tuple[float, float | None, float | None]


def aggregate_over_time(indicator: Indicator, values: Sequence[float]) -> float | None:
    """Combine consecutive periods (oldest first) following the indicator's time aggregation."""
    if not values:
        return None
    if indicator.time_aggregation == "sum":
        return math.fsum(values)
    if indicator.time_aggregation == "average":
        return math.fsum(values) / len(values)
    return values[-1]


@dataclass(frozen=True)
class Rollup:
    """A parent area's value computed from its children's figures."""

    value: float
    numerator: float | None
    denominator: float | None
    children: int


def roll_up(indicator: Indicator, children: Iterable[Figure]) -> Rollup | None:
    """Combine children's figures for one period following the hierarchy aggregation.

    ``sum`` adds values; ``recompute`` adds numerators and denominators and recomputes the
    rate (never an average of rates); ``none`` does not roll up. A rate whose children did not
    all send components cannot be recomputed honestly and gives None.
    """
    figures = list(children)
    if not figures or indicator.hierarchy_aggregation == "none":
        return None
    if indicator.hierarchy_aggregation == "sum":
        return Rollup(math.fsum(v for v, _, _ in figures), None, None, len(figures))
    ratio: Ratio | None = indicator.ratio
    if ratio is None or any(n is None or d is None for _, n, d in figures):
        return None
    numerator = math.fsum(n or 0.0 for _, n, _ in figures)
    denominator = math.fsum(d or 0.0 for _, _, d in figures)
    value = ratio.compute(numerator, denominator)
    if value is None:
        return None
    return Rollup(value, numerator, denominator, len(figures))


def with_period(
    periods: dict[str, Any], period: str, figure: Any, keep: int, *, owned: bool = False
) -> dict[str, Any]:
    """A series' periods with ``period`` set to ``figure``, the newest ``keep`` kept, in order.

    ``periods`` is kept sorted (JSON keeps the order through the changelog), so the common
    case, a new latest period, appends without sorting. ``periods`` itself is never changed,
    unless it is ``owned`` (made by this batch, so nothing else holds it): then a new latest
    period is appended to it in place instead of to a copy.
    """
    if not periods or period > next(reversed(periods)):
        merged = periods if owned else dict(periods)
        merged[period] = figure
        while len(merged) > keep:
            del merged[next(iter(merged))]
        return merged
    merged = {**periods, period: figure}
    return {p: merged[p] for p in sorted(merged)[-keep:]}


def add_children(
    entry: Mapping[str, Any],
    period: str,
    kind: str,
    figures: Mapping[str, Sequence[float | None]],
) -> dict[str, Any]:
    """A parent's rollup state with children's figures for ``period`` set, not yet rolled up.

    ``kind`` is ``"r"`` for a child's own report and ``"c"`` for the rollup of the child's
    own children; a report is preferred. A later figure of the same child and kind replaces
    the earlier one (a correction), so nothing is ever counted twice. Only the period's slots
    and the children's slots are copied, once for all of ``figures``; ``entry`` itself is
    never changed.
    """
    children = dict(entry["children"])
    slots = dict(children.get(period, {}))
    for child, figure in figures.items():
        slots[child] = {**slots.get(child, {}), kind: list(figure)}
    children[period] = slots
    return {**entry, "children": children}


def settle_period(
    indicator: Indicator, entry: Mapping[str, Any], period: str, keep: int
) -> tuple[dict[str, Any], Rollup | None]:
    """Roll ``period`` up from the children it holds; keep only the newest ``keep`` periods.

    Separate from :func:`add_children` so that an agent adding many children of one period in a
    batch rolls the period up once, not once per child.
    """
    figures: list[Figure] = [
        (f[0], f[1], f[2])
        for f in (slot.get("r") or slot["c"] for slot in entry["children"].get(period, {}).values())
    ]
    result = roll_up(indicator, figures)
    values = dict(entry["values"])
    if result is not None:
        values[period] = [result.value, result.numerator, result.denominator]
    children = entry["children"]
    merged = {
        **entry,
        "children": {p: children[p] for p in sorted(children)[-keep:]},
        "values": {p: values[p] for p in sorted(values)[-keep:]},
    }
    return merged, result


def merge_child(
    indicator: Indicator,
    entry: Mapping[str, Any],
    period: str,
    child: str,
    kind: str,
    figure: Sequence[float | None],
    keep: int,
) -> tuple[dict[str, Any], Rollup | None]:
    """A parent's rollup state after one child's figure for ``period``, and the new rollup
    (:func:`add_children` then :func:`settle_period`)."""
    merged = add_children(entry, period, kind, {child: figure})
    return settle_period(indicator, merged, period, keep)


@dataclass(frozen=True)
class TargetStatus:
    """Where a value stands against its target."""

    target: Target
    status: Status
    progress: float  # 1.0 means the target is met exactly


def target_for(indicator: Indicator, area: str, year: int) -> Target | None:
    """The target that applies to a value of ``year``: that year's, else the next one set."""
    candidates = sorted(
        (t for t in indicator.targets if t.area == area and t.year >= year), key=lambda t: t.year
    )
    return candidates[0] if candidates else None


def _year(target: Target) -> int:
    return target.year


class TargetIndex:
    """:func:`target_for`, with the targets of each (indicator, area) sorted once: the
    catalogue does not change while the worker runs, and this is asked once per event."""

    def __init__(self) -> None:
        self._sorted: dict[tuple[str, str], list[Target]] = {}

    def __call__(self, indicator: Indicator, area: str, year: int) -> Target | None:
        """The target that applies to a value of ``year`` (see :func:`target_for`)."""
        ordered = self._sorted.get((indicator.code, area))
        if ordered is None:
            ordered = sorted((t for t in indicator.targets if t.area == area), key=_year)
            self._sorted[indicator.code, area] = ordered
        for target in ordered:
            if target.year >= year:
                return target
        return None


def assess_target(value: float, target: Target, margin: float) -> TargetStatus:
    """On track when the target is met; at risk within ``margin`` (a fraction) of it."""
    if target.direction == "at_least":
        progress = value / target.value if target.value else 1.0
        met, near = value >= target.value, value >= target.value * (1 - margin)
    else:
        progress = target.value / value if value else 1.0
        met, near = value <= target.value, value <= target.value * (1 + margin)
    status: Status = "on_track" if met else "at_risk" if near else "off_track"
    return TargetStatus(target, status, progress)


#: Fewer earlier values than this, and a series has no history to judge an outlier by.
MIN_HISTORY = 5
#: Scales the median absolute deviation to the standard deviation of a normal distribution.
MAD_SCALE = 0.6745


def _median(ordered: Sequence[float]) -> float:
    n = len(ordered)
    middle = n // 2
    return ordered[middle] if n % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def modified_z_score(value: float, history: Sequence[float]) -> float | None:
    """Iglewicz and Hoaglin's modified z-score of ``value`` against the series' history.

    None when the history is too short. When the median absolute deviation is 0 (a flat
    series) any different value is infinitely far, and an equal value is 0.
    """
    if len(history) < MIN_HISTORY:
        return None
    # statistics.median, without its per-call checks: this runs for every event.
    median = _median(sorted(history))
    mad = _median(sorted([abs(x - median) for x in history]))
    if mad == 0:
        return 0.0 if value == median else math.inf
    return MAD_SCALE * (value - median) / mad


def percent_change(previous: float, current: float) -> float | None:
    """Change from ``previous`` to ``current`` in percent; None from a zero base."""
    if previous == 0:
        return None
    return (current - previous) / abs(previous) * 100.0
