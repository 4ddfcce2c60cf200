"""Faust table stores for this project's two big tables: the dedupe rows, and the series.

**PeriodStore** (``periods://memory``), for keys ``series|period``: one dictionary of periods
per series.

The dedupe table (``validator_seen``) holds one row per (indicator, area, period): a million
distinct reports are a million rows. In Faust's in-memory store each row costs its key string
(``indicator|area|period``), its value, and a slot of one big dictionary. Here the rows of a
series share one dictionary, its key (``indicator|area``) is held once, and each distinct
period string once for the whole store. Measured with the benchmark's million keys (3,446
series, 2,267 distinct periods) and string entries of 56 characters: 249 MB in one flat dict,
130 MB held this way.

The store changes only how rows sit in memory: keys, values, changelog records and recovery
are Faust's memory store's (this is a subclass of it). Tables use it with
``store=PERIODS_STORE``.

**SeriesStore** (``series://memory``), for the series table: a row per ``indicator|area``
holds the series' fields and its last periods (``{"periods": {period: figure}}``). Faust
would write the whole row to the changelog at every change: a report of a daily series
rewrote its 60 periods, about 3.5 kB for one new figure. The changelog of this store holds a
record per period instead (:func:`series_changes`): ``indicator|area|`` the row's fields
without periods, ``indicator|area|<period>`` one figure, a tombstone for a period dropped;
recovery folds them back into rows (:func:`fold_series`), and still reads the whole rows
that changelogs written before hold (key ``indicator|area``). In memory the rows are the
plain dictionary they always were.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from typing import Any

from faust.stores import STORES
from faust.stores.memory import Store
from faust.types import TP, EventT

log = logging.getLogger(__name__)

#: The URL scheme of :class:`PeriodStore`, and the store URL a table passes. It needs a
#: host: Faust takes a table's store URL only if it is true, and a URL of a scheme alone is not.
SCHEME = "periods"
PERIODS_STORE = f"{SCHEME}://memory"
SERIES_SCHEME = "series"
SERIES_STORE = f"{SERIES_SCHEME}://memory"


def split_key(key: str) -> tuple[str, str]:
    """``series|period`` as (series, period): the period is after the last ``|``."""
    series, separator, period = key.rpartition("|")
    if not separator:
        raise KeyError(key)
    return series, period


class PeriodRows(MutableMapping[str, Any]):
    """A mapping of ``series|period`` keys, held as a dictionary of periods per series."""

    __slots__ = ("_periods", "_series", "_size")

    def __init__(self) -> None:
        self._series: dict[str, dict[str, Any]] = {}
        self._periods: dict[str, str] = {}  # one string object per distinct period
        self._size = 0

    def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key``, or ``default``: two dictionary lookups, no exception."""
        series, separator, period = key.rpartition("|")
        rows = self._series.get(series) if separator else None
        return default if rows is None else rows.get(period, default)

    def __getitem__(self, key: str) -> Any:
        series, period = split_key(key)
        try:
            return self._series[series][period]
        except KeyError:
            raise KeyError(key) from None

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        series, separator, period = key.rpartition("|")
        rows = self._series.get(series)
        return bool(separator) and rows is not None and period in rows

    def __setitem__(self, key: str, value: Any) -> None:
        if not isinstance(key, str) or "|" not in key:
            raise TypeError(
                f"PeriodRows keys are 'series|period' strings; got {key!r} "
                "(use Faust's memory store for other keys)"
            )
        series, _, period = key.rpartition("|")
        rows = self._series.get(series)
        if rows is None:
            rows = self._series[series] = {}
        period = self._periods.setdefault(period, period)
        if period not in rows:
            self._size += 1
        rows[period] = value

    def __delitem__(self, key: str) -> None:
        series, period = split_key(key)
        rows = self._series.get(series)
        if rows is None or period not in rows:
            raise KeyError(key)
        del rows[period]
        self._size -= 1
        if not rows:
            del self._series[series]

    def __iter__(self) -> Iterator[str]:
        for series, rows in list(self._series.items()):
            for period in list(rows):
                yield f"{series}|{period}"

    def __len__(self) -> int:
        return self._size

    def clear(self) -> None:
        """Remove every row."""
        self._series.clear()
        self._size = 0

    def drop_series(self, series: str) -> None:
        """Remove every row of ``series``."""
        self._size -= len(self._series.pop(series, ()))


