"""The benchmark's data: N valid events from all 41 sources, each for its own series and period.

The simulator (:func:`streams.simulator.generate_events`) says what the agencies send and when,
with values that keep the catalogue's ranges, ratios and rules; each report is then built with
the producer SDK (:meth:`IndicatorEvent.new`, key ``indicator|area``), as an agency would.

Clean simulated traffic sends exactly one report per (indicator, area, period), so taking the
newest N reports before ``end`` gives N distinct keys; the window reaches back as far as it
needs (about 540 reports a simulated day, so a million reach back five years). A short window
misses the sources that report only yearly or quarterly: each missing source then gets its
latest report of the last 400 days in place of one of the oldest reports, so every source is
in the data whatever N is (N must be at least the number of sources).

On top of the N distinct reports, a share (``duplicate_rate``) is sent a second time, byte for
byte, after all of them (an agency retrying): the peer and the worker must count those as
duplicates and accept exactly N. That is the pre-load (:attr:`Dataset.load`).

The latency run offers :attr:`Dataset.live` at a fixed rate once a runner has caught up: the
newest reports, with keys of their own (a report already seen would be a duplicate).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from ioc.errors import ConfigurationError
from streams.catalogue import Catalogue
from streams.events import IndicatorEvent
from streams.periods import LOCAL_TZ
from streams.simulator import Emission, generate_events

#: Simulated days generated at a time while reaching back for more reports.
CHUNK_DAYS = 30
#: How far back a missing source's latest report is looked for (every yearly deadline).
COVERAGE_DAYS = 400
#: Reports before this year are not generated (the contract refuses timestamps before 2000).
FIRST_YEAR = 2001
DEFAULT_SEED = 7

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


@dataclass(frozen=True, slots=True)
class Record:
    """One message to pre-load: its source's feed, key, bytes, and the period it reports."""

    source: str
    key: bytes
    value: bytes
    period: str

    @property
    def series_period(self) -> str:
        """``indicator|area|period``: the dedupe key of the event (one per distinct report)."""
        return f"{self.key.decode()}|{self.period}"


@dataclass(frozen=True)
class Dataset:
    """The pre-load (``distinct`` reports, then ``duplicates`` of them sent again), and the
    live reports offered at a fixed rate afterwards."""

    load: list[Record]
    live: list[Record]
    distinct: int
    duplicates: int
    first: datetime  # send time of the oldest report
    last: datetime  # send time of the newest report

    @property
    def sources(self) -> list[str]:
        """The sources present in the pre-load, sorted."""
        return sorted({record.source for record in self.load})

    def per_source(self, *, originals_only: bool = False) -> Counter[str]:
        """Pre-loaded messages per source (all, or only the distinct reports)."""
        records = self.load[: self.distinct] if originals_only else self.load
        return Counter(record.source for record in records)


def default_end() -> datetime:
    """Midnight today, province time: every generated report was sent before now."""
    now = datetime.now(LOCAL_TZ)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def _newest(catalogue: Catalogue, count: int, seed: int, end: datetime) -> list[Emission]:
    """The newest ``count`` clean emissions sent before ``end``, oldest first."""
    chunks: list[list[Emission]] = []
    total = 0
    until = end
    while total < count:
        start = until - timedelta(days=CHUNK_DAYS)
        if start.year < FIRST_YEAR:
            raise ConfigurationError(
                f"Danh mục chỉ cho {total:,} sự kiện khác khoá từ năm {FIRST_YEAR}, cần "
                f"{count:,}; hãy giảm --events / The catalogue yields only {total:,} events "
                f"with distinct keys since {FIRST_YEAR}, {count:,} are needed: lower --events"
            )
        chunk = list(generate_events(catalogue, seed=seed, start=start, until=until))
        chunks.append(chunk)
        total += len(chunk)
        until = start
    emissions = [emission for chunk in reversed(chunks) for emission in chunk]
    return emissions[len(emissions) - count :]


def _identity(emission: Emission) -> tuple[str, str, str]:
    event = emission.event
    assert event is not None  # clean traffic: every emission is an event
    return event.indicator, event.area, event.period


def _cover_sources(
    catalogue: Catalogue,
    emissions: list[Emission],
    seed: int,
    end: datetime,
    taken: set[tuple[str, str, str]],
) -> list[Emission]:
    """``emissions`` with the latest report (not ``taken``) of every missing source in place
    of the oldest reports."""
    present = {emission.topic_source for emission in emissions}
    extra: list[Emission] = []
    for source in sorted(set(catalogue.sources) - present):
        found = [
            emission
            for emission in generate_events(
                catalogue,
                seed=seed,
                start=end - timedelta(days=COVERAGE_DAYS),
                until=end,
                sources=[source],
            )
            if _identity(emission) not in taken
        ]
        if found:
            extra.append(found[-1])
    if not extra:
        return emissions
    # Make room by dropping the oldest reports of sources that have others (events >= the
    # number of sources, so there are enough). Another source reports other indicators: no
    # key of ``extra`` is among ``emissions``.
    left = Counter(emission.topic_source for emission in emissions)
    drop = len(extra)
    kept: list[Emission] = []
    for emission in emissions:
        if drop and left[emission.topic_source] > 1:
            left[emission.topic_source] -= 1
            drop -= 1
        else:
            kept.append(emission)
    return sorted([*extra, *kept], key=lambda emission: emission.ts)


def _record(emission: Emission) -> Record:
    planned = emission.event
    assert planned is not None  # clean traffic: every emission is an event
    event = IndicatorEvent.new(
        source=planned.source,
        indicator=planned.indicator,
        area=planned.area,
        period=planned.period,
        value=planned.value,
        numerator=planned.numerator,
        denominator=planned.denominator,
        observed_at=planned.observed_at,
        sent_at=planned.sent_at,
    )
    return Record(event.source, event.key, event.to_json(), event.period)


def build_dataset(
    catalogue: Catalogue,
    events: int,
    *,
    live: int = 0,
    duplicate_rate: float = 0.01,
    seed: int = DEFAULT_SEED,
    end: datetime | None = None,
    progress: Progress = _quiet,
) -> Dataset:
    """``events`` distinct reports from every source, then ``duplicate_rate`` of them again;
    and ``live`` newer reports for the latency run."""
    sources = len(catalogue.sources)
    if events < sources:
        raise ConfigurationError(
            f"--events phải ít nhất {sources} (một báo cáo cho mỗi nguồn) / "
            f"--events must be at least {sources} (one report per source)"
        )
    if not 0.0 <= duplicate_rate <= 1.0:
        raise ConfigurationError(
            f"--duplicates phải nằm trong 0..1, nhận được {duplicate_rate} / "
            f"--duplicates must be within 0..1, received {duplicate_rate}"
        )
    end = end or default_end()
    newest = _newest(catalogue, events + live, seed, end)
    fresh = newest[events:]
    taken = {_identity(emission) for emission in fresh}
    emissions = _cover_sources(catalogue, newest[:events], seed, end, taken)
    progress(
        f"Đã lập lịch {len(newest):,} báo cáo; đang tạo sự kiện bằng SDK ... / "
        f"Scheduled {len(newest):,} reports; building the events with the SDK ..."
    )
    records = [_record(emission) for emission in emissions]
    duplicates = round(events * duplicate_rate)
    if duplicates:
        step = events / duplicates
        records.extend(records[int(i * step)] for i in range(duplicates))
    return Dataset(
        load=records,
        live=[_record(emission) for emission in fresh],
        distinct=events,
        duplicates=duplicates,
        first=emissions[0].at,
        last=(fresh or emissions)[-1].at,
    )
