"""The indicator catalogue as typed, frozen models.

The catalogue is data under version control (``data/*.yaml``); these models say what a valid
entry looks like. Each model checks what it can see alone (types, patterns, ranges, its own
consistency); checks that need several files (does the owner exist, is the parent an area) are
made by :mod:`streams.catalogue.loader`, which also turns every error into one bilingual message.

    Catalogue
    ├── sources     Source          who reports (41 agencies)
    ├── areas       AdminUnit       where: province, districts, communes, with dated parents
    ├── indicators  Indicator       what: unit, owner, period, aggregation, deadline, targets,
    │                               seed history and peer benchmarks
    └── rules       Rule            cross-indicator checks (parts sum to the total, ...)
"""

from __future__ import annotations

import calendar
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from types import MappingProxyType
from typing import Annotated, ClassVar, Final, Literal, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from streams.periods import LOCAL_TZ, MAX_YEAR, MIN_YEAR, Period, PeriodType

# --- vocabularies ----------------------------------------------------------------------------

Level = Literal["province", "district", "commune"]
#: Administrative levels, top first. A parent's level always ranks above its child's.
LEVELS: Final[tuple[Level, ...]] = ("province", "district", "commune")
LEVEL_RANK: Final[Mapping[Level, int]] = MappingProxyType({lvl: i for i, lvl in enumerate(LEVELS)})

SourceKind = Literal[
    "department",  # sở and bodies of that rank (Văn phòng UBND, Thanh tra tỉnh)
    "board",  # ban (Ban Dân tộc, Ban Quản lý các khu công nghiệp)
    "force",  # police, military and border guard commands
    "public_service_unit",  # đơn vị sự nghiệp: broadcaster, newspaper, service centre, college
    "organisation",  # tổ chức đoàn thể, hội
    "vertical",  # cơ quan ngành dọc: central-government agencies in the province
]

Unit = Literal[
    "count",  # things: services, records, transactions, teams
    "people",
    "percent",  # a share, 0..100
    "percent_change",  # a growth rate, may be negative or above 100
    "index",  # price and other indices (base = 100)
    "vnd",
    "billion_vnd",  # tỷ đồng
    "hectare",
    "tonne",
]
#: Units whose values can be added across areas or periods.
SUMMABLE_UNITS: Final[frozenset[Unit]] = frozenset(
    {"count", "people", "vnd", "billion_vnd", "hectare", "tonne"}
)

TimeAggregation = Literal["sum", "last", "average"]
HierarchyAggregation = Literal["sum", "recompute", "none"]
Direction = Literal["at_least", "at_most"]
Severity = Literal["info", "warning", "critical"]
Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
WEEKDAYS: Final[tuple[Weekday, ...]] = (
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
)

#: Area codes: lowercase ASCII slugs joined by hyphens, optionally ``namespace.slug`` for
#: communes (``son-la``, ``tp-son-la``, ``moc-chau.chieng-son``, ``son-la.to-hieu``).
AREA_CODE_PATTERN: Final = r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*(?:\.[a-z][a-z0-9]*(?:-[a-z0-9]+)*)?$"
CODE_PATTERN: Final = r"^[a-z][a-z0-9_]*$"

Code = Annotated[str, Field(pattern=CODE_PATTERN, max_length=64)]
AreaCode = Annotated[str, Field(pattern=AREA_CODE_PATTERN, max_length=100)]
#: A name or summary: no leading or trailing blanks.
Text = Annotated[str, Field(min_length=1, max_length=300, pattern=r"^\S(?:.*\S)?$")]
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Year = Annotated[int, Field(strict=True, ge=MIN_YEAR, le=MAX_YEAR)]

_DATE_TEXT: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_CLOCK_TEXT: Final = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")


def _to_day(value: object) -> object:
    # YAML gives dates as ``date``; a quoted ISO date is fine too. Pydantic's lax mode would
    # also read an integer as a Unix timestamp, which is never what a catalogue author meant.
    if isinstance(value, datetime):
        msg = f"expected a date YYYY-MM-DD without a time, received {value!r}"
        raise ValueError(msg)
    if isinstance(value, date):
        return value
    if isinstance(value, str) and _DATE_TEXT.fullmatch(value):
        return date.fromisoformat(value)
    msg = f"expected a date YYYY-MM-DD, received {value!r}"
    raise ValueError(msg)


