"""Reporting timeliness: expected vs received, on time vs late, overdue at the deadline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from agents.timeliness import (
    assess_source,
    expected_reports,
    latest_due_period,
    record_receipts,
)
from streams.catalogue import default_catalogue
from streams.periods import LOCAL_TZ, Period

CATALOGUE = default_catalogue()
INVOICES = CATALOGUE.indicators["e_invoices_issued"]  # tax, daily, province, due 08:00 next day
REVENUE = CATALOGUE.indicators["tax_revenue"]  # tax, monthly, province+district, due day 10 17:00


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=LOCAL_TZ)  # type: ignore[misc]


def watched_since(moment: datetime) -> dict[str, Any]:
    return {"watch_since": moment.isoformat(), "periods": {}}


def test_latest_due_period_turns_over_at_the_deadline() -> None:
    before = local(2025, 3, 5, 7, 59)
    at = local(2025, 3, 5, 8, 0)

    assert str(latest_due_period(INVOICES, before)) == "2025-03-03"
    assert str(latest_due_period(INVOICES, at)) == "2025-03-04"


def test_expected_reports_follow_the_dated_hierarchy() -> None:
    before_reform = expected_reports(CATALOGUE, REVENUE, Period.parse("2025-05", "month"))
    after_reform = expected_reports(CATALOGUE, REVENUE, Period.parse("2025-08", "month"))

    assert before_reform == 1 + 12  # the province and its 12 districts
    assert after_reform == 1  # districts were abolished on 1 July 2025


def test_silent_source_becomes_overdue_exactly_at_the_deadline() -> None:
    state = watched_since(local(2025, 3, 4, 9, 0))  # after the 3 March figure was due
    deadline = INVOICES.due_at(Period.parse("2025-03-04", "day"))

    just_before = assess_source(CATALOGUE, "tax", state, deadline - timedelta(seconds=1))
    at_deadline = assess_source(CATALOGUE, "tax", state, deadline)

    assert "e_invoices_issued" not in just_before.overdue
    assert "e_invoices_issued" in at_deadline.overdue


def test_a_report_before_the_deadline_is_on_time_and_clears_overdue() -> None:
    state = watched_since(local(2025, 3, 4, 0, 0))
    day = Period.parse("2025-03-04", "day")
    record_receipts(state, INVOICES, day, {"son-la": local(2025, 3, 4, 18, 0)})

    standing = assess_source(CATALOGUE, "tax", state, local(2025, 3, 5, 9, 0))

    assert "e_invoices_issued" not in standing.overdue
    assert standing.on_time_rate == 1.0
    assert state["last_report"] == local(2025, 3, 4, 18, 0).isoformat()


def test_late_reports_count_as_received_but_not_on_time() -> None:
    state = watched_since(local(2025, 3, 4, 0, 0))
    day = Period.parse("2025-03-04", "day")
    record_receipts(state, INVOICES, day, {"son-la": local(2025, 3, 5, 9, 30)})  # after 08:00

    standing = assess_source(CATALOGUE, "tax", state, local(2025, 3, 5, 10, 0))

    assert "e_invoices_issued" not in standing.overdue
    assert standing.on_time_rate == 0.0


def test_rates_never_exceed_one_and_corrections_do_not_count_twice() -> None:
    state = watched_since(local(2025, 3, 1, 0, 0))
    month = Period.parse("2025-03", "month")
    sent = local(2025, 4, 2, 9, 0)
    for _ in range(3):  # the same area three times: a report and two corrections
        record_receipts(state, REVENUE, month, {"son-la": sent})
    record_receipts(state, REVENUE, month, {"moc-chau": sent})

    standing = assess_source(CATALOGUE, "tax", state, local(2025, 4, 11, 0, 0))

    assert standing.reporting_rate is not None
    assert standing.reporting_rate <= 1.0
    assert standing.received >= 2
    revenue_areas = state["periods"]["tax_revenue"]["2025-03"]["areas"]
    assert sorted(revenue_areas) == ["moc-chau", "son-la"]


def test_periods_due_before_watching_began_are_not_held_against_a_source() -> None:
    state = watched_since(local(2025, 3, 20, 0, 0))

    standing = assess_source(CATALOGUE, "tax", state, local(2025, 3, 20, 12, 0))

    # February's revenue was due on 10 March, before the monitor watched: not overdue.
    assert "tax_revenue" not in standing.overdue
    # Yesterday's invoices were due at 08:00 today, after watching began: overdue.
    assert "e_invoices_issued" in standing.overdue


def test_the_last_report_is_the_latest_instant_whatever_the_offset_it_was_sent_at() -> None:
    state = watched_since(local(2025, 3, 4, 0, 0))
    day = Period.parse("2025-03-04", "day")
    first = local(2025, 3, 4, 18, 0)  # 11:00 UTC
    later = datetime(2025, 3, 4, 12, 0, tzinfo=UTC)  # an hour later, its text sorts first
    earlier = datetime(2025, 3, 4, 10, 0, tzinfo=UTC)

    record_receipts(state, INVOICES, day, {"son-la": first})
    record_receipts(state, INVOICES, day, {"moc-chau": later})
    record_receipts(state, INVOICES, day, {"yen-chau": earlier})

    assert state["last_report"] == later.isoformat()


def test_receipts_recorded_together_leave_the_state_they_leave_one_by_one() -> None:
    month = Period.parse("2025-03", "month")
    due = REVENUE.due_at(month)
    sent = {
        "son-la": due - timedelta(days=1),
        "moc-chau": due + timedelta(hours=1),  # late
        "yen-chau": (due - timedelta(hours=2)).astimezone(UTC),
    }
    one_by_one, together = watched_since(local(2025, 3, 1)), watched_since(local(2025, 3, 1))
    for area, moment in sent.items():
        record_receipts(one_by_one, REVENUE, month, {area: moment})
    record_receipts(together, REVENUE, month, sent)

    assert together == one_by_one
    assert together["periods"]["tax_revenue"]["2025-03"]["areas"] == {
        "son-la": True,
        "moc-chau": False,
        "yen-chau": True,
    }
    assert together["last_report"] == sent["moc-chau"].isoformat()
