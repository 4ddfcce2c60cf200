"""The simulator: schedule, values, injected faults, determinism, and the pacer (no Kafka)."""

from __future__ import annotations

import math
import threading
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
import pytest
import typer
from typer.testing import CliRunner

from ioc.cli.simulate import simulate
from ioc.errors import ConfigurationError
from streams.catalogue import Catalogue, YearlyDeadline, default_catalogue
from streams.events import IndicatorEvent
from streams.periods import LOCAL_TZ
from streams.simulator import (
    FAULTS,
    Emission,
    Faults,
    PacerStats,
    describe,
    generate_events,
    run,
)
from streams.topics import Topics
from streams.validation import Rejection, check_against_catalogue, parse_feed_message


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=LOCAL_TZ)


# Three-tier hierarchy (districts) until 30 June 2025; communes under the province after.
JANUARY = (at(2025, 1, 1), at(2025, 2, 1))  # every yearly deadline but 31 March falls in it
SEPTEMBER_WEEK = (at(2025, 9, 1), at(2025, 9, 8))
#: One in six reports carries a fault; each fault 1/30 so every kind shows up many times.
MANY_FAULTS = Faults(
    anomaly=1 / 30,
    late=1 / 30,
    malformed=1 / 30,
    duplicate=1 / 30,
    correction=1 / 30,
    spoof=1 / 30,
    silent=frozenset({"sbv"}),
)


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return default_catalogue()


@pytest.fixture(scope="module")
def clean(catalogue: Catalogue) -> list[Emission]:
    return list(generate_events(catalogue, seed=11, start=JANUARY[0], until=JANUARY[1]))


@pytest.fixture(scope="module")
def faulty(catalogue: Catalogue) -> list[Emission]:
    """January and the two days before: the originals of January's duplicates (minutes
    earlier) and corrections (hours, or for January's yearly reports days) are all in it."""
    start = JANUARY[0] - timedelta(days=2)
    return list(
        generate_events(catalogue, seed=5, start=start, until=JANUARY[1], faults=MANY_FAULTS)
    )


@pytest.fixture(scope="module")
def january_faulty(faulty: list[Emission]) -> list[Emission]:
    return [e for e in faulty if e.at >= JANUARY[0]]


@pytest.fixture(scope="module")
def two_tier(catalogue: Catalogue) -> list[Emission]:
    start, until = SEPTEMBER_WEEK
    return list(generate_events(catalogue, seed=2, start=start, until=until))


def event_of(emission: Emission) -> IndicatorEvent:
    assert emission.event is not None
    return emission.event


def by_fault(emissions: Iterable[Emission], fault: str | None) -> list[Emission]:
    return [e for e in emissions if e.fault == fault]


# --- determinism and windows -----------------------------------------------------------------


def test_same_seed_gives_the_same_emissions_and_another_seed_does_not(
    catalogue: Catalogue,
) -> None:
    def make(seed: int) -> list[Emission]:
        return list(
            generate_events(
                catalogue,
                seed=seed,
                start=at(2025, 5, 1),
                until=at(2025, 5, 3),
                faults=Faults.preset("demo"),
            )
        )

    first, again, other = make(42), make(42), make(43)

    assert len(first) > 500
    assert first == again  # time, topic, fault and the exact bytes
    assert [event_of(e).event_id for e in first if e.event] == [
        event_of(e).event_id for e in again if e.event
    ]
    ids = {event_of(e).event_id for e in first if e.event}
    assert ids.isdisjoint(event_of(e).event_id for e in other if e.event)
    assert [e.payload for e in first] != [e.payload for e in other]


def test_adjacent_windows_join_without_gap_or_repeat(catalogue: Catalogue) -> None:
    """A backfill followed by a live run sends exactly what one run over both would."""
    start, seam, until = at(2025, 6, 29, 12), at(2025, 6, 30, 16, 30), at(2025, 7, 2)

    def window(a: datetime, b: datetime) -> list[Emission]:
        return list(generate_events(catalogue, seed=9, start=a, until=b, faults=MANY_FAULTS))

    assert window(start, seam) + window(seam, until) == window(start, until)