def _to_clock(value: object) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        # YAML 1.1 reads an unquoted 17:00 as the base-60 integer 1020.
        msg = f'write the time as a quoted "HH:MM" string (YAML read {value!r} as a number)'
        raise ValueError(msg)
    match = _CLOCK_TEXT.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        msg = f'expected a time "HH:MM" (00:00-23:59), received {value!r}'
        raise ValueError(msg)
    return time(int(match.group(1)), int(match.group(2)))


def _to_period(value: object) -> Period:
    if isinstance(value, Period):
        return value
    if isinstance(value, datetime | bool):
        msg = f"expected a period such as '2024-Q3', received {value!r}"
        raise ValueError(msg)
    # YAML reads 2024 as an int and 2024-09-15 as a date; both are unambiguous periods.
    if isinstance(value, int):
        value = str(value)
    elif isinstance(value, date):
        value = value.isoformat()
    if not isinstance(value, str):
        msg = f"expected a period such as '2024-Q3', received {value!r}"
        raise ValueError(msg)
    return Period.parse_any(value)


Day = Annotated[date, BeforeValidator(_to_day)]
Clock = Annotated[
    time,
    PlainValidator(_to_clock),
    PlainSerializer(lambda value: value.strftime("%H:%M"), return_type=str),
]
#: A period in its string form; its type is read from the shape (``2024`` is a year).
PeriodField = Annotated[Period, PlainValidator(_to_period), PlainSerializer(str, return_type=str)]


# --- consistency issues ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Issue:
    """One inconsistency inside an entry, described for the person who will fix the file.

    ``field`` is relative to the entry (``history[2].value``); messages are short clauses,
    Vietnamese and English; ``expected`` and ``received`` are shown as written.
    """

    field: str
    message_vi: str
    message_en: str
    expected: str
    received: str


#: Pydantic error type of an :class:`Issue` list; the loader unpacks it.
ISSUES_ERROR_TYPE: Final = "catalogue_inconsistent"


def _raise_issues(issues: list[Issue]) -> None:
    if issues:
        summary = "; ".join(f"{issue.field}: {issue.message_en}" for issue in issues)
        raise PydanticCustomError(
            ISSUES_ERROR_TYPE, "{summary}", {"summary": summary, "issues": tuple(issues)}
        )


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


# --- sources ---------------------------------------------------------------------------------


class Source(_Model):
    """An agency that reports to the IOC and owns the indicators it reports."""

    code: Code
    name_vi: Text
    name_en: Text
    kind: SourceKind


# --- administrative units --------------------------------------------------------------------


def _covers(start: date | None, end: date | None, day: date) -> bool:
    return (start is None or start <= day) and (end is None or day <= end)


def _show(day: date | None) -> str:
    return "(open)" if day is None else day.isoformat()


class ParentLink(_Model):
    """``parent`` is the unit's parent from ``valid_from`` to ``valid_to`` (both inclusive).

    An absent bound is open: since before the records, or still valid.
    """

    parent: AreaCode
    valid_from: Day | None = None
    valid_to: Day | None = None

    def covers(self, day: date) -> bool:
        """Whether the link holds on ``day``."""
        return _covers(self.valid_from, self.valid_to, day)