class PeriodStore(Store[str, Any]):
    """Faust's in-memory store, with its rows in a :class:`PeriodRows`.

    Faust's store remembers the changelog partition of every key it recovers (to drop the
    keys of partitions not kept after recovery): a second dictionary of every key. The rows
    of a series all come from one partition (a key's partition is that of its series'
    messages, ``indicator|area``), so this store remembers one partition per series.
    """

    def __post_init__(self) -> None:
        super().__post_init__()
        self.data: PeriodRows = PeriodRows()
        self._series_partition: dict[str, int] = {}

    def _create_batch_iterator(
        self,
        mark_as_delete: Callable[[Any], None],
        to_key: Callable[[Any], Any],
        to_value: Callable[[Any], Any],
        batch: Iterable[EventT[Any]],
    ) -> Iterable[tuple[Any, Any]]:
        partitions = self._series_partition
        for event in batch:
            key = to_key(event.key)
            if event.message.value is None:
                mark_as_delete(key)
            partitions[split_key(key)[0]] = event.message.partition
            yield key, to_value(event.value)

    async def on_recovery_completed(self, active_tps: set[TP], standby_tps: set[TP]) -> None:
        """Drop the series whose partition is not actively assigned here (as Faust's memory
        store drops such keys)."""
        active = {partition for _, partition in active_tps}
        for series, partition in list(self._series_partition.items()):
            if partition not in active:
                self.data.drop_series(series)
                del self._series_partition[series]


Row = Mapping[str, Any]


def series_changes(key: str, old: Row | None, new: Row | None) -> Iterator[tuple[str, Any]]:
    """The changelog records (key, value; None deletes) that turn row ``old`` of series
    ``key`` into ``new`` (None: no row).

    A figure is written when it is not the very object the old row holds: the agents copy
    a row's periods but keep the figures of the periods they did not touch.
    """
    head = f"{key}|"
    if new is None:
        if old is not None:
            yield key, None  # a whole row a changelog written before may still hold
            yield head, None
            yield from ((head + period, None) for period in old["periods"])
        return
    fields = {name: value for name, value in new.items() if name != "periods"}
    before: Mapping[str, Any] = {}
    if old is None or any(old.get(name) != value for name, value in fields.items()):
        yield head, fields
    if old is not None:
        before = old["periods"]
    periods: Mapping[str, Any] = new["periods"]
    for period, figure in periods.items():
        if before.get(period) is not figure:
            yield head + period, figure
    yield from ((head + period, None) for period in before if period not in periods)


def series_of(key: str) -> str:
    """The series (``indicator|area``) of a key of the series changelog."""
    series, _, _ = key.rpartition("|")
    return series if "|" in series else key