def test_emissions_are_in_time_order_inside_the_window(
    clean: list[Emission], january_faulty: list[Emission]
) -> None:
    for emissions in (clean, january_faulty):
        times = [e.at for e in emissions]
        assert times == sorted(times)
        assert JANUARY[0] <= times[0]
        assert times[-1] < JANUARY[1]


def test_faults_do_not_change_the_clean_traffic(catalogue: Catalogue) -> None:
    """A report draws its fault after its time, id and value: switching faults on changes only
    the reports they hit, so a demo with faults shows the same figures as one without."""
    window = {"start": at(2025, 5, 6), "until": at(2025, 5, 9)}
    plain = list(generate_events(catalogue, seed=4, **window))
    late = list(generate_events(catalogue, seed=4, faults=Faults(late=0.2), **window))

    unchanged = {e.payload for e in late if e.fault is None}
    assert unchanged <= {e.payload for e in plain}
    assert len(unchanged) > 0.7 * len(plain)


# --- schedule --------------------------------------------------------------------------------


def test_every_source_reports(catalogue: Catalogue, clean: list[Emission]) -> None:
    assert {e.topic_source for e in clean} == set(catalogue.sources)
    assert len(catalogue.sources) == 41
    reported = {event_of(e).indicator for e in clean}
    due_in_january = {
        code
        for code, indicator in catalogue.indicators.items()
        if not isinstance(indicator.deadline, YearlyDeadline) or indicator.deadline.month == 1
    }
    missing = due_in_january - reported
    assert not missing  # everything due in January was reported in January


def test_a_silent_source_sends_nothing(
    catalogue: Catalogue, january_faulty: list[Emission]
) -> None:
    assert "sbv" not in {e.topic_source for e in january_faulty}
    genuine = {event_of(e).source for e in january_faulty if e.event and e.fault != "spoof"}
    assert "sbv" not in genuine
    assert {e.topic_source for e in january_faulty} == set(catalogue.sources) - {"sbv"}


def test_restricting_sources(catalogue: Catalogue) -> None:
    emissions = list(
        generate_events(
            catalogue,
            seed=1,
            start=JANUARY[0],
            until=JANUARY[0] + timedelta(days=3),
            sources=["police", "health"],
        )
    )
    assert {e.topic_source for e in emissions} == {"police", "health"}


def test_areas_follow_the_dated_hierarchy(
    catalogue: Catalogue, clean: list[Emission], two_tier: list[Emission]
) -> None:
    """Districts report before the July 2025 reform; after it, the 75 new communes do."""
    levels_before = Counter(catalogue.level_of(event_of(e).area) for e in clean)
    assert levels_before["district"] > 0
    assert levels_before["commune"] > 0
    daily_after = [e for e in two_tier if event_of(e).indicator == "applications_received"]
    areas_after = {event_of(e).area for e in daily_after}
    assert {catalogue.level_of(area) for area in areas_after} == {"province", "commune"}
    assert areas_after - {"son-la"} == set(catalogue.areas_on(at(2025, 9, 3), "commune"))


# --- validity --------------------------------------------------------------------------------


def test_every_valid_emission_passes_the_catalogue_checks_when_sent(
    catalogue: Catalogue, clean: list[Emission], faulty: list[Emission], two_tier: list[Emission]
) -> None:
    checked = 0
    for emission in [*clean, *faulty, *two_tier]:
        if not emission.is_valid:
            continue
        event = event_of(emission)
        assert check_against_catalogue(event, catalogue, now=emission.at) is None, emission
        assert event.observed_at <= event.sent_at <= emission.at
        checked += 1
    assert checked > 30_000


def test_the_payload_is_the_event_on_the_wire(
    clean: list[Emission], january_faulty: list[Emission]
) -> None:
    for emission in [*clean[:2000], *january_faulty[:2000]]:
        if emission.raw is not None:
            continue
        event = event_of(emission)
        assert emission.payload == event.to_json()
        assert IndicatorEvent.from_json(emission.payload) == event
        assert emission.key == event.key


