"""Simulated traffic from every source: what the agencies would send, and when.

Two parts, kept apart so the first can be tested and benchmarked without Kafka:

- :func:`generate_events` (pure): catalogue + seed + a simulated window → emissions
  (:class:`Emission`) in simulated-time order, each one message on one source's feed topic,
  valid or carrying an injected fault (:class:`Faults`);
- :func:`run` (the pacer): waits in real time, through a :class:`~ioc.clock.Clock`, until each
  emission is due, sends those due together in one batch, and stops on ``max_events``,
  ``duration``, a stop event or Ctrl-C.

Schedule. Every indicator is reported once per period of its type, for the province and for
every district and commune existing on the period's last day at the levels it is reported at.
A report is sent shortly before its deadline (most agencies report at the last moment, so send
times lean towards the deadline); a late one some time after it.

Values. The anchor is the indicator's latest province figure in ``history`` (a district figure
scaled up by the district's share when that is all there is); without one it is derived from
the targets, else from ``valid_range`` (see :func:`_generic_anchor`). Counts and totals grow a
few percent a year (faster when a target must be reached), shares drift gently towards their
target, and every period adds noise. Summable indicators are split over the areas with fixed
per-area weights, so districts (or, since July 2025, communes) add up to the province exactly;
the sampled communes of the three-tier system get their share of their district. Rates with a
``ratio`` are sent with numerator and denominator, which are the very figures their component
indicators send (summed over the rate's period when the components are reported more often).
Indicators tied by a rule (``total == a + b``, ``part <= whole``) are derived from each other
so that clean traffic keeps every rule: only injected faults break one.

Determinism. Every draw comes from a ``random.Random`` seeded by the seed, a purpose, the
indicator and the period, so a report is the same whatever window produces it: a backfill
followed by a live run joins without gap or repeat, and event ids are reproducible.

Cost. Generation must keep up with a benchmark that pre-loads a million events (over 100,000
events a second on two cores): the per-event loop works on Unix times and tuples, an
:class:`Emission` builds its event and its bytes only when asked, and a period none of whose
reports falls in the window never has its values computed.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Final, Literal, NamedTuple, Protocol

import orjson

from ioc.errors import ConfigurationError
from streams.catalogue import Catalogue, Indicator, Level
from streams.events import SCHEMA_VERSION, IndicatorEvent
from streams.periods import LOCAL_TZ, MAX_YEAR, MIN_YEAR, Period, PeriodType, period_type_nests

if TYPE_CHECKING:
    from ioc.clock import Clock
    from streams.topics import Topics

# --- public vocabulary -----------------------------------------------------------------------

Fault = Literal["anomaly", "late", "malformed", "duplicate", "correction", "spoof"]
#: Every fault, in the order its probability band is laid out (see :meth:`Faults.pick`).
FAULTS: Final[tuple[Fault, ...]] = (
    "anomaly",
    "late",
    "malformed",
    "duplicate",
    "correction",
    "spoof",
)
#: How an emission travels: ``event`` through ``send_many``, ``raw`` bytes through ``send_raw``.
Kind = Literal["event", "raw"]
FaultPreset = Literal["none", "demo"]

_FAULT_VI: Final[Mapping[Fault, str]] = {
    "anomaly": "bất thường",
    "late": "trễ hạn",
    "malformed": "sai định dạng",
    "duplicate": "trùng lặp",
    "correction": "đính chính",
    "spoof": "giả mạo nguồn",
}


@dataclass(frozen=True)
class Faults:
    """What to inject, as the share of reports affected by each fault.

    Faults are exclusive: one uniform draw per report picks at most one, so the rates must add
    up to at most 1. ``silent`` sources send nothing at all.
    """

    anomaly: float = 0.0
    late: float = 0.0
    malformed: float = 0.0
    duplicate: float = 0.0
    correction: float = 0.0
    spoof: float = 0.0
    silent: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        for name in FAULTS:
            rate = getattr(self, name)
            if not (isinstance(rate, int | float) and 0.0 <= rate <= 1.0):
                raise ConfigurationError(
                    f"--{name}-rate phải nằm trong 0..1, nhận được {rate!r} / "
                    f"--{name}-rate must be within 0..1, received {rate!r}"
                )
        total = math.fsum(getattr(self, name) for name in FAULTS)
        if total > 1.0:
            raise ConfigurationError(
                f"Tổng các tỷ lệ lỗi là {total:g}, phải không quá 1 (mỗi báo cáo nhiều nhất một "
                f"lỗi) / The fault rates add up to {total:g}; they must not exceed 1 (at most "
                "one fault per report)"
            )

    @classmethod
    def preset(cls, name: FaultPreset) -> Faults:
        """``none``: clean traffic; ``demo``: a few of each fault and the ``sbv`` source silent."""
        if name == "demo":
            return cls(
                anomaly=0.01,
                late=0.05,
                malformed=0.005,
                duplicate=0.01,
                correction=0.01,
                spoof=0.002,
                silent=frozenset({"sbv"}),
            )
        return cls()

    def pick(self, draw: float) -> Fault | None:
        """The fault a uniform ``draw`` in [0, 1) falls on, or ``None`` for a clean report."""
        edge = 0.0
        for name in FAULTS:
            edge += getattr(self, name)
            if draw < edge:
                return name
        return None


class _EventSpec(NamedTuple):
    """An event's fields, cheap to make: the event and its bytes are built when needed."""

    id_bits: int  # the 128 bits of a version-4 UUID
    source: str
    indicator: str
    area: str
    period: str
    value: float
    numerator: float | None
    denominator: float | None
    observed: float  # Unix time
    sent: float

    def wire_fields(self) -> dict[str, object]:
        """The JSON object :meth:`IndicatorEvent.to_json` would write, in its field order."""
        digits = f"{self.id_bits:032x}"
        fields: dict[str, object] = {
            "schema_version": SCHEMA_VERSION,
            "event_id": f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-"
            f"{digits[20:]}",
            "source": self.source,
            "indicator": self.indicator,
            "area": self.area,
            "period": self.period,
            "value": self.value,
        }
        if self.numerator is not None:
            fields["numerator"] = self.numerator
        if self.denominator is not None:
            fields["denominator"] = self.denominator
        fields["observed_at"] = datetime.fromtimestamp(self.observed, LOCAL_TZ)
        fields["sent_at"] = datetime.fromtimestamp(self.sent, LOCAL_TZ)
        return fields

    def event(self) -> IndicatorEvent:
        """The validated event."""
        return IndicatorEvent(
            event_id=uuid.UUID(int=self.id_bits),
            source=self.source,
            indicator=self.indicator,
            area=self.area,
            period=self.period,
            value=self.value,
            numerator=self.numerator,
            denominator=self.denominator,
            observed_at=datetime.fromtimestamp(self.observed, LOCAL_TZ),
            sent_at=datetime.fromtimestamp(self.sent, LOCAL_TZ),
        )