class AdminUnit(_Model):
    """A province, district or commune, with the dates it existed and its dated parents.

    A unit's level never changes; which units exist, and under which parent, does (the July
    2025 reform abolished districts and put communes directly under the province). The parent
    links must cover the unit's whole life without gaps or overlaps. ``successor`` is the unit
    that took over the whole territory the day after ``valid_to``, when there is one.
    """

    code: AreaCode
    name_vi: Text
    name_en: Text
    level: Level
    official_code: Annotated[str, Field(pattern=r"^[0-9]{2,5}$")] | None = None
    valid_from: Day | None = None
    valid_to: Day | None = None
    parents: tuple[ParentLink, ...] = ()
    successor: AreaCode | None = None

    def exists_on(self, day: date) -> bool:
        """Whether the unit exists on ``day``."""
        return _covers(self.valid_from, self.valid_to, day)

    def parent_on(self, day: date) -> str | None:
        """The parent on ``day``, or ``None`` (the province, or a day the unit did not exist)."""
        for link in self.parents:
            if link.covers(day):
                return link.parent
        return None

    def overlaps(self, first_day: date, last_day: date) -> bool:
        """Whether the unit existed on at least one day from ``first_day`` to ``last_day``."""
        return (self.valid_from is None or self.valid_from <= last_day) and (
            self.valid_to is None or first_day <= self.valid_to
        )

    @model_validator(mode="after")
    def _check(self) -> Self:
        _raise_issues(list(self._issues()))
        return self

    def _issues(self) -> Iterator[Issue]:
        if self.valid_from and self.valid_to and self.valid_from > self.valid_to:
            yield Issue(
                "valid_to",
                "ngày kết thúc trước ngày bắt đầu",
                "ends before it starts",
                f"a date on or after valid_from {self.valid_from}",
                str(self.valid_to),
            )
        if self.successor is not None:
            if self.valid_to is None:
                yield Issue(
                    "successor",
                    "đơn vị còn hiệu lực thì không có đơn vị kế thừa",
                    "a unit that still exists has no successor",
                    "valid_to set, or no successor",
                    self.successor,
                )
            if self.successor == self.code:
                yield Issue(
                    "successor",
                    "đơn vị không thể kế thừa chính nó",
                    "a unit cannot succeed itself",
                    "another unit",
                    self.successor,
                )
        if self.level == "province":
            if self.parents:
                yield Issue(
                    "parents",
                    "cấp tỉnh không có đơn vị cấp trên",
                    "a province has no parent",
                    "no parents",
                    ", ".join(link.parent for link in self.parents),
                )
            return
        if not self.parents:
            yield Issue(
                "parents",
                "thiếu đơn vị cấp trên",
                "a district or commune needs at least one parent link",
                "at least one {parent, valid_from, valid_to}",
                "none",
            )
            return
        yield from self._link_issues()

    def _link_issues(self) -> Iterator[Issue]:
        links = self.parents
        for index, link in enumerate(links):
            where = f"parents[{index}]"
            if link.parent == self.code:
                yield Issue(
                    f"{where}.parent",
                    "đơn vị không thể là cấp trên của chính nó",
                    "a unit cannot be its own parent",
                    "another unit",
                    link.parent,
                )
            if link.valid_from and link.valid_to and link.valid_from > link.valid_to:
                yield Issue(
                    f"{where}.valid_to",
                    "liên kết kết thúc trước khi bắt đầu",
                    "the link ends before it starts",
                    f"a date on or after {link.valid_from}",
                    str(link.valid_to),
                )
        if links[0].valid_from != self.valid_from:
            yield Issue(
                "parents[0].valid_from",
                "liên kết đầu tiên phải bắt đầu cùng ngày với đơn vị",
                "the first link must start when the unit starts",
                _show(self.valid_from),
                _show(links[0].valid_from),
            )
        last = len(links) - 1
        if links[last].valid_to != self.valid_to:
            yield Issue(
                f"parents[{last}].valid_to",
                "liên kết cuối cùng phải kết thúc cùng ngày với đơn vị",
                "the last link must end when the unit ends",
                _show(self.valid_to),
                _show(links[last].valid_to),
            )
        for index in range(1, len(links)):
            before, after = links[index - 1], links[index]
            expected = None if before.valid_to is None else before.valid_to + timedelta(days=1)
            if expected is None or after.valid_from != expected:
                yield Issue(
                    f"parents[{index}].valid_from",
                    "các liên kết phải nối tiếp nhau, không chồng lấn, không đứt quãng",
                    "links must follow each other in date order without gap or overlap",
                    f"the day after parents[{index - 1}].valid_to ({_show(expected)})",
                    _show(after.valid_from),
                )


# --- indicators ------------------------------------------------------------------------------


class ValidRange(_Model):
    """The values an indicator can take at all (a value outside is an error, not an outlier)."""

    min: Number
    max: Number | None = None

    def contains(self, value: float) -> bool:
        """Whether ``value`` is within the range (bounds included)."""
        return self.min <= value and (self.max is None or value <= self.max)

    def __str__(self) -> str:
        return f"{self.min:g}..{'' if self.max is None else format(self.max, 'g')}"