# --- values ----------------------------------------------------------------------------------


def _groups(emissions: Iterable[Emission]) -> dict[tuple[str, str], dict[str, float]]:
    groups: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    for emission in emissions:
        event = event_of(emission)
        groups[(event.indicator, event.period)][event.area] = event.value
    return groups


@pytest.mark.parametrize("window", ["three_tier", "two_tier"])
def test_summable_values_add_up_to_the_province(
    catalogue: Catalogue,
    clean: list[Emission],
    two_tier: list[Emission],
    window: str,
) -> None:
    emissions = clean if window == "three_tier" else two_tier
    checked = Counter[str]()
    for (code, period_text), values in _groups(emissions).items():
        indicator = catalogue.indicators[code]
        if indicator.hierarchy_aggregation != "sum" or "son-la" not in values:
            continue
        children = catalogue.children_of("son-la", indicator.parse_period(period_text).last_day)
        if not all(child in values for child in children):
            continue
        total = math.fsum(values[child] for child in children)
        assert total == pytest.approx(values["son-la"], abs=0.01), (code, period_text)
        assert indicator.valid_range.contains(values["son-la"])
        checked[catalogue.level_of(children[0])] += 1
    expected_level = "district" if window == "three_tier" else "commune"
    assert checked[expected_level] > 20