class Emission:
    """One message the simulator sends: when, to which feed, what, and which fault it carries.

    ``event`` is set for everything that parses as an event (spoofs included) and is ``None``
    for a malformed payload, whose bytes are ``raw``. ``topic_source`` names the feed topic; it
    differs from ``event.source`` only for a spoof. Treat it as immutable. The generator makes
    emissions from plain fields and builds the event, its times and its bytes on first use, so
    a million of them cost little until they are sent.
    """

    __slots__ = ("_at", "_event", "_payload", "_spec", "fault", "raw", "topic_source", "ts")

    def __init__(
        self,
        at: datetime,
        topic_source: str,
        event: IndicatorEvent | None = None,
        fault: Fault | None = None,
        raw: bytes | None = None,
    ) -> None:
        if event is None and raw is None:
            msg = "an emission needs an event or raw bytes"
            raise ValueError(msg)
        self.ts: float = at.timestamp()  # the send time as Unix time, for ordering
        self.topic_source = topic_source
        self.fault = fault
        self.raw = raw
        self._at: datetime | None = at
        self._event = event
        self._spec: _EventSpec | None = None
        self._payload = raw

    @classmethod
    def _planned(
        cls,
        ts: float,
        topic_source: str,
        spec: _EventSpec,
        fault: Fault | None = None,
        raw: bytes | None = None,
    ) -> Emission:
        emission = cls.__new__(cls)
        emission.ts = ts
        emission.topic_source = topic_source
        emission.fault = fault
        emission.raw = raw
        emission._at = None
        emission._event = None
        emission._spec = spec
        emission._payload = raw
        return emission

    @property
    def at(self) -> datetime:
        """When it is sent, in simulated time (province local time)."""
        if self._at is None:
            self._at = datetime.fromtimestamp(self.ts, LOCAL_TZ)
        return self._at

    @property
    def event(self) -> IndicatorEvent | None:
        """The event, or ``None`` for a malformed payload."""
        if self._event is None and self.raw is None and self._spec is not None:
            self._event = self._spec.event()
        return self._event

    @property
    def payload(self) -> bytes:
        """The bytes on the wire (for an event, exactly ``event.to_json()``)."""
        if self._payload is None:
            if self._spec is not None:
                self._payload = orjson.dumps(self._spec.wire_fields())
            else:
                assert self._event is not None  # __init__ requires an event or raw bytes
                self._payload = self._event.to_json()
        return self._payload

    @property
    def key(self) -> bytes | None:
        """The Kafka key (``indicator|area``) of the event, also for its malformed version."""
        if self._spec is not None:
            return f"{self._spec.indicator}|{self._spec.area}".encode()
        return None if self._event is None else self._event.key

    @property
    def kind(self) -> Kind:
        """``event`` when ``send_many`` can route it by its source, else ``raw``."""
        return "raw" if self.raw is not None or self.fault == "spoof" else "event"

    @property
    def is_valid(self) -> bool:
        """Whether it keeps the contract: malformed payloads and spoofs do not (the worker
        must refuse them); every other emission passes the catalogue checks when sent."""
        return self.fault not in ("malformed", "spoof")

    def _identity(self) -> tuple[float, str, Fault | None, bytes]:
        return (self.ts, self.topic_source, self.fault, self.payload)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Emission):
            return NotImplemented
        return self._identity() == other._identity()

    def __hash__(self) -> int:
        return hash(self._identity())

    def __repr__(self) -> str:
        return (
            f"Emission(at={self.at.isoformat()}, topic_source={self.topic_source!r}, "
            f"fault={self.fault!r}, payload={self.payload[:160]!r})"
        )


# --- model constants (why, not what: each says where the number comes from) ------------------

_YEAR_SECONDS: Final = 365.2425 * 86400
#: Reports are prepared during working hours before a same-day deadline.
_SAME_DAY_WINDOW: Final = timedelta(hours=8)
#: On-time reports go in at least a minute before the deadline.
_MARGIN: Final = timedelta(minutes=1)
#: How late a late report can be, per period type.
_LATE_MAX: Final[Mapping[PeriodType, timedelta]] = {
    "day": timedelta(hours=6),
    "week": timedelta(days=2),
    "month": timedelta(days=5),
    "quarter": timedelta(days=10),
    "year": timedelta(days=20),
}
#: How long after the first send a correction follows.
_CORRECTION_MAX: Final[Mapping[PeriodType, timedelta]] = {
    "day": timedelta(hours=12),
    "week": timedelta(days=3),
    "month": timedelta(days=7),
    "quarter": timedelta(days=15),
    "year": timedelta(days=30),
}
_DUPLICATE_MAX_SECONDS: Final = 300
_SPOOF_MAX_SECONDS: Final = 600
#: A broken payload goes out before the fixed one that follows it.
_MALFORMED_LEAD_MAX: Final = timedelta(minutes=30)

#: Relative period-to-period noise of flows (per-period amounts), by period type.
_FLOW_NOISE: Final[Mapping[PeriodType, float]] = {
    "day": 0.12,
    "week": 0.08,
    "month": 0.06,
    "quarter": 0.05,
    "year": 0.04,
}
_STOCK_NOISE: Final = 0.003  # cumulative levels barely wobble
_PERCENT_NOISE: Final = 0.4  # points
_FLOW_GROWTH: Final = 0.04  # per year, without a target to reach
_STOCK_GROWTH: Final = 0.05
_INDEX_GROWTH: Final = 0.03  # price indices: inflation of a few percent a year
_TARGET_APPROACH: Final = 0.5  # per year: a share closes ~40 % of its gap to the target yearly
_MAX_GROWTH: Final = 0.6
#: The three-tier province had ~200 communes in 12 districts; the catalogue keeps a sample.
_COMMUNES_PER_DISTRICT: Final = 17
#: Relative size of areas the seeds single out: the city and Mai Sơn are the largest districts.
_AREA_SIZE: Final[Mapping[str, float]] = {"tp-son-la": 2.2, "mai-son": 1.8}
_WARD_SIZE: Final = 2.0  # urban wards (phường) are denser than rural communes
_AREA_JITTER: Final = 0.35  # lognormal spread of area sizes
_INDICATOR_JITTER: Final = 0.2  # the same area is not equally large for every indicator
_SPLIT_NOISE: Final = 0.15  # per-period shift of a flow between areas
_RATE_SPREAD: Final[Mapping[Level, float]] = {"province": 0.0, "district": 6.0, "commune": 10.0}
#: Without data, ``part <= whole`` parts are this share of the whole, ``>=`` this multiple.
_DEFAULT_FRACTION: Final = 0.3
_DEFAULT_MULTIPLE: Final = 3.0
_DECIMALS: Final[Mapping[str, int]] = {
    "count": 0,
    "people": 0,
    "vnd": 0,
    "billion_vnd": 2,
    "hectare": 1,
    "tonne": 1,
    "percent": 2,
    "percent_change": 2,
    "index": 2,
}
_ANOMALY_FACTOR: Final = 5.0
_VALUE_CACHE_SIZE: Final = 20_000

ModelKind = Literal["flow", "stock", "percent", "level"]


def _key(seed: int, *parts: str) -> int:
    digest = hashlib.blake2b("|".join((str(seed), *parts)).encode(), digest_size=16).digest()
    return int.from_bytes(digest)


def _rng(seed: int, *parts: str) -> random.Random:
    return random.Random(_key(seed, *parts))


def _lognormal(rng: random.Random, sigma: float) -> float:
    """A multiplicative noise factor with mean 1."""
    return math.exp(sigma * rng.gauss() - sigma * sigma / 2)


_SQRT3: Final = math.sqrt(3.0)


def _spread(rng: random.Random) -> float:
    """Bounded noise with mean 0 and variance 1 (uniform), for every per-period draw: faster
    than ``gauss``, and without tails, so clean traffic never looks like an injected outlier
    (at most ±1.7 sigma, a modified z-score of 1.35)."""
    return (2.0 * rng.random() - 1.0) * _SQRT3


def _timestamp(day: date) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=LOCAL_TZ).timestamp()


# --- the value model -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Derivation:
    """How an indicator's values follow from others'.

    ``ratio``: ``base`` is the denominator, ``rate`` the rate indicator (value = base x rate);
    ``sum``: the sum of ``parts``; ``le``/``ge``: ``base`` times a fraction / a multiple.
    """

    how: Literal["ratio", "sum", "le", "ge"]
    base: str = ""
    parts: tuple[str, ...] = ()
    rate: str = ""
    factor: float = 1.0


