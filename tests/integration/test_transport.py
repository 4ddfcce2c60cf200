"""The worker joins its group only once the real broker lists the topics it reads."""

from __future__ import annotations

import aiokafka
import pytest
from kafka.admin import KafkaAdminClient, NewTopic

from agents.transport import wait_until_visible
from streams.kafka_config import client_config
from tests.conftest import SettingsFactory

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