def test_larger_areas_get_larger_shares(catalogue: Catalogue, clean: list[Emission]) -> None:
    """The city and Mai Sơn are the largest districts: over many figures they lead."""
    shares: dict[str, list[float]] = defaultdict(list)
    for (code, _), values in _groups(clean).items():
        if catalogue.indicators[code].hierarchy_aggregation == "sum" and values.get("son-la"):
            for area, value in values.items():
                if catalogue.level_of(area) == "district":
                    shares[area].append(value / values["son-la"])
    mean = {area: math.fsum(found) / len(found) for area, found in shares.items()}
    typical = sorted(mean.values())[len(mean) // 2]
    assert mean["tp-son-la"] > typical
    assert mean["mai-son"] > typical


def test_values_stay_near_the_seed_figures(catalogue: Catalogue, clean: list[Emission]) -> None:
    """Every indicator with a province figure in the seeds reports near it (±40 %)."""
    near = 0
    for emission in clean:
        event = event_of(emission)
        indicator = catalogue.indicators[event.indicator]
        seeds = [p for p in indicator.history if p.area == "son-la"]
        if event.area != "son-la" or not seeds:
            continue
        latest = max(seeds, key=lambda p: p.period.first_day).value
        assert 0.6 * latest <= event.value <= 1.4 * latest, (event.indicator, event.value)
        near += 1
    assert near > 100


def test_rates_agree_with_their_components(catalogue: Catalogue, clean: list[Emission]) -> None:
    """value = numerator / denominator x factor, and the components send those very numbers."""
    groups = _groups(clean)
    same_cadence = 0
    for emission in clean:
        event = event_of(emission)
        ratio = catalogue.indicators[event.indicator].ratio
        if ratio is None:
            assert event.numerator is None
            assert event.denominator is None
            continue
        assert event.numerator is not None
        assert event.denominator is not None
        assert 0 <= event.numerator <= event.denominator
        computed = event.numerator / event.denominator * ratio.factor
        assert math.isclose(event.value, computed, rel_tol=0.005, abs_tol=0.01)
        numerators = groups.get((ratio.numerator, event.period), {})
        denominators = groups.get((ratio.denominator, event.period), {})
        if event.area in numerators and event.area in denominators:
            assert numerators[event.area] == event.numerator
            assert denominators[event.area] == event.denominator
            same_cadence += 1
    assert same_cadence > 50  # poverty_rate (yearly) and non_cash_payment_rate (monthly)


def test_clean_traffic_keeps_every_rule(catalogue: Catalogue, clean: list[Emission]) -> None:
    groups = _groups(clean)
    checked = 0
    for rule in catalogue.rules.values():
        periods = {period for (code, period) in groups if code == rule.left[0]}
        for period in periods:
            for area in groups[(rule.left[0], period)]:
                found = {c: groups[(c, period)].get(area) for c in rule.indicators}
                values = {c: v for c, v in found.items() if v is not None}
                if len(values) == len(found):
                    assert rule.holds(values), (rule.code, period, area, values)
                    checked += 1
    assert checked > 1000


# --- injected faults -------------------------------------------------------------------------


def test_each_fault_is_injected(january_faulty: list[Emission]) -> None:
    counts = Counter(e.fault for e in january_faulty)
    for fault in FAULTS:
        assert counts[fault] > 100, fault


def test_malformed_payloads_are_rejected(january_faulty: list[Emission]) -> None:
    reasons = Counter[str]()
    for emission in by_fault(january_faulty, "malformed"):
        assert emission.event is None
        assert emission.raw is not None
        assert emission.kind == "raw"
        result = parse_feed_message(emission.raw, emission.topic_source)
        assert isinstance(result, Rejection), emission.raw
        reasons[result.reason] += 1
    # truncated JSON, Windows-1258 bytes, a decimal comma or a NaN, an unknown field
    assert set(reasons) == {"not_json", "not_utf8", "invalid_field", "unknown_field"}


def test_duplicates_are_byte_identical_to_an_earlier_emission(
    faulty: list[Emission],
) -> None:
    first_sent: dict[bytes, datetime] = {}
    duplicates = 0
    for emission in faulty:
        if emission.fault == "duplicate":
            if emission.at < JANUARY[0]:
                continue
            assert first_sent[emission.payload] < emission.at
            duplicates += 1
        elif emission.raw is None:
            first_sent.setdefault(emission.payload, emission.at)
    assert duplicates > 100


def test_corrections_follow_an_earlier_report_with_a_new_id(faulty: list[Emission]) -> None:
    earlier: dict[tuple[str, str, str, str], list[IndicatorEvent]] = defaultdict(list)
    corrections = 0
    for emission in faulty:
        if not emission.is_valid:
            continue
        event = event_of(emission)
        key = (event.source, event.indicator, event.area, event.period)
        if emission.fault == "correction" and emission.at >= JANUARY[0]:
            assert earlier[key], key
            first = earlier[key][-1]
            assert event.sent_at > first.sent_at
            assert event.event_id != first.event_id
            assert event.value != first.value
            corrections += 1
        earlier[key].append(event)
    assert corrections > 100


def test_late_reports_after_the_deadline_and_on_time_ones_before(
    catalogue: Catalogue, january_faulty: list[Emission]
) -> None:
    late = on_time = 0
    for emission in january_faulty:
        if emission.fault not in (None, "late", "anomaly") or not emission.is_valid:
            continue
        event = event_of(emission)
        indicator = catalogue.indicators[event.indicator]
        deadline = indicator.due_at(indicator.parse_period(event.period))
        if emission.fault == "late":
            assert event.sent_at > deadline
            late += 1
        else:
            assert event.sent_at <= deadline
            on_time += 1
    assert late > 100
    assert on_time > 10 * late


def test_spoofs_claim_another_source_and_are_refused(january_faulty: list[Emission]) -> None:
    spoofs = by_fault(january_faulty, "spoof")
    assert spoofs
    for emission in spoofs:
        assert emission.kind == "raw"
        assert event_of(emission).source != emission.topic_source
        result = parse_feed_message(emission.payload, emission.topic_source)
        assert isinstance(result, Rejection)
        assert result.reason == "source_mismatch"


def test_anomalies_are_outliers_within_range(catalogue: Catalogue) -> None:
    window = {"start": at(2025, 5, 5), "until": at(2025, 5, 9)}
    plain = {
        event_of(e).event_id: event_of(e).value
        for e in generate_events(catalogue, seed=8, **window)
    }
    odd = list(generate_events(catalogue, seed=8, faults=Faults(anomaly=0.2), **window))
    anomalies = by_fault(odd, "anomaly")
    assert len(anomalies) > 100
    for emission in anomalies:
        event = event_of(emission)
        usual = plain[event.event_id]
        assert catalogue.indicators[event.indicator].valid_range.contains(event.value)
        if usual == 0:
            assert event.value > 0
        else:
            assert event.value >= 4.5 * usual or event.value <= 0.5 * usual, (usual, event)


def test_fault_settings_are_checked(catalogue: Catalogue) -> None:
    with pytest.raises(ConfigurationError, match=r"1\.2"):
        Faults(late=0.7, anomaly=0.5)
    with pytest.raises(ConfigurationError, match="--late-rate"):
        Faults(late=-0.1)
    with pytest.raises(ConfigurationError, match="nosuch"):
        generate_events(
            catalogue,
            seed=1,
            start=JANUARY[0],
            until=JANUARY[1],
            faults=Faults(silent=frozenset({"nosuch"})),
        )
    with pytest.raises(ConfigurationError, match="timezone"):
        generate_events(catalogue, seed=1, start=datetime(2025, 1, 1), until=JANUARY[1])


def test_demo_preset() -> None:
    demo = Faults.preset("demo")
    assert demo.silent == frozenset({"sbv"})
    assert all(0 < getattr(demo, fault) <= 0.05 for fault in FAULTS)
    assert Faults.preset("none") == Faults()


# --- the pacer -------------------------------------------------------------------------------


class FakeClock:
    """Simulated time running ``speed`` times faster than a fake wall clock."""

    def __init__(self, start: datetime, speed: float) -> None:
        self.start, self.speed, self.wall = start, speed, 0.0

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.wall * self.speed)

    def wall_seconds_until(self, moment: datetime) -> float:
        return max(0.0, (moment - self.now()).total_seconds() / self.speed)

    def advance(self, seconds: float) -> None:
        assert seconds >= 0
        self.wall += seconds

    def monotonic(self) -> float:
        return self.wall


