"""The dedupe table's store: a mapping like any other, held as periods per series, and
recovered and pruned like Faust's own memory store."""

from __future__ import annotations

import re
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import faust
import pytest
from faust.types import TP
from hypothesis import given
from hypothesis import strategies as st

from agents.batching import BatchedTable
from agents.gatekeeper import Gatekeeper
from agents.stores import PERIODS_STORE, PeriodRows, PeriodStore
from ioc.clock import SystemClock
from streams.catalogue import default_catalogue
from streams.periods import LOCAL_TZ
from streams.simulator import Faults, generate_events

SERIES = st.sampled_from(["eid_activated|son-la", "tax_revenue|moc-chau", "a|b|c", ""])
PERIODS = st.sampled_from(["2024", "2024-Q3", "2024-09-12", ""])
KEYS = st.builds(lambda series, period: f"{series}|{period}", SERIES, PERIODS)
OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("set"), KEYS, st.integers()),
        st.tuples(st.just("delete"), KEYS, st.none()),
        st.tuples(st.just("pop"), KEYS, st.none()),
    ),
    max_size=40,
)


@given(OPERATIONS, st.lists(KEYS, max_size=5))
def test_rows_behave_as_a_dict(operations: list[tuple[str, str, Any]], probes: list[str]) -> None:
    rows, model = PeriodRows(), {}
    for operation, key, value in operations:
        if operation == "set":
            rows[key] = model[key] = value
        elif operation == "pop":
            assert rows.pop(key, None) == model.pop(key, None)
        else:
            with pytest.raises(KeyError) if key not in model else nullcontext():
                del rows[key]
            model.pop(key, None)
        assert len(rows) == len(model)
    assert dict(rows.items()) == model
    assert sorted(rows) == sorted(model)
    for key in [*probes, "no separator", "2024"]:  # "2024" is the period of "|2024"
        assert (key in rows) == (key in model)
        assert rows.get(key, "default") == model.get(key, "default")
        if key not in model:
            with pytest.raises(KeyError):
                rows[key]


def test_rows_hold_each_period_string_once() -> None:
    rows = PeriodRows()
    rows["eid_activated|son-la|" + "2024-Q3"] = "a"
    rows["tax_revenue|moc-chau|" + "".join(["2024", "-Q3"])] = "b"  # an equal, other string
    (first,), (second,) = ([period for period in rows._series[series]] for series in rows._series)
    assert first == second == "2024-Q3"
    assert first is second


def test_a_key_without_a_series_is_refused_with_a_clear_error() -> None:
    rows = PeriodRows()
    with pytest.raises(TypeError, match=re.escape("'series|period' strings; got 'no-period'")):
        rows["no-period"] = 1
    with pytest.raises(TypeError, match="got 42"):
        rows[42] = 1  # type: ignore[index]
    assert len(rows) == 0


def test_clear_and_drop_series() -> None:
    rows = PeriodRows()
    rows["s|1"], rows["s|2"], rows["t|1"] = 1, 2, 3
    rows.drop_series("s")
    assert dict(rows.items()) == {"t|1": 3}
    assert len(rows) == 1
    rows.drop_series("absent")
    rows.clear()
    assert len(rows) == 0
    assert list(rows) == []


@dataclass
class _Message:
    partition: int
    value: bytes | None


@dataclass
class _Event:
    """A changelog event as Faust's recovery hands it to a store (decoded key and value)."""

    key: str
    value: Any
    message: _Message


def _changelog(key: str, value: Any, partition: int) -> _Event:
    return _Event(key, value, _Message(partition, None if value is None else b"x"))


@pytest.fixture
def table() -> Any:
    app = faust.App("test-stores", broker="memory://", store="memory://")
    return app.Table("seen", default=None, partitions=4, store=PERIODS_STORE)


def test_a_table_with_the_store_url_gets_the_store(table: Any) -> None:
    assert isinstance(table.data, PeriodStore)
    assert isinstance(table.data.data, PeriodRows)
    table.data["s|2024"] = "entry"
    assert table.data["s|2024"] == "entry"
    assert len(table) == 1


async def test_recovery_applies_the_changelog_and_keeps_only_active_partitions(
    table: Any,
) -> None:
    store = table.data
    batch = [
        _changelog("eid_activated|son-la|2024", "a", 0),
        _changelog("eid_activated|son-la|2025", "b", 0),
        _changelog("tax_revenue|moc-chau|2024", "c", 1),
        _changelog("tax_revenue|moc-chau|2025", "d", 1),
        _changelog("tax_revenue|moc-chau|2025", None, 1),  # deleted later in the changelog
        _changelog("forest_fires|son-la|2024", "e", 2),
    ]
    store.apply_changelog_batch(batch, to_key=lambda key: key, to_value=lambda value: value)
    assert dict(store.data.items()) == {
        "eid_activated|son-la|2024": "a",
        "eid_activated|son-la|2025": "b",
        "tax_revenue|moc-chau|2024": "c",
        "forest_fires|son-la|2024": "e",
    }
    assert store._key_partition == {}  # one partition per series, not one per key
    await store.on_recovery_completed({TP("feed", 0), TP("feed", 2)}, {TP("feed", 1)})
    assert dict(store.data.items()) == {
        "eid_activated|son-la|2024": "a",
        "eid_activated|son-la|2025": "b",
        "forest_fires|son-la|2024": "e",
    }
    assert len(table) == 3


def test_batched_writes_land_in_the_rows(table: Any) -> None:
    batched = BatchedTable(table.data)
    batched.event = _changelog("s|1", None, 3)
    batched["s|2024"] = "entry"
    assert batched.get("s|2024") == "entry"
    (record,) = batched.flush()
    assert record.partition == 3
    assert table.data.data.get("s|2024") == "entry"


class _At(SystemClock):
    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def now(self) -> datetime:
        return self.moment


def test_the_gatekeeper_decides_the_same_over_the_rows_as_over_a_dict() -> None:
    catalogue = default_catalogue()
    start = datetime(2025, 1, 1, tzinfo=LOCAL_TZ)
    until = start + timedelta(days=7)
    faults = Faults(duplicate=0.1, correction=0.1, malformed=0.05, spoof=0.05, late=0.05)
    clock = _At(until)
    over_dict = Gatekeeper(catalogue, clock, {})
    rows = PeriodRows()
    over_rows = Gatekeeper(catalogue, clock, rows)
    kinds = set()
    for offset, emission in enumerate(
        generate_events(catalogue, seed=3, start=start, until=until, faults=faults)
    ):
        args = (emission.payload, emission.key, emission.topic_source, offset)
        expected, outcome = over_dict.judge(*args), over_rows.judge(*args)
        assert type(outcome) is type(expected)
        kinds.add(type(outcome).__name__)
    assert dict(rows.items()) == over_dict.seen
    assert kinds == {"Forward", "Reject", "Duplicate"}