class Ratio(_Model):
    """A rate defined as ``numerator / denominator * factor`` over two indicators.

    Rolling a rate up the hierarchy (or over time) means summing its components and
    recomputing, never averaging the rates.
    """

    numerator: Code
    denominator: Code
    factor: Annotated[Number, Field(gt=0)] = 100.0

    def compute(self, numerator: float, denominator: float) -> float | None:
        """The rate, or ``None`` when the denominator is zero."""
        if denominator == 0:
            return None
        return numerator / denominator * self.factor


class _Deadline(_Model):
    period_type: ClassVar[PeriodType]
    at: Clock

    def due_at(self, period: Period) -> datetime:
        """When the figure for ``period`` is due: an aware datetime, province local time."""
        if period.period_type != self.period_type:
            msg = (
                f"a {type(self).__name__} applies to {self.period_type} periods,"
                f" received the {period.period_type} period {period}"
            )
            raise ValueError(msg)
        return datetime.combine(self._due_day(period), self.at, tzinfo=LOCAL_TZ)

    def _due_day(self, period: Period) -> date:
        raise NotImplementedError

    def describe(self) -> str:
        """The rule in words, Vietnamese then English (for people: CLI, wall page)."""
        raise NotImplementedError


class DailyDeadline(_Deadline):
    """Daily figures: due ``days_after`` days after the day (0: the same day) at ``at``."""

    period_type: ClassVar[PeriodType] = "day"
    kind: Literal["daily"]
    days_after: Annotated[int, Field(strict=True, ge=0, le=7)] = 0

    def _due_day(self, period: Period) -> date:
        return period.first_day + timedelta(days=self.days_after)

    def describe(self) -> str:
        """The rule in words, Vietnamese then English."""
        at = self.at.strftime("%H:%M")
        if self.days_after == 0:
            return f"hằng ngày trước {at} / daily by {at}"
        return (
            f"trước {at}, {self.days_after} ngày sau ngày số liệu / "
            f"by {at}, {self.days_after} day(s) after the day"
        )


class WeeklyDeadline(_Deadline):
    """Weekly figures: due on ``weekday`` of the following week at ``at``."""

    period_type: ClassVar[PeriodType] = "week"
    kind: Literal["weekly"]
    weekday: Weekday

    def _due_day(self, period: Period) -> date:
        return period.end.date() + timedelta(days=WEEKDAYS.index(self.weekday))

    def describe(self) -> str:
        """The rule in words, Vietnamese then English."""
        at = self.at.strftime("%H:%M")
        thu = ("thứ Hai", "thứ Ba", "thứ Tư", "thứ Năm", "thứ Sáu", "thứ Bảy", "Chủ nhật")
        vi = thu[WEEKDAYS.index(self.weekday)]
        return f"{vi} tuần sau, trước {at} / {self.weekday.title()} of the next week by {at}"


class MonthlyDeadline(_Deadline):
    """Monthly figures: due on day ``day`` of the following month at ``at``."""

    period_type: ClassVar[PeriodType] = "month"
    kind: Literal["monthly"]
    day: Annotated[int, Field(strict=True, ge=1, le=28)]

    def _due_day(self, period: Period) -> date:
        return period.end.date().replace(day=self.day)

    def describe(self) -> str:
        """The rule in words, Vietnamese then English."""
        at = self.at.strftime("%H:%M")
        return f"ngày {self.day} tháng sau, trước {at} / day {self.day} of the next month by {at}"


class QuarterlyDeadline(_Deadline):
    """Quarterly figures: due on day ``day`` of the month after the quarter at ``at``."""

    period_type: ClassVar[PeriodType] = "quarter"
    kind: Literal["quarterly"]
    day: Annotated[int, Field(strict=True, ge=1, le=28)]

    def _due_day(self, period: Period) -> date:
        return period.end.date().replace(day=self.day)

    def describe(self) -> str:
        """The rule in words, Vietnamese then English."""
        at = self.at.strftime("%H:%M")
        return (
            f"ngày {self.day} tháng đầu quý sau, trước {at} / "
            f"day {self.day} of the month after the quarter by {at}"
        )


