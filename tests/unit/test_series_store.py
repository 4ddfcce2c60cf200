"""The series table's store: a changelog record per period, folded back into whole rows."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import faust
import orjson
import pytest
from faust.types import TP
from hypothesis import given
from hypothesis import strategies as st

from agents.batching import BatchedTable
from agents.quality import with_period
from agents.stores import SERIES_STORE, SeriesStore, fold_series, series_changes

SERIES = ["eid_activated|son-la", "tax_revenue|moc-chau"]
PERIODS = ["2024-01", "2024-02", "2024-03", "2024-04", "2024-05"]
KEEP = 3

#: A change to one series: a figure for a period, or the row deleted.
CHANGES = st.lists(
    st.tuples(
        st.sampled_from(SERIES),
        st.one_of(st.sampled_from(PERIODS), st.none()),
        st.integers(0, 3),
    ),
    max_size=40,
)


def _row(series: str, periods: dict[str, Any]) -> dict[str, Any]:
    indicator, area = series.split("|")
    return {"source": "s", "indicator": indicator, "area": area, "periods": periods}


def _apply(changes: list[tuple[str, str | None, int]]) -> tuple[dict[str, Any], list[Any]]:
    """The rows after ``changes`` (as the ingest agent makes them) and their records."""
    rows: dict[str, Any] = {}
    records: list[tuple[str, Any]] = []
    for series, period, value in changes:
        old = rows.get(series)
        if period is None:
            new = None
            rows.pop(series, None)
        else:
            periods = with_period(old["periods"] if old else {}, period, [value], KEEP)
            new = rows[series] = _row(series, periods)
        records.extend(series_changes(series, old, new))
    return rows, records


def _json_round_trip(rows: dict[str, Any]) -> Any:
    return orjson.loads(orjson.dumps(rows))


@given(CHANGES)
def test_folding_the_records_gives_back_the_rows(changes: list[Any]) -> None:
    rows, records = _apply(changes)
    folded: dict[str, Any] = {}
    fold_series(folded, records)
    assert folded == rows
    assert all(list(row["periods"]) == sorted(row["periods"]) for row in folded.values())


@given(CHANGES)
def test_a_compacted_changelog_folds_to_the_same_rows(changes: list[Any]) -> None:
    rows, records = _apply(changes)
    # Compaction keeps the last record of each key, where it was in the log.
    last = {key: index for index, (key, _) in enumerate(records)}
    compacted = [record for index, record in enumerate(records) if last[record[0]] == index]
    folded: dict[str, Any] = {}
    waiting: dict[str, Any] = {}
    half = len(compacted) // 2  # recovered in two batches
    fold_series(folded, compacted[:half], waiting)
    assert all("indicator" in row for row in folded.values())  # never a row without fields
    fold_series(folded, compacted[half:], waiting)
    assert folded == rows
    assert waiting == {}


def test_a_new_period_writes_one_small_record_not_the_row() -> None:
    periods = {f"2024-01-{day:02d}": [float(day), None, None, "t"] for day in range(1, 31)}
    old = _row("eid_activated|son-la", periods)
    new = _row("eid_activated|son-la", with_period(periods, "2024-01-31", [31.0], 30))
    records = list(series_changes("eid_activated|son-la", old, new))
    assert records == [
        ("eid_activated|son-la|2024-01-31", [31.0]),
        ("eid_activated|son-la|2024-01-01", None),  # dropped: 30 kept
    ]
    assert list(series_changes("eid_activated|son-la", new, new)) == []


def test_whole_rows_of_an_older_changelog_are_read_and_updated() -> None:
    rows: dict[str, Any] = {}
    whole = _json_round_trip(_row("eid_activated|son-la", {"2024-01": [1], "2024-02": [2]}))
    fold_series(
        rows,
        [
            ("eid_activated|son-la", whole),
            ("eid_activated|son-la|2024-03", [3]),
            ("eid_activated|son-la|2024-01", None),
        ],
    )
    assert rows == {
        "eid_activated|son-la": _row("eid_activated|son-la", {"2024-02": [2], "2024-03": [3]})
    }
    old = rows["eid_activated|son-la"]
    assert list(series_changes("eid_activated|son-la", old, None)) == [
        ("eid_activated|son-la", None),
        ("eid_activated|son-la|", None),
        ("eid_activated|son-la|2024-02", None),
        ("eid_activated|son-la|2024-03", None),
    ]


@dataclass
class _Message:
    partition: int
    value: bytes | None


@dataclass
class _Event:
    key: str
    value: Any
    message: _Message


def _changelog(key: str, value: Any, partition: int) -> _Event:
    return _Event(key, value, _Message(partition, None if value is None else b"x"))


@pytest.fixture
def table() -> Any:
    app = faust.App("test-series-store", broker="memory://", store="memory://")
    return app.Table("series", default=None, partitions=4, store=SERIES_STORE)


def test_batched_writes_produce_records_per_period_on_the_event_partition(table: Any) -> None:
    assert isinstance(table.data, SeriesStore)
    batched = BatchedTable(table.data)
    batched.event = _changelog("x", None, 2)
    batched["tax_revenue|moc-chau"] = _row("tax_revenue|moc-chau", {"2024": [5.0]})
    records = batched.flush()
    assert [(r.partition, orjson.loads(r.key), orjson.loads(r.value)) for r in records] == [
        (
            2,
            "tax_revenue|moc-chau|",
            {"source": "s", "indicator": "tax_revenue", "area": "moc-chau"},
        ),
        (2, "tax_revenue|moc-chau|2024", [5.0]),
    ]
    assert table.data.data["tax_revenue|moc-chau"]["periods"] == {"2024": [5.0]}
    del batched["tax_revenue|moc-chau"]
    assert [orjson.loads(r.key) for r in batched.flush() if r.value is None] == [
        "tax_revenue|moc-chau",
        "tax_revenue|moc-chau|",
        "tax_revenue|moc-chau|2024",
    ]
    assert table.data.data == {}


async def test_recovery_folds_and_keeps_only_active_partitions(
    table: Any, caplog: pytest.LogCaptureFixture
) -> None:
    store = table.data
    head = {"source": "s", "indicator": "tax_revenue", "area": "moc-chau"}
    batch = [
        _changelog("tax_revenue|moc-chau|2025", [2], 1),  # before its fields: compacted
        _changelog("tax_revenue|moc-chau|", head, 1),
        _changelog("tax_revenue|moc-chau|2024", [1], 1),
        _changelog("eid_activated|son-la", _row("eid_activated|son-la", {"2024": [3]}), 0),
        _changelog("forest_fires|son-la|2024", [4], 2),  # its fields never came
    ]
    store.apply_changelog_batch(batch, to_key=lambda key: key, to_value=lambda value: value)
    assert store.data["tax_revenue|moc-chau"] == {**head, "periods": {"2024": [1], "2025": [2]}}
    assert list(store.data["tax_revenue|moc-chau"]["periods"]) == ["2024", "2025"]
    assert "forest_fires|son-la" not in store.data
    with caplog.at_level(logging.WARNING, logger="agents.stores"):
        await store.on_recovery_completed({TP("feed", 1), TP("feed", 2)}, {TP("feed", 0)})
    assert list(store.data) == ["tax_revenue|moc-chau"]
    assert "forest_fires|son-la" in caplog.text
