"""The later agents' reading of internal records (rollups, receipts), on the agents' own code
(no broker): the grouped items a worker posts now, and the single items of older workers."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson

from bench.agents import InProcessAgents, message_of
from ioc.settings import Settings
from streams.catalogue import default_catalogue
from streams.periods import Period
from streams.topics import Topics

CATALOGUE = default_catalogue()
REVENUE = CATALOGUE.indicators["tax_revenue"]


async def handled(stage: str, topic: str, items: list[Any]) -> InProcessAgents:
    """The agents after ``stage`` read one internal record of ``items`` from ``topic``."""
    agents = InProcessAgents(Settings(), CATALOGUE)
    record = message_of(topic, 0, 0, None, orjson.dumps({"items": items}), None)
    await agents.feed(stage, [record])
    return agents


def items_on(agents: InProcessAgents, topic: str) -> list[dict[str, Any]]:
    """The items the agents posted to ``topic``."""
    return [item for r in agents.take(topic) if r.value for item in orjson.loads(r.value)["items"]]


async def reporting_state(items: list[dict[str, Any]]) -> Any:
    """The tax department's reporting state after one receipts record of ``items``."""
    agents = await handled("reporting", Topics().receipts, items)
    return agents.rows("reporting", "reporting")["tax"]


async def rollup(items: list[dict[str, Any]]) -> tuple[Any, list[dict[str, Any]]]:
    """A district's e-ID rollup after one rollups record of ``items``, and what it posted."""
    agents = await handled("rollup", Topics().rollups, items)
    entry = agents.rows("rollup", "rollups")["eid_activated|moc-chau"]
    return entry, items_on(agents, Topics().rollups)


async def test_grouped_children_and_the_single_children_of_older_workers_agree() -> None:
    head = {"indicator": "eid_activated", "area": "moc-chau", "period": "2024-Q3", "kind": "r"}
    figures = {"moc-chau.a": [100.0, None, None], "moc-chau.b": [50.0, None, None]}

    grouped, onwards = await rollup([{**head, "children": figures}])
    single, single_onwards = await rollup(
        [{**head, "child": child, "figure": figure} for child, figure in figures.items()]
    )

    assert grouped == single
    assert grouped["values"]["2024-Q3"][0] == 150.0
    # The district's own rollup goes on to the province, grouped too.
    assert onwards == single_onwards
    assert onwards == [
        {
            "indicator": "eid_activated",
            "area": "son-la",
            "period": "2024-Q3",
            "kind": "c",
            "children": {"moc-chau": [150.0, None, None]},
        }
    ]


async def test_grouped_receipts_and_the_single_receipts_of_older_workers_agree() -> None:
    month = Period.parse("2025-03", "month")
    on_time = (REVENUE.due_at(month) - timedelta(days=1)).isoformat()
    late = (REVENUE.due_at(month) + timedelta(hours=1)).isoformat()
    head = {"source": "tax", "indicator": "tax_revenue", "period": "2025-03"}

    grouped = await reporting_state(
        [{"type": "receipts", **head, "areas": {"son-la": on_time, "moc-chau": late}}]
    )
    single = await reporting_state(
        [
            {"type": "receipt", **head, "area": "son-la", "sent_at": on_time},
            {"type": "receipt", **head, "area": "moc-chau", "sent_at": late},
        ]
    )

    areas = grouped["periods"]["tax_revenue"]["2025-03"]["areas"]
    assert areas == {"son-la": True, "moc-chau": False}
    assert grouped["last_report"] == late
    assert {k: v for k, v in grouped.items() if k != "watch_since"} == {
        k: v for k, v in single.items() if k != "watch_since"
    }
