"""The later agents' reading of internal records (rollups, receipts), on the agents' own code
(no broker): the grouped items a worker posts now, and the single items of older workers."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import orjson

from agents.app import Batch, Outgoing, _Agents, create_app
from ioc.clock import SystemClock
from ioc.settings import Settings
from streams.catalogue import default_catalogue
from streams.periods import Period
from streams.topics import Topics

CATALOGUE = default_catalogue()
REVENUE = CATALOGUE.indicators["tax_revenue"]


def table(name: str) -> Any:
    return SimpleNamespace(data={}, changelog_topic=SimpleNamespace(get_topic_name=lambda: name))


async def handled(
    agent: str, topic: str, tables: dict[str, Any], alerts: dict[str, Any], items: list[Any]
) -> list[dict[str, Any]]:
    """Hand one internal record of ``items`` to ``agent``; the items it posts onwards."""
    monitor = create_app(Settings(), CATALOGUE, SystemClock())
    agents = _Agents(monitor)
    posted: list[Any] = []

    class Producer:
        async def send_records(self, topic: str, records: list[Any]) -> list[Any]:
            posted.extend(orjson.loads(r.value) for r in records if r.value)
            return []

    out = Outgoing(SimpleNamespace(producer=Producer()), monitor.metrics)
    batch = Batch(out, tables, alerts, SystemClock())
    message = SimpleNamespace(
        topic=topic, partition=0, offset=0, value=orjson.dumps({"items": items})
    )
    batch.at(SimpleNamespace(message=message))
    await getattr(agents, agent)(message, batch)
    await batch.close()
    return [item for record in posted if "items" in record for item in record["items"]]


async def reporting_state(items: list[dict[str, Any]]) -> Any:
    """The tax department's reporting state after one receipts record of ``items``."""
    tables = {"reporting": table("reporting")}
    topic = Topics().receipts
    await handled("_report_record", topic, tables, {"sources": table("alerts")}, items)
    return tables["reporting"].data["tax"]


async def rollup(items: list[dict[str, Any]]) -> tuple[Any, list[dict[str, Any]]]:
    """A district's e-ID rollup after one rollups record of ``items``, and what it posted."""
    tables = {"rollups": table("rollups")}
    posted = await handled("_rollup_record", Topics().rollups, tables, {}, items)
    return tables["rollups"].data["eid_activated|moc-chau"], posted


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
