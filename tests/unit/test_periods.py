"""Reporting periods: parsing, formatting, spans in local time, neighbours, edge cases."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.periods import (
    LOCAL_TZ,
    PERIOD_TYPES,
    Period,
    PeriodType,
    detect_period_type,
    period_type_nests,
)

ICT = timezone(timedelta(hours=7))


def local(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=ICT)


# (text, type, first day, last day)
FORMS: list[tuple[str, PeriodType, date, date]] = [
    ("2024-09-15", "day", date(2024, 9, 15), date(2024, 9, 15)),
    ("2024-W37", "week", date(2024, 9, 9), date(2024, 9, 15)),
    ("2024-09", "month", date(2024, 9, 1), date(2024, 9, 30)),
    ("2024-Q3", "quarter", date(2024, 7, 1), date(2024, 9, 30)),
    ("2024", "year", date(2024, 1, 1), date(2024, 12, 31)),
]


class TestParseAndFormat:
    @pytest.mark.parametrize(("text", "period_type", "first", "last"), FORMS)
    def test_each_form_parses_and_round_trips(
        self, text: str, period_type: PeriodType, first: date, last: date
    ) -> None:
        period = Period.parse(text, period_type)
        assert period.period_type == period_type
        assert period.first_day == first
        assert period.last_day == last
        assert str(period) == text
        assert Period.parse_any(text) == period
        assert detect_period_type(text) == period_type

    @pytest.mark.parametrize(("text", "period_type", "first", "last"), FORMS)
    def test_start_and_end_are_local_midnights_end_exclusive(
        self, text: str, period_type: PeriodType, first: date, last: date
    ) -> None:
        period = Period.parse(text, period_type)
        assert period.start == datetime.combine(first, time(), tzinfo=ICT)
        assert period.end == datetime.combine(last + timedelta(days=1), time(), tzinfo=ICT)
        assert period.start.utcoffset() == timedelta(hours=7)
        assert period.end == period.next().start
        assert period.contains(period.start)
        assert not period.contains(period.end)
        assert period.contains(period.end - timedelta(microseconds=1))

    def test_local_tz_is_utc_plus_seven_named_ict(self) -> None:
        assert LOCAL_TZ.utcoffset(None) == timedelta(hours=7)
        assert LOCAL_TZ.tzname(None) == "ICT"

    @pytest.mark.parametrize(
        ("text", "period_type"),
        [
            ("2024-02-29", "day"),  # leap year
            ("2000-02-29", "day"),  # divisible by 400: leap
            ("2020-W53", "week"),  # 2020 has 53 ISO weeks
            ("2026-W53", "week"),  # so does 2026
            ("2000", "year"),
            ("2100-12-31", "day"),
            ("2024-W01", "week"),
        ],
    )
    def test_edge_values_that_exist(self, text: str, period_type: PeriodType) -> None:
        assert str(Period.parse(text, period_type)) == text

    @pytest.mark.parametrize(
        ("text", "period_type"),
        [
            ("2024-9", "month"),
            ("2024-13", "month"),
            ("2024-00", "month"),
            ("2024-W54", "week"),
            ("2024-W53", "week"),  # 2024 has only 52 ISO weeks
            ("2024-W00", "week"),
            ("2024-W7", "week"),
            ("2024-w37", "week"),
            ("2024-Q5", "quarter"),
            ("2024-Q0", "quarter"),
            ("2024-q3", "quarter"),
            ("2024-02-30", "day"),
            ("2023-02-29", "day"),
            ("2100-02-29", "day"),  # 2100 is not a leap year
            ("2024-9-15", "day"),
            (" 2024", "year"),
            ("2024 ", "year"),
            ("2024\n", "year"),
            ("", "year"),
            ("１９９９", "year"),  # full-width digits
            ("٢٠٢٤", "year"),  # Arabic-Indic digits
            ("2024-0٩", "month"),
            ("1999", "year"),
            ("2101", "year"),
            ("1999-12", "month"),
            ("2024-09", "day"),  # a month is not a day
            ("2024-09-15", "month"),
            ("+2024", "year"),
            ("2_024", "year"),
        ],
    )
    def test_invalid_text_is_rejected_with_the_expected_form(
        self, text: str, period_type: PeriodType
    ) -> None:
        with pytest.raises(ValueError, match="expected") as caught:
            Period.parse(text, period_type)
        message = str(caught.value)
        assert repr(text) in message
        assert period_type in message

    def test_week_message_says_how_many_weeks_the_year_has(self) -> None:
        with pytest.raises(ValueError, match="2024 has 52 weeks"):
            Period.parse("2024-W53", "week")

    def test_year_outside_range_message(self) -> None:
        with pytest.raises(ValueError, match=r"outside 2000\.\.2100"):
            Period.parse("1999-Q4", "quarter")

    def test_unknown_period_type(self) -> None:
        with pytest.raises(ValueError, match="unknown period type 'fortnight'"):
            Period.parse("2024", "fortnight")  # type: ignore[arg-type]

    def test_parse_any_rejects_what_has_no_period_shape(self) -> None:
        with pytest.raises(ValueError, match="is not a period"):
            Period.parse_any("September 2024")

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("2024-09-15", "day"),
            ("2024-W37", "week"),
            ("2024-09", "month"),
            ("2024-Q3", "quarter"),
            ("2024", "year"),
            ("2024-13", "month"),  # shape only
            ("24", None),
            ("2024-9", None),
            ("2024/09", None),
            ("2024-09-15T00:00", None),
            (" 2024", None),
        ],
    )
    def test_detect_period_type(self, text: str, expected: PeriodType | None) -> None:
        assert detect_period_type(text) == expected


class TestNeighbours:
    @pytest.mark.parametrize(
        ("text", "period_type", "following"),
        [
            ("2024-12-31", "day", "2025-01-01"),
            ("2024-02-28", "day", "2024-02-29"),
            ("2023-02-28", "day", "2023-03-01"),
            ("2024-W52", "week", "2025-W01"),
            ("2020-W53", "week", "2021-W01"),
            ("2024-W37", "week", "2024-W38"),
            ("2024-12", "month", "2025-01"),
            ("2024-01", "month", "2024-02"),
            ("2024-Q4", "quarter", "2025-Q1"),
            ("2024-Q1", "quarter", "2024-Q2"),
            ("2024", "year", "2025"),
        ],
    )
    def test_next_and_previous(self, text: str, period_type: PeriodType, following: str) -> None:
        period = Period.parse(text, period_type)
        after = Period.parse(following, period_type)
        assert period.next() == after
        assert after.previous() == period

    def test_no_period_beyond_2100(self) -> None:
        last = Period.parse("2100", "year")
        assert last.end == local(2101, 1, 1)  # the end instant is still known
        with pytest.raises(ValueError, match="outside"):
            last.next()

    @pytest.mark.parametrize(
        ("text", "inner", "outer", "expected"),
        [
            ("2024-09-15", "day", "week", "2024-W37"),
            ("2024-09-15", "day", "month", "2024-09"),
            ("2024-12-30", "day", "week", "2025-W01"),
            ("2024-09", "month", "quarter", "2024-Q3"),
            ("2024-09", "month", "year", "2024"),
            ("2024-Q4", "quarter", "year", "2024"),
            ("2024-Q4", "quarter", "quarter", "2024-Q4"),
        ],
    )
    def test_enclosing(
        self, text: str, inner: PeriodType, outer: PeriodType, expected: str
    ) -> None:
        assert str(Period.parse(text, inner).enclosing(outer)) == expected

    @pytest.mark.parametrize(("inner", "outer"), [("week", "month"), ("week", "year")])
    def test_weeks_do_not_nest_in_months_or_years(
        self, inner: PeriodType, outer: PeriodType
    ) -> None:
        assert not period_type_nests(inner, outer)
        with pytest.raises(ValueError, match="does not lie within"):
            Period.parse("2024-W01", "week").enclosing(outer)

    def test_nesting_table(self) -> None:
        nests = {(a, b) for a in PERIOD_TYPES for b in PERIOD_TYPES if period_type_nests(a, b)}
        assert nests == {
            ("day", "day"),
            ("day", "week"),
            ("day", "month"),
            ("day", "quarter"),
            ("day", "year"),
            ("week", "week"),
            ("month", "month"),
            ("month", "quarter"),
            ("month", "year"),
            ("quarter", "quarter"),
            ("quarter", "year"),
            ("year", "year"),
        }


class TestContaining:
    @pytest.mark.parametrize(
        ("moment", "period_type", "expected"),
        [
            # ISO week 53 / week 1 edges
            (date(2021, 1, 3), "week", "2020-W53"),  # a Sunday still in 2020's week 53
            (date(2021, 1, 4), "week", "2021-W01"),
            (date(2024, 12, 30), "week", "2025-W01"),  # Monday of 2025's week 1
            (date(2008, 12, 29), "week", "2009-W01"),
            (date(2027, 1, 1), "week", "2026-W53"),
            # quarter boundaries
            (date(2024, 3, 31), "quarter", "2024-Q1"),
            (date(2024, 4, 1), "quarter", "2024-Q2"),
            (date(2024, 9, 30), "quarter", "2024-Q3"),
            (date(2024, 10, 1), "quarter", "2024-Q4"),
            (date(2024, 12, 31), "quarter", "2024-Q4"),
            (date(2024, 2, 29), "month", "2024-02"),
            (date(2024, 12, 31), "year", "2024"),
        ],
    )
    def test_dates(self, moment: date, period_type: PeriodType, expected: str) -> None:
        assert str(Period.containing(moment, period_type)) == expected

    @pytest.mark.parametrize(
        ("moment", "day", "year", "quarter", "week"),
        [
            # 16:59:59 UTC on New Year's Eve is 23:59:59 in Sơn La: still 2024
            (
                datetime(2024, 12, 31, 16, 59, 59, tzinfo=UTC),
                "2024-12-31",
                "2024",
                "2024-Q4",
                "2025-W01",
            ),
            # 17:00 UTC is midnight in Sơn La: already 2025
            (
                datetime(2024, 12, 31, 17, 0, tzinfo=UTC),
                "2025-01-01",
                "2025",
                "2025-Q1",
                "2025-W01",
            ),
            # local time given directly
            (local(2024, 9, 30, 23, 59, 59), "2024-09-30", "2024", "2024-Q3", "2024-W40"),
            (local(2024, 10, 1, 0, 0), "2024-10-01", "2024", "2024-Q4", "2024-W40"),
            # another zone: 2024-07-01 01:00 in Tokyo (UTC+9) is 2024-06-30 23:00 in Sơn La
            (
                datetime(2024, 7, 1, 1, 0, tzinfo=timezone(timedelta(hours=9))),
                "2024-06-30",
                "2024",
                "2024-Q2",
                "2024-W26",
            ),
            # naive datetimes are taken as local time
            (datetime(2024, 12, 31, 23, 30), "2024-12-31", "2024", "2024-Q4", "2025-W01"),
        ],
    )
    def test_datetimes_are_read_in_local_time(
        self, moment: datetime, day: str, year: str, quarter: str, week: str
    ) -> None:
        assert str(Period.containing(moment, "day")) == day
        assert str(Period.containing(moment, "year")) == year
        assert str(Period.containing(moment, "quarter")) == quarter
        assert str(Period.containing(moment, "week")) == week

    def test_outside_the_year_range(self) -> None:
        with pytest.raises(ValueError, match="outside"):
            Period.containing(date(1999, 12, 31), "day")
        # 1 January 2000 is in ISO week 1999-W52, which is out of range too.
        with pytest.raises(ValueError, match="year 1999"):
            Period.containing(date(2000, 1, 1), "week")


class TestValueSemantics:
    def test_equal_periods_are_one_dict_key(self) -> None:
        counts = {Period.parse("2024-Q3", "quarter"): 1}
        counts[Period.containing(date(2024, 8, 1), "quarter")] += 1
        assert counts == {Period.parse("2024-Q3", "quarter"): 2}

    def test_frozen(self) -> None:
        period = Period.parse("2024", "year")
        with pytest.raises(AttributeError):
            period.first_day = date(2025, 1, 1)  # type: ignore[misc]

    def test_same_type_orders_by_time(self) -> None:
        months = [Period.parse(text, "month") for text in ("2025-01", "2024-09", "2024-12")]
        assert [str(p) for p in sorted(months)] == ["2024-09", "2024-12", "2025-01"]
        assert months[1] < months[2] <= months[2] < months[0]
        assert max(months) == Period.parse("2025-01", "month")

    def test_different_types_do_not_compare(self) -> None:
        with pytest.raises(TypeError):
            _ = Period.parse("2024-09", "month") < Period.parse("2024-W37", "week")

    def test_a_month_and_a_day_with_the_same_first_day_differ(self) -> None:
        assert Period.parse("2024-09", "month") != Period.parse("2024-09-01", "day")

    def test_constructor_checks_alignment(self) -> None:
        with pytest.raises(ValueError, match="not the first day of a month"):
            Period("month", date(2024, 9, 2))
        with pytest.raises(ValueError, match="not the first day of a week"):
            Period("week", date(2024, 9, 10))
        with pytest.raises(TypeError, match=r"datetime\.date"):
            Period("day", datetime(2024, 9, 1))  # a datetime is not a day

    def test_repr_round_trips_through_parse(self) -> None:
        period = Period.parse("2024-W37", "week")
        assert repr(period) == "Period.parse('2024-W37', 'week')"


days = st.dates(min_value=date(2001, 1, 1), max_value=date(2099, 12, 31))
types = st.sampled_from(PERIOD_TYPES)


@given(day=days, period_type=types)
def test_property_containing_round_trips_and_contains(day: date, period_type: PeriodType) -> None:
    period = Period.containing(day, period_type)
    assert period.first_day <= day <= period.last_day
    assert period.contains(day)
    assert Period.parse(str(period), period_type) == period
    assert Period.parse_any(str(period)) == period
    assert period.next().previous() == period
    assert period.previous().next() == period
    assert period.previous() < period < period.next()
    assert period.end == period.next().start
    assert period.start < period.end


@given(
    moment=st.datetimes(
        min_value=datetime(2001, 1, 1),
        max_value=datetime(2099, 12, 31),
        timezones=st.sampled_from([UTC, ICT, timezone(timedelta(hours=-5))]),
    ),
    period_type=types,
)
def test_property_aware_moment_falls_in_its_period(
    moment: datetime, period_type: PeriodType
) -> None:
    period = Period.containing(moment, period_type)
    assert period.start <= moment < period.end


@given(day=days)
def test_property_finer_periods_lie_in_their_enclosing_period(day: date) -> None:
    for inner in PERIOD_TYPES:
        for outer in PERIOD_TYPES:
            if period_type_nests(inner, outer):
                small = Period.containing(day, inner)
                big = small.enclosing(outer)
                assert big.start <= small.start
                assert small.end <= big.end
