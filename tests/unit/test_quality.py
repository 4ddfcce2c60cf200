"""The arithmetic of evaluation: rollups, corrections, rates, targets, outliers, rules."""

from __future__ import annotations

import math
from typing import Any

import pytest

from agents.quality import (
    aggregate_over_time,
    assess_target,
    merge_child,
    modified_z_score,
    percent_change,
    roll_up,
    target_for,
    with_period,
)
from streams.catalogue import Target, default_catalogue

CATALOGUE = default_catalogue()
EID = CATALOGUE.indicators["eid_activated"]  # count; hierarchy sum
RATE = CATALOGUE.indicators["online_application_rate"]  # percent; recompute from components
TOTAL = CATALOGUE.indicators["dvc_online_total"]  # hierarchy none


def empty(area: str = "moc-chau") -> dict[str, Any]:
    return {"area": area, "children": {}, "values": {}}


def test_sum_rollup_and_a_correction_replaces_the_child() -> None:
    entry, _ = merge_child(EID, empty(), "2024-Q3", "moc-chau.a", "r", [100.0, None, None], 60)
    entry, first = merge_child(EID, entry, "2024-Q3", "moc-chau.b", "r", [50.0, None, None], 60)
    entry, corrected = merge_child(
        EID, entry, "2024-Q3", "moc-chau.a", "r", [120.0, None, None], 60
    )

    assert first is not None
    assert (first.value, first.children) == (150.0, 2)
    assert corrected is not None
    assert (corrected.value, corrected.children) == (170.0, 2)  # not 270: replaced, not added
    assert entry["values"]["2024-Q3"][0] == 170.0


def test_periods_are_rolled_up_separately_and_trimmed() -> None:
    entry = empty()
    for quarter in ("2024-Q1", "2024-Q2", "2024-Q3"):
        entry, _ = merge_child(EID, entry, quarter, "moc-chau.a", "r", [1.0, None, None], 2)

    assert sorted(entry["values"]) == ["2024-Q2", "2024-Q3"]
    assert sorted(entry["children"]) == ["2024-Q2", "2024-Q3"]


def test_a_childs_report_is_preferred_to_its_own_rollup() -> None:
    entry, _ = merge_child(EID, empty("son-la"), "2024-Q3", "moc-chau", "c", [150.0, None, None], 9)
    entry, from_report = merge_child(EID, entry, "2024-Q3", "moc-chau", "r", [160.0, None, None], 9)
    entry, still = merge_child(EID, entry, "2024-Q3", "moc-chau", "c", [155.0, None, None], 9)

    assert from_report is not None
    assert from_report.value == 160.0
    assert still is not None
    assert still.value == 160.0


def test_rates_are_recomputed_from_components_never_averaged() -> None:
    # 90 % of 1,000 and 10 % of 9,000: the average of rates would say 50 %; the truth is 18 %.
    result = roll_up(RATE, [(90.0, 900.0, 1000.0), (10.0, 900.0, 9000.0)])

    assert result is not None
    assert math.isclose(result.value, 18.0)
    assert (result.numerator, result.denominator) == (1800.0, 10000.0)


def test_a_rate_without_components_does_not_roll_up() -> None:
    assert roll_up(RATE, [(90.0, 900.0, 1000.0), (10.0, None, None)]) is None


def test_hierarchy_none_does_not_roll_up() -> None:
    assert roll_up(TOTAL, [(1886.0, None, None)]) is None


@pytest.mark.parametrize(
    ("code", "values", "expected"),
    [
        ("tax_revenue", [100.0, 150.5], 250.5),  # sum
        ("eid_activated", [500000.0, 539304.0], 539304.0),  # last
    ],
)
def test_time_aggregation(code: str, values: list[float], expected: float) -> None:
    assert aggregate_over_time(CATALOGUE.indicators[code], values) == expected


def test_average_over_time() -> None:
    averaged = next(
        ind for ind in CATALOGUE.indicators.values() if ind.time_aggregation == "average"
    )
    assert aggregate_over_time(averaged, [1.0, 2.0, 6.0]) == 3.0


def test_target_status_with_margin() -> None:
    target = target_for(RATE, "son-la", 2023)
    assert target is not None
    assert (target.year, target.value) == (2025, 80.0)  # the next target set applies

    assert assess_target(85.0, target, 0.1).status == "on_track"
    assert assess_target(75.0, target, 0.1).status == "at_risk"
    off = assess_target(69.46, target, 0.1)
    assert off.status == "off_track"
    assert math.isclose(off.progress, 69.46 / 80)


def test_at_most_targets_invert_progress() -> None:
    # e.g. a poverty rate to bring down to 5 %
    target = Target(year=2025, value=5.0, direction="at_most", basis_vi="NQ", basis_en="Res")
    assert assess_target(target.value * 0.5, target, 0.1).status == "on_track"
    assert assess_target(target.value * 1.05, target, 0.1).status == "at_risk"
    assert assess_target(target.value * 2, target, 0.1).status == "off_track"


def test_modified_z_score_flags_only_real_outliers() -> None:
    history = [100.0, 102.0, 98.0, 101.0, 99.0, 100.0]

    assert modified_z_score(100.5, history) is not None
    normal = modified_z_score(103.0, history)
    outlier = modified_z_score(500.0, history)
    assert normal is not None
    assert abs(normal) < 3.5
    assert outlier is not None
    assert outlier > 3.5
    assert modified_z_score(500.0, history[:4]) is None  # too little history
    assert modified_z_score(7.0, [5.0] * 6) == math.inf  # flat series: any change is extreme


def test_percent_change() -> None:
    assert percent_change(100.0, 180.0) == 80.0
    assert percent_change(-50.0, -25.0) == 50.0
    assert percent_change(0.0, 5.0) is None


def test_the_published_q3_2024_figures_break_the_parts_sum_rule() -> None:
    rule = CATALOGUE.rules["dvc_online_parts_sum"]
    q3_2024 = {"dvc_online_partial": 312.0, "dvc_online_full": 1554.0, "dvc_online_total": 1886.0}
    early_2025 = {"dvc_online_partial": 322.0, "dvc_online_full": 1679.0, "dvc_online_total": 2001}

    assert not rule.holds(q3_2024)
    assert rule.gap(q3_2024) == -20.0  # 1,866 - 1,886
    assert rule.holds(early_2025)


def test_with_period_keeps_the_newest_in_order_and_never_changes_what_it_was_given() -> None:
    periods = {"2024-01": [1.0], "2024-02": [2.0], "2024-03": [3.0]}
    original = {p: list(v) for p, v in periods.items()}
    latest = with_period(periods, "2024-04", [4.0], keep=3)
    assert list(latest) == ["2024-02", "2024-03", "2024-04"]
    late = with_period(periods, "2023-12", [0.5], keep=4)  # an old period, sorted in
    assert list(late) == ["2023-12", "2024-01", "2024-02", "2024-03"]
    assert with_period(periods, "2024-02", [2.5], keep=3)["2024-02"] == [2.5]  # a correction
    assert periods == original


def test_owned_periods_take_a_new_latest_in_place() -> None:
    periods = {"2024-01": [1.0], "2024-02": [2.0]}
    same = with_period(periods, "2024-03", [3.0], keep=2, owned=True)
    assert same is periods
    assert list(periods) == ["2024-02", "2024-03"]
    # An older period is sorted into a new mapping, owned or not.
    older = with_period(periods, "2024-01", [1.0], keep=3, owned=True)
    assert list(older) == ["2024-01", "2024-02", "2024-03"]
