"""The worker's transport on the real broker: it joins its group only once the broker lists
the topics it reads, and hands each record to the agents once."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import aiokafka
import pytest
from kafka.admin import KafkaAdminClient, NewTopic

from agents.gatekeeper import entry_of, position_of
from agents.transport import wait_until_visible
from streams.kafka_config import client_config
from streams.producer import IndicatorProducer
from streams.reader import read_topic
from tests.conftest import SettingsFactory
from tests.support import (
    epoch_micros,
    event_counts,
    indicator_event,
    run_ioc,
    wait_for,
    write_dedupe_entries,
)

pytestmark = pytest.mark.integration


async def test_waits_for_topics_just_created_and_names_the_ones_never_created(
    settings_factory: SettingsFactory,
) -> None:
    settings = settings_factory()
    created = {f"{settings.topic_prefix}fresh.{n}" for n in range(20)}
    never = f"{settings.topic_prefix}never.created"
    admin = KafkaAdminClient(**client_config(settings, "test-admin"))
    consumer = aiokafka.AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
    await consumer.start()
    try:
        # The consumer's metadata is fetched before the topics exist, as a worker's is.
        assert not any(consumer._client.cluster.partitions_for_topic(t) for t in created)
        admin.create_topics([NewTopic(name, 2, 1) for name in sorted(created)])

        assert await wait_until_visible(consumer, created, timeout=30) == set()
        assert all(consumer._client.cluster.partitions_for_topic(t) == {0, 1} for t in created)
        assert await wait_until_visible(consumer, created | {never}, timeout=1) == {never}
    finally:
        await consumer.stop()
        admin.close()


def test_a_new_group_recovering_its_tables_hands_each_waiting_report_over_once(
    settings_factory: SettingsFactory, worker_factory
) -> None:
    # A group with no commits whose tables have a changelog (a worker stopped before its first
    # commit). Faust resumes the feeds, the flow running since it read the changelogs, a
    # moment before it seeks them to their beginnings: the reports a fetch handed over in
    # between were read again, and counted and forwarded twice.
    settings = settings_factory()
    assert run_ioc(settings, "topics", "create").returncode == 0
    sent = datetime.now(UTC) - timedelta(hours=1)
    entry = entry_of(epoch_micros(sent), {uuid.uuid4().bytes: position_of(0, 0)})
    # An entry of another period on each partition: both have a table to recover.
    write_dedupe_entries(
        settings,
        [(f"online_application_rate|son-la|{2010 + p}", entry, p) for p in (0, 1)],
    )
    waiting = [
        indicator_event(sent, "ict", indicator, period, value)
        for indicator, periods, value in (
            ("online_application_rate", ("2021", "2022", "2023"), 65.0),
            ("dvc_online_total", ("2024-Q1", "2024-Q2", "2024-Q3"), 1886.0),
            ("dvc_online_partial", ("2024-Q1", "2024-Q2", "2024-Q3"), 312.0),
            ("dvc_online_full", ("2024-Q1", "2024-Q2", "2024-Q3"), 1554.0),
        )
        for period in periods
    ]
    with IndicatorProducer(settings) as producer:
        partitions = {producer.send(event).partition for event in waiting}
    assert partitions == {0, 1}

    worker_factory(settings)
    indicators = f"{settings.topic_prefix}ioc.indicators"
    wait_for(
        lambda: len(read_topic(settings, indicators)) >= len(waiting) or None,
        60,
        "the waiting reports forwarded",
    )
    time.sleep(2)  # a second reading would follow the first within a fetch or two
    counts = event_counts(settings, "ict", "received", "accepted", "duplicate")
    assert counts == {"received": len(waiting), "accepted": len(waiting), "duplicate": 0}
    assert len(read_topic(settings, indicators)) == len(waiting)