@dataclass(frozen=True, slots=True)
class _Shape:
    """Everything about one indicator's values that does not change between periods."""

    indicator: Indicator
    kind: ModelKind
    anchor: float
    anchor_time: float  # Unix time of the anchor period's start
    from_data: bool
    growth: float  # per year (flows, stocks, indices)
    target: float | None  # a share drifts towards it
    noise: float
    decimals: int
    level_factor: Mapping[Level, float]
    derivation: _Derivation | None

    def trend(self, moment: float) -> float:
        """The expected province value at Unix time ``moment`` (no noise)."""
        years = (moment - self.anchor_time) / _YEAR_SECONDS
        if self.kind == "percent":
            if self.target is None:
                return self.anchor
            return self.target + (self.anchor - self.target) * math.exp(-_TARGET_APPROACH * years)
        return self.anchor * math.exp(years * math.log1p(self.growth))

    def clamp(self, value: float) -> float:
        """``value`` rounded to the unit's precision and moved into ``valid_range``."""
        valid = self.indicator.valid_range
        value = max(valid.min, value)
        if valid.max is not None:
            value = min(valid.max, value)
        rounded = round(value, self.decimals)
        if not valid.contains(rounded):  # rounding pushed it over a bound that is not round
            rounded = value
        return float(rounded)


@dataclass(frozen=True, slots=True)
class _Tree:
    """The hierarchy on one day: the province, its children, and the children's children."""

    province: str
    children: tuple[str, ...]
    child_level: Level | None
    grandchildren: Mapping[str, tuple[str, ...]]


@dataclass(slots=True)
class _Values:
    """One indicator's values for one period, by area (components of a rate by area too)."""

    value: dict[str, float]
    parts: dict[str, tuple[float, float]] | None = None


def _latest_target(indicator: Indicator, province: str) -> tuple[float, int, str] | None:
    targets = [t for t in indicator.targets if t.area == province]
    if not targets:
        return None
    target = max(targets, key=lambda t: t.year)
    return target.value, target.year, target.direction


def _generic_anchor(indicator: Indicator, province: str) -> float:
    """An anchor when the seeds give no figure, from the targets or else ``valid_range``.

    A target ``at_least`` T is taken as not yet met (85 % of the way for shares, 80 % of T for
    quantities). Without one: the middle of a share's range, 100 for an index, a few percent of
    growth, and for quantities a fraction of the range's maximum, which the catalogue sets per
    period: a cumulative level fills a good part of it (40 %), a per-period amount a small one.
    """
    valid = indicator.valid_range
    low, high = valid.min, valid.max if valid.max is not None else max(1.0, valid.min) * 10
    target = _latest_target(indicator, province)
    if indicator.unit == "percent" and target is not None:
        value, _, direction = target
        if direction == "at_least":
            return value - 0.15 * (value - low)
        return value + 0.15 * (high - value)
    if indicator.summable:
        if target is not None and target[2] == "at_least":
            return 0.8 * target[0]
        share = 0.4 if indicator.time_aggregation == "last" else 0.02
        if indicator.time_aggregation != "last" and indicator.period_type in ("day", "week"):
            share = 0.01
        return low + share * (high - low)
    typical = {"index": 100.0, "percent_change": 0.1 * max(abs(low), abs(high))}
    return min(high, max(low, typical.get(indicator.unit, (low + high) / 2)))


def _depends_on(found: Mapping[str, _Derivation], code: str, other: str) -> bool:
    """Whether ``code``'s values are made from ``other``'s, directly or not."""
    pending, seen = [code], set()
    while pending:
        current = pending.pop()
        if current == other:
            return True
        if current in seen or current not in found:
            continue
        seen.add(current)
        derivation = found[current]
        pending.extend([derivation.base, *derivation.parts])
    return False


def _rule_derivation(
    found: Mapping[str, _Derivation],
    left: tuple[str, ...],
    op: str,
    right: tuple[str, ...],
) -> tuple[str, _Derivation] | None:
    """The indicator a rule lets us derive, and how: the side that stands alone."""
    if op == "==":
        for alone, others in ((right, left), (left, right)):
            if len(alone) == 1 and alone[0] not in found:
                if any(_depends_on(found, code, alone[0]) for code in others):
                    return None
                return alone[0], _Derivation("sum", parts=others)
        return None
    if len(left) != 1 or len(right) != 1 or left[0] in found:
        return None
    if _depends_on(found, right[0], left[0]):
        return None
    return left[0], _Derivation("le" if op == "<=" else "ge", base=right[0])


def _kind(indicator: Indicator) -> ModelKind:
    if indicator.unit == "percent":
        return "percent"
    if indicator.summable:
        return "flow" if indicator.time_aggregation == "sum" else "stock"
    return "level"


def _noise(kind: ModelKind, indicator: Indicator) -> float:
    """Per-period noise: relative for quantities and indices, in points for shares."""
    if kind == "flow" or indicator.time_aggregation == "average":  # a mean moves like a flow
        return _FLOW_NOISE[indicator.period_type]
    if kind == "percent" or indicator.unit == "percent_change":
        return _PERCENT_NOISE
    return _STOCK_NOISE


def _growth(
    kind: ModelKind,
    indicator: Indicator,
    anchor: float,
    anchor_time: float,
    target: tuple[float, int, str] | None,
) -> float:
    """Yearly growth: a few percent, or what reaches an ``at_least`` target by its year."""
    if kind not in ("flow", "stock"):
        index = indicator.unit == "index" and indicator.time_aggregation == "last"
        return _INDEX_GROWTH if index else 0.0
    growth = _FLOW_GROWTH if kind == "flow" else _STOCK_GROWTH
    if target is not None and target[2] == "at_least" and 0 < anchor < target[0]:
        years = (_timestamp(date(target[1] + 1, 1, 1)) - anchor_time) / _YEAR_SECONDS
        if years > 0:
            growth = min(_MAX_GROWTH, (target[0] / anchor) ** (1 / years) - 1)
    return growth


