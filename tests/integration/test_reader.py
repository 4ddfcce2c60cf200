"""``streams.reader.behind``: how far the worker's group is behind, partition by partition."""

from __future__ import annotations

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.structs import OffsetAndMetadata

from streams.kafka_config import client_config
from streams.reader import behind, uncommitted
from tests.conftest import SettingsFactory

pytestmark = pytest.mark.integration


def test_partitions_behind_the_groups_commits_are_named_with_their_lag(
    settings_factory: SettingsFactory,
) -> None:
    settings = settings_factory()
    topic = f"{settings.topic_prefix}reader-lag"
    admin = KafkaAdminClient(**client_config(settings, "test-admin"))
    try:
        admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    finally:
        admin.close()
    producer = KafkaProducer(**client_config(settings, "test-producer"))
    try:
        for partition, count in ((0, 3), (1, 1), (2, 2)):
            for n in range(count):
                producer.send(topic, f"{partition}-{n}".encode(), partition=partition)
        producer.flush()
    finally:
        producer.close()
    group = f"{settings.topic_prefix}{settings.app_id}"
    consumer = KafkaConsumer(**client_config(settings, "test-group"), group_id=group)
    try:
        # The group has processed 2 of partition 0's 3 records and both of partition 2's.
        consumer.commit(
            {
                TopicPartition(topic, 0): OffsetAndMetadata(2, "", -1),
                TopicPartition(topic, 2): OffsetAndMetadata(2, "", -1),
            }
        )
    finally:
        consumer.close()

    assert behind(settings, [topic]) == {TopicPartition(topic, 0): 1, TopicPartition(topic, 1): 1}
    assert uncommitted(settings, [topic]) == 2