class YearlyDeadline(_Deadline):
    """Yearly figures: due on ``month``/``day`` of the following year at ``at``."""

    period_type: ClassVar[PeriodType] = "year"
    kind: Literal["yearly"]
    month: Annotated[int, Field(strict=True, ge=1, le=12)]
    day: Annotated[int, Field(strict=True, ge=1, le=31)]

    @model_validator(mode="after")
    def _real_day(self) -> Self:
        # Checked against a common year, so 29 February (missing three years in four) fails.
        last = calendar.monthrange(2001, self.month)[1]
        if self.day > last:
            _raise_issues(
                [
                    Issue(
                        "day",
                        "ngày không tồn tại trong tháng (mọi năm)",
                        "no such day in that month every year",
                        f"1..{last} for month {self.month}",
                        str(self.day),
                    )
                ]
            )
        return self

    def _due_day(self, period: Period) -> date:
        return date(period.first_day.year + 1, self.month, self.day)

    def describe(self) -> str:
        """The rule in words, Vietnamese then English."""
        at = self.at.strftime("%H:%M")
        return (
            f"ngày {self.day}/{self.month} năm sau, trước {at} / "
            f"{self.day}/{self.month} of the next year by {at}"
        )


Deadline = Annotated[
    DailyDeadline | WeeklyDeadline | MonthlyDeadline | QuarterlyDeadline | YearlyDeadline,
    Field(discriminator="kind"),
]


class Target(_Model):
    """A value the province committed to reach by the end of ``year``, and where it says so."""

    year: Year
    value: Number
    direction: Direction
    basis_vi: Text
    basis_en: Text
    area: AreaCode = "son-la"

    def is_met(self, value: float) -> bool:
        """Whether ``value`` meets the target."""
        return value >= self.value if self.direction == "at_least" else value <= self.value


class HistoryPoint(_Model):
    """A real published figure for one area and period, with the document it comes from."""

    area: AreaCode
    period: PeriodField
    value: Number
    source_doc: Annotated[str, Field(min_length=1, max_length=100)]
    note: Text | None = None


class Benchmark(_Model):
    """A peer province's published figure for the same indicator (context, not Sơn La data).

    ``qualifier`` keeps what the source said: "trên 95%" is ``more_than`` 95, "từ 70%" is
    ``at_least`` 70. ``level`` is set when the figure describes one administrative level.
    """

    province: AreaCode
    value: Number
    period: PeriodField
    qualifier: Literal["exact", "at_least", "more_than"] = "exact"
    level: Level | None = None
    source_doc: Annotated[str, Field(min_length=1, max_length=100)]
    note: Text | None = None


