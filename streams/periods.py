"""Reporting periods: the day, ISO week, month, quarter or year a figure belongs to.

Every event names its period as text (``2024-09-15``, ``2024-W37``, ``2024-09``, ``2024-Q3``,
``2024``). :class:`Period` is the parsed, comparable form: it knows where it starts and ends in
province local time, which period comes next, and which coarser period holds it.

Parsing runs once per event, so it is strict but cheap: patterns are compiled once at import,
and recent results are cached (a :class:`Period` is immutable, so sharing one is safe).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from typing import Final, Literal

#: Province local time. Vietnam keeps UTC+07:00 all year (no daylight saving time).
LOCAL_TZ: Final = timezone(timedelta(hours=7), "ICT")

PeriodType = Literal["day", "week", "month", "quarter", "year"]

#: Every period type, finest first.
PERIOD_TYPES: Final[tuple[PeriodType, ...]] = ("day", "week", "month", "quarter", "year")

#: Years a period may belong to (ISO year for weeks). Anything else is a typo, not a report.
MIN_YEAR: Final = 2000
MAX_YEAR: Final = 2100

# Only ASCII digits: ``\d`` would also take Arabic-Indic or full-width digits, and ``int()``
# would happily read them. ``fullmatch`` (never ``$``) so that a trailing newline is refused.
_PATTERNS: Final[dict[PeriodType, re.Pattern[str]]] = {
    "day": re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})"),
    "week": re.compile(r"([0-9]{4})-W([0-9]{2})"),
    "month": re.compile(r"([0-9]{4})-([0-9]{2})"),
    "quarter": re.compile(r"([0-9]{4})-Q([0-9])"),
    "year": re.compile(r"([0-9]{4})"),
}

_FORMS: Final[dict[PeriodType, str]] = {
    "day": "YYYY-MM-DD, e.g. '2024-09-15'",
    "week": "YYYY-Www with an ISO week 01-53, e.g. '2024-W37'",
    "month": "YYYY-MM with a month 01-12, e.g. '2024-09'",
    "quarter": "YYYY-Qn with n from 1 to 4, e.g. '2024-Q3'",
    "year": "YYYY, e.g. '2024'",
}

# Which period types tile which: a day lies in exactly one week, month, ...; a week does not
# lie in one month, so weekly figures never roll up into months, quarters or years.
_NESTS_IN: Final[dict[PeriodType, frozenset[PeriodType]]] = {
    "day": frozenset(PERIOD_TYPES),
    "week": frozenset({"week"}),
    "month": frozenset({"month", "quarter", "year"}),
    "quarter": frozenset({"quarter", "year"}),
    "year": frozenset({"year"}),
}

_ONE_DAY: Final = timedelta(days=1)
_ONE_WEEK: Final = timedelta(days=7)


def period_type_nests(inner: PeriodType, outer: PeriodType) -> bool:
    """Whether every ``inner`` period lies wholly inside one ``outer`` period.

    ``day`` nests in everything, ``month`` in ``quarter`` and ``year``; ``week`` only in
    ``week``, because ISO weeks straddle month and year boundaries.
    """
    return outer in _NESTS_IN[inner]


def detect_period_type(text: str) -> PeriodType | None:
    """The period type whose string form ``text`` has, or ``None``.

    Only the shape is looked at (``2024-13`` is reported as ``month``); :meth:`Period.parse`
    checks the values.
    """
    for period_type, pattern in _PATTERNS.items():
        if pattern.fullmatch(text):
            return period_type
    return None


def _add_months(day: date, months: int) -> date:
    """The first day of the month ``months`` after the month of ``day``."""
    index = day.year * 12 + (day.month - 1) + months
    return date(index // 12, index % 12 + 1, 1)


def _first_day_of(day: date, period_type: PeriodType) -> date:
    if period_type == "day":
        return day
    if period_type == "week":
        return day - timedelta(days=day.weekday())
    if period_type == "month":
        return day.replace(day=1)
    if period_type == "quarter":
        return date(day.year, (day.month - 1) // 3 * 3 + 1, 1)
    return date(day.year, 1, 1)


def _iso_weeks_in(year: int) -> int:
    # 28 December always lies in the last ISO week of its year.
    return date(year, 12, 28).isocalendar().week


@dataclass(frozen=True, slots=True, repr=False)
class Period:
    """One reporting period: its type and its first day.

    Frozen and hashable. Periods of the same type are ordered by time; comparing periods of
    different types raises :class:`TypeError` (is ``2024-09`` before ``2024-W37``?).
    Build one with :meth:`parse`, :meth:`parse_any` or :meth:`containing`.
    """

    period_type: PeriodType
    first_day: date

    def __post_init__(self) -> None:
        day, period_type = self.first_day, self.period_type
        if period_type not in _NESTS_IN:
            msg = f"unknown period type {period_type!r}: expected one of {', '.join(PERIOD_TYPES)}"
            raise ValueError(msg)
        if type(day) is not date:
            msg = f"first_day must be a datetime.date, received {day!r}"
            raise TypeError(msg)
        if _first_day_of(day, period_type) != day:
            msg = f"{day.isoformat()} is not the first day of a {period_type}"
            raise ValueError(msg)
        year = day.isocalendar().year if period_type == "week" else day.year
        if not MIN_YEAR <= year <= MAX_YEAR:
            msg = f"year {year} is outside {MIN_YEAR}..{MAX_YEAR}"
            raise ValueError(msg)

    # --- construction ------------------------------------------------------------------

    @classmethod
    def parse(cls, text: str, period_type: PeriodType) -> Period:
        """Parse the string form of a ``period_type`` period.

        Strict: no spaces, ASCII digits only, two-digit months, weeks and days, real dates
        and ISO weeks, years 2000..2100. Raises :class:`ValueError` saying which form was
        expected and what was received.
        """
        return _parse(text, period_type)

    @classmethod
    def parse_any(cls, text: str) -> Period:
        """Parse a period whose type is read from its shape (see :func:`detect_period_type`)."""
        period_type = detect_period_type(text) if isinstance(text, str) else None
        if period_type is None:
            forms = "; ".join(_FORMS.values())
            msg = f"{text!r} is not a period: expected one of the forms {forms}"
            raise ValueError(msg)
        return _parse(text, period_type)

    @classmethod
    def containing(cls, moment: datetime | date, period_type: PeriodType) -> Period:
        """The ``period_type`` period that ``moment`` falls in, in province local time.

        An aware datetime is first converted to :data:`LOCAL_TZ` (17:00 UTC on 31 December is
        already the next year in Sơn La); a naive one is taken as local time already.
        """
        if isinstance(moment, datetime):
            if moment.utcoffset() is not None:
                moment = moment.astimezone(LOCAL_TZ)
            moment = moment.date()
        return cls(period_type, _first_day_of(moment, period_type))

    # --- time span -----------------------------------------------------------------------

    @property
    def last_day(self) -> date:
        """The last calendar day of the period (inclusive)."""
        return self._next_first_day() - _ONE_DAY

    @property
    def start(self) -> datetime:
        """Midnight at the start of the first day, province local time."""
        return datetime.combine(self.first_day, time(), tzinfo=LOCAL_TZ)

    @property
    def end(self) -> datetime:
        """Midnight at the start of the next period, province local time (exclusive)."""
        return datetime.combine(self._next_first_day(), time(), tzinfo=LOCAL_TZ)

    def contains(self, moment: datetime | date) -> bool:
        """Whether ``moment`` (read as in :meth:`containing`) falls in this period."""
        return Period.containing(moment, self.period_type) == self

    # --- neighbours ----------------------------------------------------------------------

    def next(self) -> Period:
        """The period right after this one, of the same type."""
        return Period(self.period_type, self._next_first_day())

    def previous(self) -> Period:
        """The period right before this one, of the same type."""
        day, period_type = self.first_day, self.period_type
        if period_type == "day":
            return Period(period_type, day - _ONE_DAY)
        if period_type == "week":
            return Period(period_type, day - _ONE_WEEK)
        months = {"month": 1, "quarter": 3, "year": 12}[period_type]
        return Period(period_type, _add_months(day, -months))

    def enclosing(self, period_type: PeriodType) -> Period:
        """The coarser ``period_type`` period this one lies in (``2024-09`` → ``2024-Q3``).

        Raises :class:`ValueError` when this type does not nest in ``period_type``.
        """
        if not period_type_nests(self.period_type, period_type):
            msg = f"a {self.period_type} does not lie within a single {period_type}"
            raise ValueError(msg)
        return Period.containing(self.first_day, period_type)

    def _next_first_day(self) -> date:
        day, period_type = self.first_day, self.period_type
        if period_type == "day":
            return day + _ONE_DAY
        if period_type == "week":
            return day + _ONE_WEEK
        return _add_months(day, {"month": 1, "quarter": 3, "year": 12}[period_type])

    # --- text and order ------------------------------------------------------------------

    def __str__(self) -> str:
        day, period_type = self.first_day, self.period_type
        if period_type == "day":
            return day.isoformat()
        if period_type == "week":
            iso = day.isocalendar()
            return f"{iso.year:04d}-W{iso.week:02d}"
        if period_type == "month":
            return f"{day.year:04d}-{day.month:02d}"
        if period_type == "quarter":
            return f"{day.year:04d}-Q{(day.month - 1) // 3 + 1}"
        return f"{day.year:04d}"

    def __repr__(self) -> str:
        return f"Period.parse({str(self)!r}, {self.period_type!r})"

    def _same_type(self, other: object) -> Period | None:
        if isinstance(other, Period) and other.period_type == self.period_type:
            return other
        return None

    def __lt__(self, other: object) -> bool:
        same = self._same_type(other)
        if same is None:
            return NotImplemented
        return self.first_day < same.first_day

    def __le__(self, other: object) -> bool:
        same = self._same_type(other)
        if same is None:
            return NotImplemented
        return self.first_day <= same.first_day

    def __gt__(self, other: object) -> bool:
        same = self._same_type(other)
        if same is None:
            return NotImplemented
        return self.first_day > same.first_day

    def __ge__(self, other: object) -> bool:
        same = self._same_type(other)
        if same is None:
            return NotImplemented
        return self.first_day >= same.first_day


def _invalid(text: str, period_type: PeriodType, reason: str | None = None) -> ValueError:
    message = f"invalid {period_type} period: expected {_FORMS[period_type]}, received {text!r}"
    if reason:
        message += f": {reason}"
    return ValueError(message)


@lru_cache(maxsize=8192)
def _parse(text: object, period_type: PeriodType) -> Period:
    pattern = _PATTERNS.get(period_type)
    if pattern is None:
        msg = f"unknown period type {period_type!r}: expected one of {', '.join(PERIOD_TYPES)}"
        raise ValueError(msg)
    if not isinstance(text, str):
        msg = f"a {period_type} period must be text in the form {_FORMS[period_type]}"
        msg += f", received {text!r}"
        raise TypeError(msg)
    match = pattern.fullmatch(text)
    if match is None:
        raise _invalid(text, period_type)
    year = int(match.group(1))
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise _invalid(text, period_type, f"year {year} is outside {MIN_YEAR}..{MAX_YEAR}")
    if period_type == "year":
        return Period("year", date(year, 1, 1))
    number = int(match.group(2))
    if period_type == "quarter":
        if not 1 <= number <= 4:
            raise _invalid(text, period_type, f"quarter {number} does not exist")
        return Period("quarter", date(year, 3 * number - 2, 1))
    if period_type == "week":
        weeks = _iso_weeks_in(year)
        if not 1 <= number <= weeks:
            reason = f"week {number:02d} does not exist: ISO year {year} has {weeks} weeks"
            raise _invalid(text, period_type, reason)
        return Period("week", date.fromisocalendar(year, number, 1))
    if not 1 <= number <= 12:
        raise _invalid(text, period_type, f"month {number:02d} does not exist")
    if period_type == "month":
        return Period("month", date(year, number, 1))
    try:
        day = date(year, number, int(match.group(3)))
    except ValueError:
        raise _invalid(text, period_type, "no such calendar day") from None
    return Period("day", day)