class _TrafficModel:
    """Values of every indicator, area and period: pure functions of the seed, cached."""

    def __init__(self, catalogue: Catalogue, seed: int) -> None:
        self.catalogue = catalogue
        self.seed = seed
        provinces = [code for code, unit in catalogue.areas.items() if unit.level == "province"]
        self.province = sorted(provinces)[0]
        self._area_size = self._area_sizes()
        self._level = {code: unit.level for code, unit in catalogue.areas.items()}
        self._trees: dict[date, _Tree] = {}
        self._values: dict[tuple[str, Period], _Values] = {}
        self._weights: dict[str, dict[str, float]] = {}
        self._offsets: dict[str, dict[str, float]] = {}
        derivations = self._derivations()
        self.shapes = {
            code: self._shape(indicator, derivations.get(code))
            for code, indicator in catalogue.indicators.items()
        }
        self.needed = self._needed_levels()

    # --- set-up ----------------------------------------------------------------------------

    def _area_sizes(self) -> dict[str, float]:
        rng = _rng(self.seed, "area-size")
        sizes: dict[str, float] = {}
        for code in sorted(self.catalogue.areas):
            unit = self.catalogue.areas[code]
            size = _AREA_SIZE.get(code, 1.0)
            if unit.name_vi.startswith("Phường"):
                size *= _WARD_SIZE
            sizes[code] = size * _lognormal(rng, _AREA_JITTER)
        return sizes

    def _derivations(self) -> dict[str, _Derivation]:
        """Which indicators follow from others, so clean traffic keeps ratios and rules.

        Ratios first (the numerator follows the denominator and the rate), then rules with one
        indicator alone on a side, in file order, never making a cycle.
        """
        indicators = self.catalogue.indicators
        found: dict[str, _Derivation] = {}
        for code, indicator in indicators.items():
            ratio = indicator.ratio
            if ratio is None or ratio.numerator in found:
                continue
            known = ratio.numerator in indicators and ratio.denominator in indicators
            if known and not _depends_on(found, ratio.denominator, ratio.numerator):
                found[ratio.numerator] = _Derivation(
                    "ratio", base=ratio.denominator, rate=code, factor=ratio.factor
                )
        for rule in self.catalogue.rules.values():
            if any(code not in indicators for code in rule.indicators):
                continue
            if len({indicators[code].period_type for code in rule.indicators}) != 1:
                continue
            derived = _rule_derivation(found, rule.left, rule.op, rule.right)
            if derived is not None:
                found[derived[0]] = derived[1]
        return found

    def _shape(self, indicator: Indicator, derivation: _Derivation | None) -> _Shape:
        anchor, anchor_time, from_data = self._anchor(indicator)
        target = _latest_target(indicator, self.province)
        kind = _kind(indicator)
        if derivation is not None and derivation.how in ("le", "ge"):
            derivation = self._with_factor(indicator, derivation, anchor, from_data)
        return _Shape(
            indicator=indicator,
            kind=kind,
            anchor=anchor,
            anchor_time=anchor_time,
            from_data=from_data,
            growth=_growth(kind, indicator, anchor, anchor_time, target),
            target=target[0] if target is not None and kind == "percent" else None,
            noise=_noise(kind, indicator),
            decimals=_DECIMALS.get(indicator.unit, 2),
            level_factor=self._level_factors(indicator),
            derivation=derivation,
        )

    def _with_factor(
        self, indicator: Indicator, derivation: _Derivation, anchor: float, from_data: bool
    ) -> _Derivation:
        base = self.catalogue.indicators[derivation.base]
        base_anchor, _, base_from_data = self._anchor(base)
        if derivation.how == "le":
            factor = _DEFAULT_FRACTION
            if from_data and base_from_data and base_anchor > 0:
                factor = min(1.0, anchor / base_anchor)
        else:
            factor = _DEFAULT_MULTIPLE
            if from_data and base_from_data and base_anchor > 0:
                factor = max(1.0, anchor / base_anchor)
        return _Derivation(derivation.how, base=derivation.base, factor=factor)

    def _anchor(self, indicator: Indicator) -> tuple[float, float, bool]:
        """(value, Unix time of its period's start, whether it comes from the seeds)."""
        areas = self.catalogue.areas
        own = [p for p in indicator.history if p.area == self.province]
        if own:
            point = max(own, key=lambda p: p.period.first_day)
            return point.value, point.period.start.timestamp(), True
        known = [p for p in indicator.history if p.area in areas]
        if known:
            point = max(known, key=lambda p: p.period.first_day)
            value = point.value
            if indicator.summable:
                day = point.period.last_day
                level = areas[point.area].level
                peers = self.catalogue.areas_on(day, level)
                total = sum(self._area_size[code] for code in peers) or 1.0
                share = self._area_size[point.area] / total
                districts = len(self.catalogue.areas_on(day, "district"))
                if level == "commune" and districts:  # the communes then are only a sample
                    share *= len(peers) / (_COMMUNES_PER_DISTRICT * districts)
                value = value / max(share, 1e-6)
                valid = indicator.valid_range
                value = min(value, valid.max) if valid.max is not None else value
            return value, point.period.start.timestamp(), True
        target = _latest_target(indicator, self.province)
        year = target[1] - 2 if target is not None else 2024
        year = min(max(year, MIN_YEAR), MAX_YEAR)
        return _generic_anchor(indicator, self.province), _timestamp(date(year, 1, 1)), False

    @staticmethod
    def _level_factors(indicator: Indicator) -> Mapping[Level, float]:
        """Level-to-province ratios of the peer benchmarks given per level (Đắk Lắk's online
        work records: >95 % province, 75 % district, 40 % commune), for shares only."""
        if indicator.unit != "percent":
            return {}
        by_level: dict[Level, tuple[date, float]] = {}
        for bench in indicator.benchmarks:
            if bench.level is None:
                continue
            seen = by_level.get(bench.level)
            if seen is None or bench.period.first_day >= seen[0]:
                by_level[bench.level] = (bench.period.first_day, bench.value)
        province = by_level.get("province")
        if province is None or province[1] <= 0:
            return {}
        return {level: value / province[1] for level, (_, value) in by_level.items()}

    def _needed_levels(self) -> dict[str, frozenset[Level]]:
        """Levels to compute per indicator: its own, joined over every group of indicators
        derived from each other, so a derived value and its base split the same way."""
        parent = {code: code for code in self.shapes}

        def root(code: str) -> str:
            while parent[code] != code:
                parent[code] = parent[parent[code]]
                code = parent[code]
            return code

        for code, shape in self.shapes.items():
            derivation = shape.derivation
            if derivation is None:
                continue
            linked = [derivation.base, derivation.rate, *derivation.parts]
            for other in linked:
                if other in parent:
                    parent[root(other)] = root(code)
        for code, indicator in self.catalogue.indicators.items():
            if indicator.ratio is not None:
                for other in (indicator.ratio.numerator, indicator.ratio.denominator):
                    if other in parent:
                        parent[root(other)] = root(code)
        groups: dict[str, set[Level]] = {}
        for code, shape in self.shapes.items():
            groups.setdefault(root(code), set()).update(shape.indicator.levels)
        return {code: frozenset(groups[root(code)]) for code in self.shapes}

    # --- per-area constants ----------------------------------------------------------------

    def weights(self, code: str) -> dict[str, float]:
        """Fixed relative size of every area for one indicator (deterministic from the seed)."""
        found = self._weights.get(code)
        if found is None:
            rng = _rng(self.seed, "weights", code)
            found = {
                area: size * _lognormal(rng, _INDICATOR_JITTER)
                for area, size in sorted(self._area_size.items())
            }
            self._weights[code] = found
        return found

    def offsets(self, code: str) -> dict[str, float]:
        """Fixed difference of every area's share from the province's, in points."""
        found = self._offsets.get(code)
        if found is None:
            rng = _rng(self.seed, "offsets", code)
            found = {}
            by_level: dict[Level, list[str]] = {}
            for area in sorted(self.catalogue.areas):
                level = self._level[area]
                found[area] = rng.gauss(0.0, _RATE_SPREAD[level])
                by_level.setdefault(level, []).append(area)
            # Centred per level, so the areas do not pull the province off its own trend.
            for areas in by_level.values():
                mean = math.fsum(found[area] for area in areas) / len(areas)
                for area in areas:
                    found[area] -= mean
            self._offsets[code] = found
        return found

    def tree(self, day: date) -> _Tree:
        """The hierarchy on ``day`` (dated: districts until June 2025, then communes)."""
        found = self._trees.get(day)
        if found is None:
            catalogue = self.catalogue
            children = tuple(catalogue.children_of(self.province, day))
            child_level = catalogue.level_of(children[0]) if children else None
            grandchildren = {
                child: tuple(catalogue.children_of(child, day))
                for child in children
                if child_level == "district"
            }
            found = _Tree(self.province, children, child_level, grandchildren)
            self._trees[day] = found
        return found

    def _depth(self, code: str, tree: _Tree) -> tuple[bool, bool]:
        """Whether to compute the children, and the children's children, for ``code``."""
        needed = self.needed[code]
        grand = tree.child_level == "district" and "commune" in needed
        return (tree.child_level in needed or grand), grand

    # --- values ----------------------------------------------------------------------------

    def values(self, code: str, period: Period) -> _Values:
        """Every area's value of ``code`` for ``period`` (cached; pure in seed and inputs)."""
        found = self._values.get((code, period))
        if found is None:
            found = self._compute(code, period)
            if len(self._values) >= _VALUE_CACHE_SIZE:
                self._values.clear()
            self._values[(code, period)] = found
        return found

    def _compute(self, code: str, period: Period) -> _Values:
        shape = self.shapes[code]
        rng = _rng(self.seed, "value", code, str(period))
        tree = self.tree(period.last_day)
        if shape.indicator.ratio is not None and shape.indicator.hierarchy_aggregation != "sum":
            return self._rate(shape, period, tree, rng)
        derivation = shape.derivation
        if derivation is None:
            return self._independent(shape, period, tree, rng)
        if derivation.how == "ratio":
            return self._numerator(shape, derivation, period, tree, rng)
        if derivation.how == "sum":
            return self._sum(shape, derivation, period)
        return self._scaled(shape, derivation, period, tree, rng)

    def _province_value(self, shape: _Shape, period: Period, rng: random.Random) -> float:
        trend = shape.trend(period.start.timestamp())
        if _additive(shape):
            return shape.clamp(trend + shape.noise * _spread(rng))
        return shape.clamp(trend * (1 + shape.noise * _spread(rng)))

    def _independent(
        self, shape: _Shape, period: Period, tree: _Tree, rng: random.Random
    ) -> _Values:
        total = self._province_value(shape, period, rng)
        values = {tree.province: total}
        with_children, with_grand = self._depth(shape.indicator.code, tree)
        if not with_children:
            return _Values(values)
        if shape.kind in ("flow", "stock"):
            self._split(shape, values, tree, total, rng, with_grand)
            return _Values(values)
        offsets = self.offsets(shape.indicator.code)
        areas = list(tree.children)
        if with_grand:
            areas.extend(code for child in tree.children for code in tree.grandchildren[child])
        additive, noise, factors = _additive(shape), shape.noise, shape.level_factor
        for area in areas:
            base = total * factors.get(self._level[area], 1.0)
            if additive:
                value = base + offsets[area] + noise * _spread(rng)
            else:
                value = base * (1 + offsets[area] / 100) * (1 + noise * _spread(rng))
            values[area] = shape.clamp(value)
        return _Values(values)

    def _split(
        self,
        shape: _Shape,
        values: dict[str, float],
        tree: _Tree,
        total: float,
        rng: random.Random,
        with_grand: bool,
    ) -> None:
        """Split ``total`` over the children exactly (they are complete), then give each
        sampled commune its share of its district (the sample is not the whole district)."""
        weights = self.weights(shape.indicator.code)
        # A flow shifts between areas from one period to the next; a level does not.
        noise = _SPLIT_NOISE if shape.kind == "flow" else 0.0
        children = tree.children
        child_weights = [weights[c] * (1 + noise * _spread(rng)) for c in children]
        for child, value in zip(
            children, _split_exact(total, child_weights, shape.decimals), strict=True
        ):
            values[child] = value
        if not with_grand:
            return
        decimals = shape.decimals
        for child in children:
            sample = tree.grandchildren[child]
            if not sample:
                continue
            # share <= coverage <= 6/17 and noise <= 1.26: a commune stays below its district.
            coverage = min(1.0, len(sample) / _COMMUNES_PER_DISTRICT)
            scale = values[child] * coverage / sum(weights[g] for g in sample)
            for commune in sample:
                share = weights[commune] * (1 + noise * _spread(rng))
                values[commune] = float(round(scale * share, decimals))

    def _numerator(
        self,
        shape: _Shape,
        derivation: _Derivation,
        period: Period,
        tree: _Tree,
        rng: random.Random,
    ) -> _Values:
        """A rate's numerator: the denominator times the rate at each area, floored so it
        never exceeds what the rate allows; the province is the sum of its complete level."""
        base = self.values(derivation.base, period).value
        rate_shape = self.shapes[derivation.rate]
        offsets = self.offsets(derivation.rate)
        rate_valid = rate_shape.indicator.valid_range
        # A part never exceeds its whole: the rate stays at or below its factor.
        high = min(
            derivation.factor, derivation.factor if rate_valid.max is None else rate_valid.max
        )
        trend = rate_shape.trend(period.start.timestamp())
        scale = 10.0**shape.decimals
        values: dict[str, float] = {}
        factors, low, per_unit = rate_shape.level_factor, rate_valid.min, scale / derivation.factor
        for area in sorted(base):
            if area == tree.province:
                continue
            rate = trend * factors.get(self._level[area], 1.0) + offsets[area]
            rate = min(high, max(low, rate + _PERCENT_NOISE * _spread(rng)))
            values[area] = math.floor(base[area] * rate * per_unit) / scale
        if tree.children and all(child in values for child in tree.children):
            values[tree.province] = _sum_of(values[c] for c in tree.children)
        else:
            rate = min(high, max(rate_valid.min, trend + _PERCENT_NOISE * _spread(rng)))
            province = base[tree.province] * rate / derivation.factor
            values[tree.province] = math.floor(province * scale) / scale
        return _Values(values)

    def _sum(self, shape: _Shape, derivation: _Derivation, period: Period) -> _Values:
        parts = [self.values(code, period).value for code in derivation.parts]
        common = set(parts[0]).intersection(*parts[1:])
        return _Values({area: math.fsum(part[area] for part in parts) for area in sorted(common)})

    def _scaled(
        self,
        shape: _Shape,
        derivation: _Derivation,
        period: Period,
        tree: _Tree,
        rng: random.Random,
    ) -> _Values:
        """``part <= whole`` (floored fraction) or ``total >= part`` (ceiled multiple)."""
        base = self.values(derivation.base, period).value
        sigma = _FLOW_NOISE[shape.indicator.period_type] / 2 if shape.kind == "flow" else 0.01
        scale = 10.0**shape.decimals
        valid = shape.indicator.valid_range
        values: dict[str, float] = {}

        def scaled(whole: float) -> float:
            factor = derivation.factor * (1 + sigma * _spread(rng))
            if derivation.how == "le":
                return math.floor(whole * min(1.0, factor) * scale) / scale
            value = math.ceil(whole * max(1.0, factor) * scale) / scale
            return value if valid.max is None else max(whole, min(value, valid.max))

        for area in sorted(base):
            if area != tree.province:
                values[area] = scaled(base[area])
        if tree.children and all(child in values for child in tree.children):
            values[tree.province] = _sum_of(values[c] for c in tree.children)
        else:
            values[tree.province] = scaled(base[tree.province])
        return _Values(values)

    def _rate(self, shape: _Shape, period: Period, tree: _Tree, rng: random.Random) -> _Values:
        """A rate reported with its components: both come from the component indicators,
        aggregated over the rate's period; value = numerator / denominator x factor."""
        ratio = shape.indicator.ratio
        assert ratio is not None
        indicators = self.catalogue.indicators
        if ratio.numerator in indicators and ratio.denominator in indicators:
            numerators = self._aggregate(ratio.numerator, period)
            denominators = self._aggregate(ratio.denominator, period)
        else:
            numerators, denominators = self._synthetic_components(shape, period, tree, rng)
        values: dict[str, float] = {}
        parts: dict[str, tuple[float, float]] = {}
        for area in sorted(denominators):
            numerator, denominator = numerators.get(area), denominators[area]
            if numerator is None or denominator <= 0 or numerator < 0:
                continue  # no rate where nothing was counted
            value = round(numerator / denominator * ratio.factor, 2)
            if shape.indicator.valid_range.contains(value):
                values[area] = value
                parts[area] = (numerator, denominator)
        return _Values(values, parts)

    def _aggregate(self, code: str, period: Period) -> dict[str, float]:
        """``code``'s values over ``period``: summed (or the last) over its finer periods."""
        component = self.shapes[code].indicator
        if component.period_type == period.period_type:
            return dict(self.values(code, period).value)
        if not period_type_nests(component.period_type, period.period_type):
            inner = Period.containing(period.last_day, component.period_type)
            return dict(self.values(code, inner).value)
        totals: dict[str, list[float]] = {}
        current = Period.containing(period.first_day, component.period_type)
        while current.first_day <= period.last_day:
            for area, value in self.values(code, current).value.items():
                totals.setdefault(area, []).append(value)
            current = current.next()
        if component.time_aggregation == "last":
            return {area: found[-1] for area, found in totals.items()}
        return {area: _sum_of(found) for area, found in totals.items()}

    def _synthetic_components(
        self, shape: _Shape, period: Period, tree: _Tree, rng: random.Random
    ) -> tuple[dict[str, float], dict[str, float]]:
        """Components for a rate whose components are not catalogue indicators."""
        ratio = shape.indicator.ratio
        assert ratio is not None
        denominators: dict[str, float] = {}
        weights = self.weights(shape.indicator.code)
        with_children, with_grand = self._depth(shape.indicator.code, tree)
        areas = list(tree.children) if with_children else []
        if with_grand:
            areas.extend(code for child in tree.children for code in tree.grandchildren[child])
        for area in areas:
            denominators[area] = float(round(1000 * weights[area]))
        denominators[tree.province] = float(round(1000 * sum(weights[c] for c in tree.children)))
        offsets = self.offsets(shape.indicator.code)
        trend = shape.trend(period.start.timestamp())
        numerators = {}
        for area, denominator in denominators.items():
            rate = trend + offsets[area] + _PERCENT_NOISE * _spread(rng)
            rate = min(ratio.factor, max(0.0, rate))
            numerators[area] = float(math.floor(denominator * rate / ratio.factor))
        return numerators, denominators