class Indicator(_Model):
    """One reporting indicator: what is measured, by whom, how often, how it rolls up.

    ``time_aggregation`` combines consecutive periods of one area (a monthly ``sum`` of
    daily counts, the ``last`` of a cumulative total); ``hierarchy_aggregation`` combines the
    children of one area (``sum`` of communes, ``recompute`` a rate from its summed
    components, ``none`` when the figure is only meaningful where it is reported).
    """

    code: Code
    name_vi: Text
    name_en: Text
    unit: Unit
    owner: Code
    period_type: PeriodType
    levels: Annotated[tuple[Level, ...], Field(min_length=1)]
    time_aggregation: TimeAggregation
    hierarchy_aggregation: HierarchyAggregation
    ratio: Ratio | None = None
    valid_range: ValidRange
    deadline: Deadline
    targets: tuple[Target, ...] = ()
    outlier_threshold: Annotated[Number, Field(gt=0)] = 3.5
    max_change_pct: Annotated[Number, Field(gt=0)] | None = None
    history: tuple[HistoryPoint, ...] = ()
    benchmarks: tuple[Benchmark, ...] = ()

    @property
    def summable(self) -> bool:
        """Whether values of this indicator can be added (its unit is a quantity)."""
        return self.unit in SUMMABLE_UNITS

    def due_at(self, period: Period) -> datetime:
        """When the figure for ``period`` is due (see :attr:`deadline`)."""
        return self.deadline.due_at(period)

    def parse_period(self, text: str) -> Period:
        """Parse ``text`` as a period of this indicator's type (raises :class:`ValueError`)."""
        return Period.parse(text, self.period_type)

    @model_validator(mode="after")
    def _check(self) -> Self:
        _raise_issues(list(self._issues()))
        return self

    def _issues(self) -> Iterator[Issue]:
        yield from self._shape_issues()
        yield from self._value_issues()

    def _shape_issues(self) -> Iterator[Issue]:
        if len(set(self.levels)) != len(self.levels):
            yield Issue(
                "levels",
                "cấp hành chính bị lặp",
                "a level is listed twice",
                "distinct levels",
                ", ".join(self.levels),
            )
        low, high = self.valid_range.min, self.valid_range.max
        if high is not None and low > high:
            yield Issue(
                "valid_range",
                "min lớn hơn max",
                "min is above max",
                "min <= max",
                str(self.valid_range),
            )
        if self.unit == "percent" and (low < 0 or high is None or high > 100):
            yield Issue(
                "valid_range",
                "tỷ lệ phần trăm phải nằm trong 0..100",
                "a percent share must stay within 0..100",
                "min >= 0 and max <= 100",
                str(self.valid_range),
            )
        if not self.summable:
            for field in ("time_aggregation", "hierarchy_aggregation"):
                if getattr(self, field) == "sum":
                    yield Issue(
                        field,
                        f"không thể cộng các giá trị đơn vị '{self.unit}'",
                        f"values in '{self.unit}' cannot be added",
                        "last or average" if field == "time_aggregation" else "recompute or none",
                        "sum",
                    )
        if self.hierarchy_aggregation == "recompute" and self.ratio is None:
            yield Issue(
                "ratio",
                "tổng hợp 'recompute' cần định nghĩa tỷ số",
                "'recompute' needs a ratio to recompute from",
                "{numerator, denominator, factor}",
                "none",
            )
        if self.ratio is not None:
            parts = (self.ratio.numerator, self.ratio.denominator)
            if self.ratio.numerator == self.ratio.denominator or self.code in parts:
                yield Issue(
                    "ratio",
                    "tử số và mẫu số phải là hai chỉ tiêu khác nhau và khác chỉ tiêu này",
                    "numerator and denominator must be two other indicators",
                    "two distinct codes other than this one",
                    " / ".join(parts),
                )
        if self.deadline.period_type != self.period_type:
            yield Issue(
                "deadline.kind",
                "hạn báo cáo không khớp kỳ báo cáo",
                "the deadline is for another period type",
                _DEADLINE_KIND[self.period_type],
                self.deadline.kind,
            )

    def _value_issues(self) -> Iterator[Issue]:
        seen: set[tuple[str, Period]] = set()
        for index, point in enumerate(self.history):
            where = f"history[{index}]"
            if point.period.period_type != self.period_type:
                yield Issue(
                    f"{where}.period",
                    "kỳ báo cáo không đúng loại của chỉ tiêu",
                    f"the period is not a {self.period_type}",
                    f"a {self.period_type} period",
                    str(point.period),
                )
            if not self.valid_range.contains(point.value):
                yield _out_of_range(f"{where}.value", self.valid_range, point.value)
            if (point.area, point.period) in seen:
                yield Issue(
                    where,
                    "số liệu bị lặp cho cùng địa bàn và kỳ",
                    "two figures for the same area and period",
                    "one figure per (area, period)",
                    f"{point.area} {point.period}",
                )
            seen.add((point.area, point.period))
        target_keys: set[tuple[int, str]] = set()
        for index, target in enumerate(self.targets):
            if not self.valid_range.contains(target.value):
                yield _out_of_range(f"targets[{index}].value", self.valid_range, target.value)
            if (target.year, target.area) in target_keys:
                yield Issue(
                    f"targets[{index}]",
                    "hai mục tiêu cho cùng năm và địa bàn",
                    "two targets for the same year and area",
                    "one target per (year, area)",
                    f"{target.year} {target.area}",
                )
            target_keys.add((target.year, target.area))
        for index, benchmark in enumerate(self.benchmarks):
            if not self.valid_range.contains(benchmark.value):
                yield _out_of_range(f"benchmarks[{index}].value", self.valid_range, benchmark.value)


_DEADLINE_KIND: Final[Mapping[PeriodType, str]] = MappingProxyType(
    {
        "day": "daily",
        "week": "weekly",
        "month": "monthly",
        "quarter": "quarterly",
        "year": "yearly",
    }
)


