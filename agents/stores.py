"""A Faust table store for keys ``series|period``: one dictionary of periods per series.

The dedupe table (``validator_seen``) holds one row per (indicator, area, period): a million
distinct reports are a million rows. In Faust's in-memory store each row costs its key string
(``indicator|area|period``), its value, and a slot of one big dictionary. Here the rows of a
series share one dictionary, its key (``indicator|area``) is held once, and each distinct
period string once for the whole store. Measured with the benchmark's million keys (3,446
series, 2,267 distinct periods) and string entries of 56 characters: 249 MB in one flat dict,
130 MB held this way. The entries are 31 bytes now (:mod:`agents.gatekeeper`): the rows
of those keys grew the RSS of a process by 66 MB, against 110 MB with the strings.

The store changes only how rows sit in memory: keys, values, changelog records and recovery
are Faust's memory store's (this is a subclass of it). Tables use it with
``store=PERIODS_STORE``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, MutableMapping
from typing import Any

from faust.stores import STORES
from faust.stores.memory import Store
from faust.types import TP, EventT

#: The URL scheme of :class:`PeriodStore`, and the store URL a table passes. It needs a
#: host: Faust takes a table's store URL only if it is true, and a URL of a scheme alone is not.
SCHEME = "periods"
PERIODS_STORE = f"{SCHEME}://memory"


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


def register() -> None:
    """Make ``periods://`` a Faust store URL (idempotent)."""
    STORES.aliases.setdefault(SCHEME, f"{__name__}:PeriodStore")


register()