def _additive(shape: _Shape) -> bool:
    """Whether noise and area differences are in points (shares, growth rates) or relative."""
    return shape.kind == "percent" or shape.indicator.unit == "percent_change"


def _sum_of(values: Iterable[float]) -> float:
    return math.fsum(values)


def _split_exact(total: float, weights: Sequence[float], decimals: int) -> list[float]:
    """``total`` split in proportion to ``weights`` in steps of 10**-decimals, adding up
    exactly (largest remainder)."""
    scale: int = 10**decimals
    units = round(total * scale)
    weight_sum = math.fsum(weights)
    if weight_sum <= 0 or units <= 0:
        return [0.0] * len(weights)
    raw = [units * w / weight_sum for w in weights]
    floors = [math.floor(r) for r in raw]
    remainder = units - sum(floors)
    order = sorted(range(len(raw)), key=lambda i: floors[i] - raw[i])
    for index in order[:remainder]:
        floors[index] += 1
    return [f / scale for f in floors]


# --- emissions -------------------------------------------------------------------------------


#: Masks giving 128 random bits the version and variant of a random UUID, exactly as
#: ``uuid.UUID(int=bits, version=4)`` does.
_UUID4_KEEP: Final = ~((0xC000 << 48) | (0xF000 << 64))
_UUID4_SET: Final = (0x8000 << 48) | (4 << 76)