def fold_series(
    rows: MutableMapping[str, dict[str, Any]],
    records: Iterable[tuple[str, Any]],
    waiting: MutableMapping[str, dict[str, Any]] | None = None,
) -> None:
    """Apply changelog records (key, value; None deletes), in log order, to ``rows``.

    Keys are those of :func:`series_changes`, or a whole row's (``indicator|area``). In a
    compacted log a series' fields (``indicator|area|``) may come after some of its
    periods: those periods wait in ``waiting`` (kept by the caller from one batch to the
    next), never in ``rows`` as a row without fields. Periods read out of order are sorted
    once, at the end.
    """
    waiting = {} if waiting is None else waiting
    unsorted: set[str] = set()
    for key, value in records:
        series, _, period = key.rpartition("|")
        if "|" not in series:  # a whole row: indicator|area
            waiting.pop(key, None)
            if value is None:
                rows.pop(key, None)
            else:
                rows[key] = {**value, "periods": dict(value.get("periods") or {})}
        elif period == "":  # the row's fields
            row = rows.pop(series, None)
            periods = row["periods"] if row is not None else waiting.pop(series, {})
            if value is not None:
                rows[series] = {**value, "periods": periods}
                unsorted.add(series)
        elif _fold_period(rows.get(series), waiting, series, period, value):
            unsorted.add(series)
    for series in unsorted:
        row = rows.get(series)
        if row is not None:
            row["periods"] = dict(sorted(row["periods"].items()))


def _fold_period(
    row: dict[str, Any] | None,
    waiting: MutableMapping[str, dict[str, Any]],
    series: str,
    period: str,
    value: Any,
) -> bool:
    """Apply one period's record to ``row`` (or to the periods waiting for it); whether the
    period came out of order."""
    if value is None:
        if row is not None:
            row["periods"].pop(period, None)
        elif waiting.get(series, {}).pop(period, None) is not None and not waiting[series]:
            del waiting[series]
        return False
    kept = row["periods"] if row is not None else waiting.setdefault(series, {})
    late = period not in kept and bool(kept) and period < next(reversed(kept))
    kept[period] = value
    return late


class SeriesStore(Store[str, Any]):
    """Faust's in-memory store of the series table, with a changelog record per period.

    Its rows are a plain dictionary of ``indicator|area`` to row. :meth:`changes` gives the
    records of one row's change (used by :class:`agents.batching.BatchedTable`, which writes
    the agents' tables); recovery folds them back (:func:`fold_series`). Faust's own
    ``table[key] = row`` would still write the whole row, which recovery reads as well.
    """

    def __post_init__(self) -> None:
        super().__post_init__()
        self.data: dict[str, dict[str, Any]] = {}
        self._series_partition: dict[str, int] = {}
        #: Periods recovered before the fields of their series (see :func:`fold_series`).
        self._waiting: dict[str, dict[str, Any]] = {}

    @staticmethod
    def changes(key: str, old: Row | None, new: Row | None) -> Iterator[tuple[str, Any]]:
        """The changelog records that turn row ``old`` of ``key`` into ``new``."""
        return series_changes(key, old, new)

    def apply_changelog_batch(
        self,
        batch: Iterable[EventT[Any]],
        to_key: Callable[[Any], Any],
        to_value: Callable[[Any], Any],
    ) -> None:
        """Fold a batch of changelog events into the rows."""
        records = []
        partitions = self._series_partition
        for event in batch:
            key = to_key(event.key)
            records.append((key, None if event.message.value is None else to_value(event.value)))
            partitions[series_of(key)] = event.message.partition
        fold_series(self.data, records, self._waiting)

    async def on_recovery_completed(self, active_tps: set[TP], standby_tps: set[TP]) -> None:
        """Drop the series whose partition is not actively assigned here."""
        if self._waiting:
            log.warning(
                "Nhật ký thay đổi có %d chuỗi chỉ có kỳ, không có trường; bỏ qua / "
                "The changelog holds %d series with periods but no fields; skipped: %s",
                len(self._waiting),
                len(self._waiting),
                sorted(self._waiting)[:5],
            )
            self._waiting.clear()
        active = {partition for _, partition in active_tps}
        for series, partition in list(self._series_partition.items()):
            if partition not in active:
                self.data.pop(series, None)
                del self._series_partition[series]


def register() -> None:
    """Make ``periods://`` and ``series://`` Faust store URLs (idempotent)."""
    STORES.aliases.setdefault(SCHEME, f"{__name__}:PeriodStore")
    STORES.aliases.setdefault(SERIES_SCHEME, f"{__name__}:SeriesStore")


register()