@dataclass
class FakeSender:
    clock: FakeClock
    calls: list[tuple[str, float, object]] = field(default_factory=list)

    def send_many(self, events: Iterable[IndicatorEvent]) -> Sequence[object]:
        batch = list(events)
        self.calls.append(("many", self.clock.wall, [e.event_id for e in batch]))
        return batch

    def send_raw(self, topic: str, value: bytes, key: bytes | None = None) -> object:
        self.calls.append(("raw", self.clock.wall, (topic, value, key)))
        return None


T0 = at(2025, 3, 10, 9)


def emission(seconds: float, index: int, *, raw: bool = False) -> Emission:
    moment = T0 + timedelta(seconds=seconds)
    if raw:
        return Emission(moment, "ict", None, "malformed", b'{"value": ')
    event = IndicatorEvent.new(
        source="ict", indicator="cyber_incidents", area="son-la", period="2025-03-09", value=index
    )
    return Emission(moment, "ict", event)


def pace(
    emissions: list[Emission], speed: float = 10.0, **options: Any
) -> tuple[PacerStats, FakeSender, FakeClock]:
    clock = FakeClock(T0, speed)
    sender = FakeSender(clock)
    stats = run(
        emissions,
        sender,
        clock,
        topics=Topics("t."),
        wait=clock.advance,
        monotonic=clock.monotonic,
        **options,
    )
    return stats, sender, clock


def test_the_pacer_waits_and_sends_what_is_due_in_batches() -> None:
    emissions = [
        emission(0, 0),
        emission(0, 1),
        emission(0, 2),
        emission(100, 3),
        emission(100, 4, raw=True),
        emission(100, 5),
        emission(1000, 6),
    ]

    stats, sender, clock = pace(emissions)

    ids = [e.event.event_id if e.event else None for e in emissions]
    assert sender.calls == [
        ("many", 0.0, ids[0:3]),
        ("many", 10.0, [ids[3]]),
        ("raw", 10.0, ("t.ioc.feed.ict", b'{"value": ', None)),
        ("many", 10.0, [ids[5]]),
        ("many", 100.0, [ids[6]]),
    ]
    assert clock.wall == 100.0  # waited for the last one, no longer
    assert stats.sent == 7
    assert stats.batches == 3
    assert stats.by_kind == Counter({"event": 6, "raw": 1})
    assert stats.by_fault == Counter({"clean": 6, "malformed": 1})
    assert stats.stopped_by == "exhausted"
    assert stats.last_at == emissions[-1].at