def _uuid4_bits(bits: int) -> int:
    """``bits`` with the version and variant of a random UUID (as ``uuid.UUID(version=4)``)."""
    return (bits & _UUID4_KEEP) | _UUID4_SET


class _Emitter:
    """Turns one indicator's period into the emissions of every area's report."""

    def __init__(self, model: _TrafficModel, faults: Faults) -> None:
        self.model = model
        self.faults = faults
        self.seed = model.seed
        self._any_fault = math.fsum(getattr(faults, name) for name in FAULTS)
        self._spoof_sources = sorted(
            code for code in model.catalogue.sources if model.catalogue.indicators_of(code)
        )

    @staticmethod
    def on_time_window(indicator: Indicator, period: Period) -> tuple[datetime, datetime]:
        """Earliest and latest on-time send: from the period's end (or the start of the
        working day before a same-day deadline) to a minute before the deadline."""
        latest = indicator.due_at(period) - _MARGIN
        earliest = period.end if period.end < latest else latest - _SAME_DAY_WINDOW
        earliest = max(earliest, period.start)  # never before the period has begun
        return earliest, max(earliest, latest)

    def first_send(self, indicator: Indicator, period: Period) -> datetime:
        """No emission of ``period`` goes out before this."""
        return self.on_time_window(indicator, period)[0] - _MALFORMED_LEAD_MAX

    @staticmethod
    def last_send(indicator: Indicator, period: Period) -> datetime:
        """No emission of ``period`` goes out after this."""
        kind = indicator.period_type
        return indicator.due_at(period) + _LATE_MAX[kind] + _CORRECTION_MAX[kind]

    def areas(self, indicator: Indicator, period: Period) -> list[str]:
        """The areas reporting ``indicator`` for ``period``: those existing on its last day."""
        tree = self.model.tree(period.last_day)
        levels = indicator.levels
        found = [tree.province] if "province" in levels else []
        if tree.child_level in levels:
            found.extend(tree.children)
        if "commune" in levels and tree.child_level == "district":
            found.extend(sorted(c for child in tree.children for c in tree.grandchildren[child]))
        return found

    def emissions(
        self, indicator: Indicator, period: Period, start: float, until: float
    ) -> list[Emission]:
        """The emissions of every area's report of ``indicator`` for ``period`` that are sent
        in ``[start, until)`` (Unix times).

        Times are drawn first: when no report of the period can land in the window, its values
        are never computed. The loops run once per event: they work on Unix times and tuples.
        """
        code, source = indicator.code, indicator.owner
        rng = _rng(self.seed, "emit", code, str(period))
        random_, bits = rng.random, rng.getrandbits
        window = self.on_time_window(indicator, period)
        earliest, latest = window[0].timestamp(), window[1].timestamp()
        span = latest - earliest
        deadline = indicator.due_at(period).timestamp()
        late_span = _LATE_MAX[indicator.period_type].total_seconds()
        any_fault, pick = self._any_fault, self.faults.pick
        # How far from its main send time a report's other emissions can be.
        before = _MALFORMED_LEAD_MAX.total_seconds() if self.faults.malformed else 0.0
        after = max(
            _CORRECTION_MAX[indicator.period_type].total_seconds() if self.faults.correction else 0,
            _SPOOF_MAX_SECONDS if self.faults.spoof else 0,
            _DUPLICATE_MAX_SECONDS if self.faults.duplicate else 0,
        )
        draws = []
        for area in self.areas(indicator, period):
            u_send, u_observe, u_fault = random_(), random_(), random_()
            id_bits = (bits(128) & _UUID4_KEEP) | _UUID4_SET
            fault = pick(u_fault) if u_fault < any_fault else None
            # Whole seconds (x // 1.0 floors without a function call); u² leans to the deadline.
            if fault == "late":
                at = deadline + (late_span * (0.05 + 0.95 * u_send)) // 1.0
            else:
                at = latest - (span * u_send * u_send) // 1.0
            if at + after >= start and at - before < until:
                draws.append((area, at, u_observe, id_bits, fault))
        if not draws:
            return []
        values = self.model.values(code, period)
        by_area, parts_by_area = values.value, values.parts
        begin, end = period.start.timestamp(), period.end.timestamp()
        text = str(period)
        planned = Emission._planned
        new_spec = tuple.__new__  # what _EventSpec(...) calls, minus a Python-level call
        out: list[Emission] = []
        for area, at, u_observe, id_bits, fault in draws:
            value = by_area.get(area)
            if value is None:
                continue
            parts = parts_by_area.get(area) if parts_by_area is not None else None
            observed = at if at < end else end
            lag = (observed - begin) / 2
            observed -= ((lag if lag < 3600.0 else 3600.0) * u_observe) // 1.0
            numerator, denominator = (None, None) if parts is None else parts
            spec = new_spec(
                _EventSpec,
                (id_bits, source, code, area, text, value, numerator, denominator, observed, at),
            )
            if fault is None or fault == "late":
                if start <= at < until:
                    out.append(planned(at, source, spec, fault))
                continue
            # A fault draws from its own generator, so it never shifts other reports' draws.
            for emission in self._faulty(fault, random.Random(id_bits), indicator, spec):
                if start <= emission.ts < until:
                    out.append(emission)
        return out

    def _faulty(
        self, fault: Fault, rng: random.Random, indicator: Indicator, spec: _EventSpec
    ) -> list[Emission]:
        """The emissions of a report carrying ``fault``, drawn from its own ``rng``."""
        source, at = spec.source, spec.sent
        shape = self.model.shapes[indicator.code]
        if fault == "anomaly":
            outlier = _outlier(shape, spec, rng)
            if outlier is None:  # no outlier fits in valid_range: send it clean
                return [Emission._planned(at, source, spec)]
            return [Emission._planned(at, source, outlier, "anomaly")]
        if fault == "correction":
            # The first figure was a slip; the correction sends the true one later.
            delay = _CORRECTION_MAX[indicator.period_type].total_seconds()
            later = at + round(delay * (0.05 + 0.95 * rng.random()))
            fixed = spec._replace(
                id_bits=_uuid4_bits(rng.getrandbits(128)), observed=later, sent=later
            )
            return [
                Emission._planned(at, source, _slip(shape, spec, rng)),
                Emission._planned(later, source, fixed, "correction"),
            ]
        clean = Emission._planned(at, source, spec)
        if fault == "duplicate":
            again = at + rng.randint(1, _DUPLICATE_MAX_SECONDS)
            return [clean, Emission._planned(again, source, spec, "duplicate")]
        if fault == "malformed":
            before = at - rng.randint(30, int(_MALFORMED_LEAD_MAX.total_seconds()))
            raw = _malform(spec, rng)
            return [Emission._planned(before, source, spec, "malformed", raw), clean]
        # spoof: this source also writes a figure in another source's name
        claimed = rng.choice([code for code in self._spoof_sources if code != source])
        target = rng.choice(self.model.catalogue.indicators_of(claimed))
        when = at + rng.randint(5, _SPOOF_MAX_SECONDS)
        spoof = self._spoof_spec(target, when, rng)
        return (
            [clean] if spoof is None else [clean, Emission._planned(when, source, spoof, "spoof")]
        )

    def _spoof_spec(
        self, indicator: Indicator, when: float, rng: random.Random
    ) -> _EventSpec | None:
        """A figure of ``indicator`` (another source's) for its last period ended by ``when``."""
        moment = datetime.fromtimestamp(when, LOCAL_TZ)
        period = Period.containing(moment, indicator.period_type).previous()
        values = self.model.values(indicator.code, period)
        area = self.model.province
        value = values.value.get(area)
        if value is None:
            return None
        parts = values.parts.get(area) if values.parts is not None else None
        numerator, denominator = (None, None) if parts is None else parts
        return _EventSpec(
            _uuid4_bits(rng.getrandbits(128)),
            indicator.owner,
            indicator.code,
            area,
            str(period),
            value,
            numerator,
            denominator,
            when,
            when,
        )