def _out_of_range(field: str, valid_range: ValidRange, value: float) -> Issue:
    return Issue(
        field,
        "giá trị nằm ngoài khoảng hợp lệ",
        "the value is outside valid_range",
        str(valid_range),
        f"{value:g}",
    )


# --- rules -----------------------------------------------------------------------------------


class Rule(_Model):
    """A check across indicators of one area and period: ``sum(left) op sum(right)``.

    ``tolerance`` is absolute: ``==`` holds when the two sides differ by at most that much.
    """

    code: Code
    left: Annotated[tuple[Code, ...], Field(min_length=1)]
    op: Literal["==", "<=", ">="]
    right: Annotated[tuple[Code, ...], Field(min_length=1)]
    tolerance: Annotated[Number, Field(ge=0)] = 0.0
    severity: Severity
    summary_vi: Text
    summary_en: Text

    @property
    def indicators(self) -> tuple[str, ...]:
        """Every indicator the rule reads, left side first."""
        return self.left + self.right

    def gap(self, values: Mapping[str, float]) -> float:
        """``sum(left) - sum(right)``; raises :class:`KeyError` if a value is missing."""
        return math.fsum(values[code] for code in self.left) - math.fsum(
            values[code] for code in self.right
        )

    def holds(self, values: Mapping[str, float]) -> bool:
        """Whether the rule holds for ``values`` (indicator code → value)."""
        gap = self.gap(values)
        if self.op == "==":
            return abs(gap) <= self.tolerance
        if self.op == "<=":
            return gap <= self.tolerance
        return gap >= -self.tolerance

    @model_validator(mode="after")
    def _check(self) -> Self:
        codes = self.indicators
        if len(set(codes)) != len(codes):
            _raise_issues(
                [
                    Issue(
                        "right",
                        "một chỉ tiêu xuất hiện hai lần trong quy tắc",
                        "an indicator appears twice in the rule",
                        "each indicator once",
                        ", ".join(codes),
                    )
                ]
            )
        return self


# --- the catalogue ---------------------------------------------------------------------------


#: (area, day) answers of :meth:`Catalogue.parent_of` remembered at most.
PARENTS_KEPT = 65_536


def _as_day(on: date | datetime) -> date:
    if isinstance(on, datetime):
        return (on.astimezone(LOCAL_TZ) if on.utcoffset() is not None else on).date()
    return on


