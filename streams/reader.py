"""Reading a topic back from the beginning until it is drained (rejects, tests, audits)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from ioc.settings import Settings
from streams.kafka_config import client_config


class Record(NamedTuple):
    """One record of a topic, where it sits and what it holds."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def read_records(settings: Settings, topic: str, timeout_ms: int = 3000) -> list[Record]:
    """Every record currently in ``topic``, in partition then offset order."""
    consumer = KafkaConsumer(
        **client_config(settings, "ioc-reader"),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        consumer_timeout_ms=timeout_ms,
    )
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        end = consumer.end_offsets(assigned)
        records: list[Record] = []
        for tp in assigned:
            consumer.seek_to_beginning(tp)
        while any(consumer.position(tp) < end[tp] for tp in assigned):
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(Record(r.partition, r.offset, r.key, r.value) for r in batch)
        records.sort(key=lambda r: (r.partition, r.offset))
        return records
    finally:
        consumer.close()


def read_topic(settings: Settings, topic: str, timeout_ms: int = 3000) -> list[bytes]:
    """Every value currently in ``topic``, in partition then offset order."""
    return [r.value for r in read_records(settings, topic, timeout_ms) if r.value is not None]


def behind(settings: Settings, topics: Iterable[str]) -> dict[TopicPartition, int]:
    """The partitions of ``topics`` where the worker's consumer group has not committed every
    message yet, with how many messages each is behind (partitions caught up are left out)."""
    admin = KafkaAdminClient(**client_config(settings, "ioc-lag"))
    try:
        group = f"{settings.topic_prefix}{settings.app_id}"
        committed = admin.list_group_offsets({group: None}).get(group, {})
    finally:
        admin.close()
    consumer = KafkaConsumer(**client_config(settings, "ioc-lag"))
    try:
        partitions = [
            TopicPartition(name, p)
            for name in topics
            for p in sorted(consumer.partitions_for_topic(name) or ())
        ]
        ends = consumer.end_offsets(partitions)
    finally:
        consumer.close()
    lagging: dict[TopicPartition, int] = {}
    for tp, end in ends.items():
        done = committed.get(tp)
        left = end - (done.offset if done is not None and done.offset >= 0 else 0)
        if left > 0:
            lagging[tp] = left
    return lagging


def uncommitted(settings: Settings, topics: Iterable[str]) -> int:
    """Messages of ``topics`` that the worker's consumer group has not committed yet: every
    message before a committed offset was processed, so 0 means all of them were."""
    return sum(behind(settings, topics).values())