def _with_numerator(shape: _Shape, spec: _EventSpec, numerator: float) -> _EventSpec | None:
    """``spec`` with another numerator and the rate recomputed, if the rate stays in range."""
    ratio = shape.indicator.ratio
    assert ratio is not None
    assert spec.denominator is not None
    numerator = float(round(numerator, shape.decimals))
    value = round(numerator / spec.denominator * ratio.factor, 2)
    if numerator < 0 or not shape.indicator.valid_range.contains(value):
        return None
    return spec._replace(value=value, numerator=numerator)


def _outlier(shape: _Shape, spec: _EventSpec, rng: random.Random) -> _EventSpec | None:
    """The value five times larger or smaller, whichever stays in ``valid_range`` (a rate
    moves its numerator); ``None`` when neither does and differs from the value."""
    factors = [_ANOMALY_FACTOR, 1 / _ANOMALY_FACTOR]
    rng.shuffle(factors)
    value = spec.value
    for factor in factors:
        if spec.numerator is not None:
            found = _with_numerator(shape, spec, math.floor(spec.numerator * factor))
            if found is not None and found.value != value:
                return found
            continue
        candidate = float(round(value * factor, shape.decimals))
        if value == 0:  # nothing to multiply: a burst out of nowhere
            candidate = float(round(_ANOMALY_FACTOR * 2 * (1 + rng.random())))
        if candidate != value and shape.indicator.valid_range.contains(candidate):
            return spec._replace(value=candidate)
    return None


def _slip(shape: _Shape, spec: _EventSpec, rng: random.Random) -> _EventSpec:
    """A slightly wrong first figure (2-10 % off) that a correction will fix."""
    change = (0.02 + 0.08 * rng.random()) * rng.choice((-1, 1))
    valid = shape.indicator.valid_range
    if spec.numerator is not None:
        numerator = spec.numerator * (1 + change)
        if round(numerator) == spec.numerator:
            numerator = spec.numerator + (1 if change > 0 else -1)
        found = _with_numerator(shape, spec, numerator)
        return found if found is not None else spec
    value = spec.value
    step = 10.0**-shape.decimals
    wrong = round(value * (1 + change), shape.decimals)
    if wrong == value:
        wrong = round(value + (step if change > 0 else -step), shape.decimals)
    if not valid.contains(wrong):
        wrong = round(value - (wrong - value), shape.decimals)
    return spec._replace(value=float(wrong)) if valid.contains(wrong) else spec


_MALFORMATIONS: Final = ("truncated", "not_utf8", "wrong_type", "unknown_field", "nan")
#: "Sơn La" as a legacy Windows-1258 system would send it: not UTF-8.
_CP1258_NAME: Final = "Sơn La".encode("cp1258")


def _malform(spec: _EventSpec, rng: random.Random) -> bytes:
    """A payload the contract refuses, made the ways real integrations get it wrong."""
    how = rng.choice(_MALFORMATIONS)
    fields = spec.wire_fields()
    if how == "truncated":
        good = orjson.dumps(fields)
        return good[: rng.randint(1, len(good) - 2)]
    if how == "not_utf8":
        fields["area"] = "\x00AREA\x00"
        return orjson.dumps(fields).replace(b"\\u0000AREA\\u0000", _CP1258_NAME)
    if how == "wrong_type":  # a decimal comma, as typed in a Vietnamese spreadsheet
        fields["value"] = f"{spec.value:.2f}".replace(".", ",")
        return orjson.dumps(fields)
    if how == "unknown_field":
        fields["ghi_chu"] = "số liệu sơ bộ"
        return orjson.dumps(fields)
    fields["value"] = "\x00NAN\x00"
    return orjson.dumps(fields).replace(b'"\\u0000NAN\\u0000"', b"NaN")


# --- the generator ---------------------------------------------------------------------------


def _selected_sources(
    catalogue: Catalogue, sources: Collection[str] | None, faults: Faults
) -> list[str]:
    known = catalogue.sources
    for option, codes in (("--source", sources or ()), ("--silent", faults.silent)):
        unknown = sorted(set(codes) - set(known))
        if unknown:
            raise ConfigurationError(
                f"{option}: nguồn không có trong danh mục: {', '.join(unknown)} "
                "(xem `ioc catalog list`) / "
                f"{option}: unknown source(s) {', '.join(unknown)} (see `ioc catalog list`)"
            )
    chosen = set(known) if sources is None else set(sources)
    return sorted(chosen - faults.silent)


def _require_aware(name: str, moment: datetime) -> None:
    if moment.utcoffset() is None:
        raise ConfigurationError(
            f"{name} phải có múi giờ, nhận được {moment.isoformat()} / "
            f"{name} must be timezone-aware, received {moment.isoformat()}"
        )


def generate_events(
    catalogue: Catalogue,
    *,
    seed: int,
    start: datetime,
    until: datetime,
    faults: Faults | None = None,
    sources: Collection[str] | None = None,
) -> Iterator[Emission]:
    """Every emission sent in simulated time ``[start, until)``, in time order.

    ``sources`` restricts to some sources (default: all 41); ``faults`` says what to inject
    (default: nothing). Same catalogue, seed, window and faults give the same emissions, event
    ids included; a report does not depend on the window, so adjacent windows join exactly.
    Raises :class:`~ioc.errors.ConfigurationError` for an unknown source or a naive time.
    """
    faults = faults if faults is not None else Faults()
    _require_aware("start", start)
    _require_aware("until", until)
    chosen = _selected_sources(catalogue, sources, faults)
    return _generate(catalogue, seed, start, until, faults, chosen)