class Catalogue:
    """The whole catalogue: sources, areas, indicators and rules, with lookups.

    Build it with :func:`streams.catalogue.load_catalogue`, which checks every file and every
    reference between them first. Mappings are read-only. Hierarchy lookups take the day to
    look at (a ``datetime`` is read in province local time); an unknown area code raises
    :class:`KeyError`.
    """

    def __init__(
        self,
        *,
        sources: Iterable[Source],
        areas: Iterable[AdminUnit],
        indicators: Iterable[Indicator],
        rules: Iterable[Rule],
    ) -> None:
        self._sources = MappingProxyType({source.code: source for source in sources})
        self._areas = MappingProxyType({unit.code: unit for unit in areas})
        self._indicators = MappingProxyType({item.code: item for item in indicators})
        self._rules = MappingProxyType({rule.code: rule for rule in rules})
        by_owner: dict[str, list[Indicator]] = {code: [] for code in self._sources}
        for indicator in self._indicators.values():
            by_owner.setdefault(indicator.owner, []).append(indicator)
        self._by_owner = {code: tuple(items) for code, items in by_owner.items()}
        children: dict[str, list[tuple[str, ParentLink]]] = {}
        predecessors: dict[str, list[str]] = {}
        for unit in self._areas.values():
            for link in unit.parents:
                children.setdefault(link.parent, []).append((unit.code, link))
            if unit.successor is not None:
                predecessors.setdefault(unit.successor, []).append(unit.code)
        self._children = {
            code: tuple(sorted(links, key=lambda item: item[0])) for code, links in children.items()
        }
        self._predecessors = {code: tuple(sorted(codes)) for code, codes in predecessors.items()}
        rules_for: dict[str, list[Rule]] = {}
        for rule in self._rules.values():
            for code in rule.indicators:
                rules_for.setdefault(code, []).append(rule)
        self._rules_for = {code: tuple(items) for code, items in rules_for.items()}
        self._parents: dict[tuple[str, date], str | None] = {}

    def __repr__(self) -> str:
        return (
            f"<Catalogue: {len(self._sources)} sources, {len(self._areas)} areas,"
            f" {len(self._indicators)} indicators, {len(self._rules)} rules>"
        )

    @property
    def sources(self) -> Mapping[str, Source]:
        """Sources by code."""
        return self._sources

    @property
    def areas(self) -> Mapping[str, AdminUnit]:
        """Administrative units by code, past and present."""
        return self._areas

    @property
    def indicators(self) -> Mapping[str, Indicator]:
        """Indicators by code."""
        return self._indicators

    @property
    def rules(self) -> Mapping[str, Rule]:
        """Cross-indicator rules by code."""
        return self._rules

    # --- sources, indicators, rules ------------------------------------------------------

    def indicators_of(self, source: str) -> tuple[Indicator, ...]:
        """The indicators ``source`` owns (and alone may report), in file order."""
        try:
            return self._by_owner[source]
        except KeyError:
            msg = f"nguồn dữ liệu không tồn tại / unknown source {source!r}"
            raise KeyError(msg) from None

    def rules_for(self, indicator: str) -> tuple[Rule, ...]:
        """The rules that read ``indicator``."""
        return self._rules_for.get(indicator, ())

    # --- administrative hierarchy --------------------------------------------------------

    def _unit(self, area: str) -> AdminUnit:
        try:
            return self._areas[area]
        except KeyError:
            msg = f"địa bàn không tồn tại / unknown area {area!r}"
            raise KeyError(msg) from None

    def level_of(self, area: str) -> Level:
        """The administrative level of ``area`` (it never changes)."""
        return self._unit(area).level

    def area_exists(self, area: str, on: date | datetime) -> bool:
        """Whether ``area`` exists on the day ``on``."""
        return self._unit(area).exists_on(_as_day(on))

    def parent_of(self, area: str, on: date | datetime) -> str | None:
        """The parent of ``area`` on ``on``: ``None`` for the province, or on a day the unit
        did not exist."""
        day = _as_day(on)
        key = (area, day)
        try:
            return self._parents[key]
        except KeyError:
            pass
        parent = self._unit(area).parent_on(day)  # raises for an unknown area: not kept
        # The worker asks this for every report; the hierarchy never changes. Bounded, as
        # a long-running worker sees ever more days.
        if len(self._parents) >= PARENTS_KEPT:
            self._parents.clear()
        self._parents[key] = parent
        return parent

    def ancestors(self, area: str, on: date | datetime) -> list[str]:
        """Parent, grandparent, ... of ``area`` on ``on``, nearest first."""
        day = _as_day(on)
        result: list[str] = []
        parent = self._unit(area).parent_on(day)
        while parent is not None:
            result.append(parent)
            parent = self._unit(parent).parent_on(day)
        return result

    def children_of(self, area: str, on: date | datetime) -> list[str]:
        """The units directly under ``area`` on ``on``, sorted by code."""
        self._unit(area)
        day = _as_day(on)
        return [code for code, link in self._children.get(area, ()) if link.covers(day)]

    def descendants_of(
        self, area: str, on: date | datetime, level: Level | None = None
    ) -> list[str]:
        """Every unit below ``area`` on ``on`` (only those of ``level`` if given), sorted."""
        day = _as_day(on)
        found: list[str] = []
        pending = self.children_of(area, day)
        while pending:
            code = pending.pop()
            found.append(code)
            pending.extend(self.children_of(code, day))
        return sorted(code for code in found if level is None or self._areas[code].level == level)

    def areas_on(self, on: date | datetime, level: Level | None = None) -> list[str]:
        """Every unit existing on ``on`` (only those of ``level`` if given), sorted by code."""
        day = _as_day(on)
        return sorted(
            code
            for code, unit in self._areas.items()
            if unit.exists_on(day) and (level is None or unit.level == level)
        )

    def successor_of(self, area: str) -> str | None:
        """The unit that took over all of ``area`` when it ended, if any."""
        return self._unit(area).successor

    def predecessors_of(self, area: str) -> tuple[str, ...]:
        """The units that ``area`` took over whole when it was formed, sorted."""
        self._unit(area)
        return self._predecessors.get(area, ())