def test_the_pacer_respects_max_events_and_max_batch() -> None:
    emissions = [emission(0, i) for i in range(10)]

    stats, sender, _ = pace(emissions, max_events=7, max_batch=3)

    assert [call[2] for call in sender.calls] == [
        [e.event.event_id for e in emissions[i : i + n] if e.event]
        for i, n in ((0, 3), (3, 3), (6, 1))
    ]
    assert stats.sent == 7
    assert stats.stopped_by == "max_events"


def test_the_pacer_stops_after_its_duration() -> None:
    stats, sender, clock = pace([emission(0, 0), emission(3600, 1)], duration=60.0)

    assert len(sender.calls) == 1
    assert clock.wall == 60.0
    assert stats.stopped_by == "duration"


def test_the_pacer_finishes_its_batch_then_stops_when_asked() -> None:
    stop = threading.Event()
    emissions = [emission(0, 0), emission(0, 1), emission(50, 2)]

    stats, sender, _ = pace(emissions, stop=stop, on_sent=lambda _: stop.set())

    assert len(sender.calls) == 1
    assert stats.sent == 2
    assert stats.stopped_by == "stopped"


def test_ctrl_c_while_waiting_stops_cleanly() -> None:
    def interrupted(seconds: float) -> None:
        raise KeyboardInterrupt

    clock = FakeClock(T0, 10.0)
    sender = FakeSender(clock)
    stats = run(
        [emission(0, 0), emission(100, 1)],
        sender,
        clock,
        topics=Topics(),
        wait=interrupted,
        monotonic=clock.monotonic,
    )

    assert stats.sent == 1
    assert stats.stopped_by == "interrupted"


def test_progress_reports_while_waiting_and_the_summary_is_bilingual() -> None:
    seen: list[int] = []

    stats, _, _ = pace(
        [emission(0, 0), emission(600, 1, raw=True)],
        speed=1.0,
        on_progress=lambda s: seen.append(s.sent),
        progress_every=60.0,
    )

    assert seen == [1] * 10  # once a minute while waiting ten minutes for the second
    vi, en = describe(stats)
    assert "Đã gửi 2 bản tin trong 2 lô (sự kiện 1, thô 1)" in vi
    assert "sai định dạng 1" in vi
    assert "Sent 2 messages in 2 batches (events 1, raw 1)" in en
    assert "malformed 1" in en


# --- the command -----------------------------------------------------------------------------


def test_dry_run_prints_valid_json_lines(
    catalogue: Catalogue, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IOC_CLOCK_START", raising=False)
    app = typer.Typer()
    app.command("simulate")(simulate)
    app.command("other")(lambda: None)  # a group, so the command is invoked by name

    result = CliRunner().invoke(
        app,
        [
            "simulate",
            "--dry-run",
            "--backfill=2",
            "--max-events=30",
            "--start=2025-09-15T10:00",
            "--faults=demo",
            "--seed=3",
        ],
    )

    assert result.exit_code == 0, result.output
    lines = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 30
    for line in lines:
        sent = datetime.fromisoformat(line["at"])
        assert at(2025, 9, 13, 10) <= sent <= at(2025, 9, 15, 10, 1)
        assert line["topic"].startswith("ioc.feed.")
        if line["fault"] is None:
            event = IndicatorEvent.from_json(orjson.dumps(line["event"]))
            assert check_against_catalogue(event, catalogue, now=sent) is None
    assert "Đã dừng: đã gửi đủ --max-events / Stopped: --max-events reached" in result.stderr