def _generate(
    catalogue: Catalogue,
    seed: int,
    start: datetime,
    until: datetime,
    faults: Faults,
    chosen: list[str],
) -> Iterator[Emission]:
    emitter = _Emitter(_TrafficModel(catalogue, seed), faults)
    start_ts, until_ts = start.timestamp(), until.timestamp()
    # One cursor per indicator, ordered by the earliest send of its next period: once a
    # cursor is popped, nothing still to come can go out before its earliest send.
    cursors: list[tuple[float, int, Indicator, Period]] = []
    order = 0
    for source in chosen:
        for indicator in catalogue.indicators_of(source):
            period = _first_period(emitter, indicator, start)
            if period is not None:
                earliest = emitter.first_send(indicator, period).timestamp()
                if earliest < until_ts:
                    cursors.append((earliest, order, indicator, period))
                    order += 1
    heapq.heapify(cursors)
    ready: list[tuple[float, int, Emission]] = []
    sequence = 0
    heappush, heappop = heapq.heappush, heapq.heappop
    while cursors:
        earliest, order, indicator, period = heapq.heappop(cursors)
        while ready and ready[0][0] < earliest:
            yield heappop(ready)[2]
        for emission in emitter.emissions(indicator, period, start_ts, until_ts):
            heappush(ready, (emission.ts, sequence, emission))
            sequence += 1
        following = _next_period(period)
        if following is not None:
            next_earliest = emitter.first_send(indicator, following).timestamp()
            if next_earliest < until_ts:
                heapq.heappush(cursors, (next_earliest, order, indicator, following))
    while ready:
        yield heapq.heappop(ready)[2]


def _next_period(period: Period) -> Period | None:
    try:
        return period.next()
    except ValueError:  # past the last year a period may have
        return None


def _first_period(emitter: _Emitter, indicator: Indicator, start: datetime) -> Period | None:
    """The earliest period of ``indicator`` with an emission possibly at or after ``start``."""
    try:
        period = Period.containing(start, indicator.period_type)
    except ValueError:
        return None
    while True:
        try:
            before = period.previous()
        except ValueError:
            return period
        if emitter.last_send(indicator, before) < start:
            return period
        period = before


# --- the pacer -------------------------------------------------------------------------------


class Sender(Protocol):
    """What the pacer sends through: :class:`~streams.producer.IndicatorProducer` fits."""

    def send_many(self, events: Iterable[IndicatorEvent]) -> Sequence[object]:
        """Send events, each to its source's feed, and wait for the acknowledgements."""
        ...

    def send_raw(self, topic: str, value: bytes, key: bytes | None = None) -> object:
        """Send bytes as they are to ``topic``."""
        ...


StopReason = Literal["exhausted", "max_events", "duration", "stopped", "interrupted"]


@dataclass
class PacerStats:
    """What the pacer has sent so far."""

    sent: int = 0
    batches: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    by_fault: Counter[str] = field(default_factory=Counter)
    last_at: datetime | None = None
    stopped_by: StopReason | None = None

    def count(self, emissions: Sequence[Emission]) -> None:
        """Record a batch that has been sent."""
        self.sent += len(emissions)
        self.batches += 1
        for emission in emissions:
            self.by_kind[emission.kind] += 1
            self.by_fault[emission.fault or "clean"] += 1
        if emissions:
            self.last_at = emissions[-1].at


def describe(stats: PacerStats) -> tuple[str, str]:
    """A one-line summary of ``stats``: (Vietnamese, English)."""
    faults_vi = ", ".join(f"{_FAULT_VI[f]} {stats.by_fault[f]}" for f in FAULTS)
    faults_en = ", ".join(f"{f} {stats.by_fault[f]}" for f in FAULTS)
    when = "-" if stats.last_at is None else stats.last_at.astimezone(LOCAL_TZ).isoformat()
    events, raw = stats.by_kind["event"], stats.by_kind["raw"]
    return (
        f"Đã gửi {stats.sent} bản tin trong {stats.batches} lô (sự kiện {events}, thô {raw}); "
        f"lỗi cài sẵn: {faults_vi}; bản tin cuối lúc {when} (giờ mô phỏng)",
        f"Sent {stats.sent} messages in {stats.batches} batches (events {events}, raw {raw}); "
        f"injected faults: {faults_en}; last message at {when} (simulated)",
    )


def run(
    emissions: Iterable[Emission],
    sender: Sender,
    clock: Clock,
    *,
    topics: Topics,
    max_events: int | None = None,
    duration: float | None = None,
    max_batch: int = 500,
    stop: threading.Event | None = None,
    wait: Callable[[float], object] | None = None,
    monotonic: Callable[[], float] = time.monotonic,
    on_progress: Callable[[PacerStats], None] | None = None,
    progress_every: float = 10.0,
    on_sent: Callable[[Emission], None] | None = None,
) -> PacerStats:
    """Send ``emissions`` as ``clock`` reaches their times, batching those due together.

    Waits (real seconds, ``clock.wall_seconds_until``) for the next emission, then sends every
    emission already due, up to ``max_batch``: events with ``sender.send_many``, malformed
    payloads and spoofs with ``sender.send_raw`` to their feed topic, in order. Stops when the
    emissions run out, after ``max_events``, after ``duration`` real seconds, when ``stop`` is
    set, or on Ctrl-C (KeyboardInterrupt); a batch being sent is finished first.
    ``on_progress`` is called every ``progress_every`` real seconds, ``on_sent`` for each
    emission sent. ``wait`` (default: ``stop.wait``, else ``time.sleep``) and ``monotonic``
    let tests run the pacer on a fake clock.
    """
    stats = PacerStats()
    pause = wait or (stop.wait if stop is not None else time.sleep)
    began = monotonic()
    ends = None if duration is None else began + duration
    next_report = began + progress_every if on_progress is not None else math.inf
    iterator = iter(emissions)
    try:
        pending = next(iterator, None)
        while True:
            now_wall = monotonic()
            stats.stopped_by = _stop_reason(pending, stats, max_events, stop, now_wall, ends)
            if stats.stopped_by is not None:
                break
            assert pending is not None  # else the reason would be "exhausted"
            if on_progress is not None and now_wall >= next_report:
                on_progress(stats)
                next_report = now_wall + progress_every
            delay = clock.wall_seconds_until(pending.at)
            if delay > 0:
                pause(max(0.0, min(delay, next_report - now_wall, (ends or math.inf) - now_wall)))
                continue
            room = max_batch if max_events is None else min(max_batch, max_events - stats.sent)
            now = clock.now()
            batch = [pending]
            pending = next(iterator, None)
            while pending is not None and len(batch) < room and pending.at <= now:
                batch.append(pending)
                pending = next(iterator, None)
            _send_batch(batch, sender, topics)
            stats.count(batch)
            if on_sent is not None:
                for emission in batch:
                    on_sent(emission)
    except KeyboardInterrupt:
        stats.stopped_by = "interrupted"
    return stats


def _stop_reason(
    pending: Emission | None,
    stats: PacerStats,
    max_events: int | None,
    stop: threading.Event | None,
    now_wall: float,
    ends: float | None,
) -> StopReason | None:
    if pending is None:
        return "exhausted"
    if stop is not None and stop.is_set():
        return "stopped"
    if max_events is not None and stats.sent >= max_events:
        return "max_events"
    if ends is not None and now_wall >= ends:
        return "duration"
    return None


def _send_batch(batch: Sequence[Emission], sender: Sender, topics: Topics) -> None:
    """Consecutive events go in one ``send_many``; raw payloads one by one, order kept."""
    events: list[IndicatorEvent] = []
    for emission in batch:
        if emission.kind == "event":
            assert emission.event is not None
            events.append(emission.event)
            continue
        if events:
            sender.send_many(events)
            events = []
        sender.send_raw(topics.feed(emission.topic_source), emission.payload, emission.key)
    if events:
        sender.send_many(events)
