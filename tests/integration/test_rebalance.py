"""Two and three workers share the partitions: every series is exported exactly once."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from agents.ownership import partition_of
from ioc.local.process import free_port
from ioc.settings import Settings
from streams.catalogue import default_catalogue
from streams.producer import IndicatorProducer
from tests.conftest import SettingsFactory
from tests.support import event_counts, indicator_event, scrape, wait_for

pytestmark = pytest.mark.integration

DAY = datetime(2024, 9, 30, tzinfo=UTC)


def exported(workers: list[Settings]) -> Counter[tuple[str, str]]:
    """How many workers export each (area, level) series of e-ID accounts, and the values."""
    seen: Counter[tuple[str, str]] = Counter()
    for settings in workers:
        for (name, labels), _ in scrape(settings.worker_url).items():
            label = dict(labels)
            if name == "ioc_indicator_value" and label.get("indicator") == "eid_activated":
                seen[(label["area"], label["level"])] += 1
    return seen


def total(workers: list[Settings]) -> float:
    return sum(
        value
        for settings in workers
        for (name, labels), value in scrape(settings.worker_url).items()
        if name == "ioc_indicator_value" and ("indicator", "eid_activated") in labels
    )


def test_series_are_exported_once_through_joins_and_leaves(
    settings_factory: SettingsFactory, worker_factory
) -> None:
    catalogue = default_catalogue()
    communes = catalogue.areas_on(DAY, level="commune")
    first = settings_factory(partitions=2)
    assert {partition_of(f"eid_activated|{c}", 2) for c in communes} == {0, 1}
    values = {commune: float(1000 + i) for i, commune in enumerate(communes)}
    expected_total = sum(values.values())
    expected = Counter({(c, "commune"): 1 for c in communes})

    one = worker_factory(first)
    sent = datetime.now(UTC) - timedelta(days=1)
    with IndicatorProducer(first) as producer:
        producer.send_many(
            indicator_event(sent, "police", "eid_activated", "2024-Q3", value, commune)
            for commune, value in values.items()
        )

    def settled(workers: list[Settings]) -> bool:
        communes_only = Counter({k: v for k, v in exported(workers).items() if k[1] == "commune"})
        return communes_only == expected

    wait_for(lambda: settled([first]), 60, "one worker exporting every commune")

    # A second joins: the partitions are split, the newcomer recovers its share from the
    # changelog, and the first stops exporting the rows it no longer owns (Faust's memory
    # store would still hold them).
    second = first.model_copy(
        update={"worker_port": free_port(), "worker_data_dir": first.worker_data_dir / "b"}
    )
    worker_factory(second)
    wait_for(
        lambda: settled([first, second]) and all(exported([w]) for w in (first, second)),
        60,
        "each commune exported once, shared by two workers",
    )

    # One leaves: the other takes every partition over (from the changelog).
    one.stop()
    wait_for(lambda: settled([second]), 90, "the survivor exporting every commune")

    # A third joins: the partitions are split again, and the survivor stops exporting the
    # rows it no longer owns (Faust's memory store would still hold them).
    third = first.model_copy(
        update={
            "worker_port": free_port(),
            "worker_data_dir": first.worker_data_dir / "c",
        }
    )
    worker_factory(third)
    wait_for(
        lambda: settled([second, third]) and all(exported([w]) for w in (second, third)),
        90,
        "each commune exported once, shared by the survivor and the newcomer",
    )
    commune_total = sum(
        value
        for settings in (second, third)
        for (name, labels), value in scrape(settings.worker_url).items()
        if name == "ioc_indicator_value"
        and ("indicator", "eid_activated") in labels
        and ("level", "commune") in labels
    )
    assert commune_total == expected_total
    assert total([second, third]) >= expected_total


def test_a_worker_giving_partitions_up_commits_what_it_processed(
    settings_factory: SettingsFactory, worker_factory
) -> None:
    # Faust forgot the acked offsets of revoked partitions before committing them, so the
    # commit at a revoke had nothing to commit: the partitions' next owners read again what
    # was processed since the last periodic commit, and counted it again. Here no periodic
    # commit comes (every 10 minutes), so everything the first worker processed before the
    # second joins is committed at the revoke, or read again.
    catalogue = default_catalogue()
    communes = catalogue.areas_on(DAY, level="commune")
    first = settings_factory(partitions=2, commit_seconds=600.0)
    worker_factory(first)
    sent_at = datetime.now(UTC) - timedelta(days=1)
    before, after = (
        [
            indicator_event(sent_at, "police", "eid_activated", quarter, 1000.0 + i, commune)
            for i, commune in enumerate(communes)
        ]
        for quarter in ("2024-Q2", "2024-Q3")
    )
    second = first.model_copy(
        update={"worker_port": free_port(), "worker_data_dir": first.worker_data_dir / "b"}
    )

    def counted(*workers: Settings) -> dict[str, float]:
        """Police reports received, accepted, duplicate and rejected, over ``workers``."""
        names = ("received", "accepted", "duplicate", "rejected")
        per_worker = [event_counts(w, "police", *names) for w in workers]
        return {name: sum(c[name] for c in per_worker) for name in names}

    with IndicatorProducer(first) as producer:
        assert {producer.send(event).partition for event in before} == {0, 1}
        wait_for(
            lambda: counted(first)["accepted"] == len(before) or None,
            60,
            "the first worker's share",
        )
        worker_factory(second)  # the first gives every partition up, and gets half back
        producer.send_many(after)  # both take their share after the rebalance
    sent = len(before) + len(after)
    wait_for(
        lambda: counted(first, second)["accepted"] >= sent or None, 60, "every report accepted"
    )
    time.sleep(3)  # a second reading would follow within a fetch or two
    assert counted(first, second) == {
        "received": sent,
        "accepted": sent,
        "duplicate": 0,
        "rejected": 0,
    }
