"""Reading a topic back from the beginning until it is drained (rejects, tests, audits)."""

from __future__ import annotations

from kafka import KafkaConsumer, TopicPartition

from ioc.settings import Settings
from streams.kafka_config import client_config


def read_topic(settings: Settings, topic: str, timeout_ms: int = 3000) -> list[bytes]:
    """Every value currently in ``topic``, in partition then offset order."""
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
        values: list[bytes] = []
        for tp in assigned:
            consumer.seek_to_beginning(tp)
        while any(consumer.position(tp) < end[tp] for tp in assigned):
            for records in consumer.poll(timeout_ms=500).values():
                values.extend(record.value for record in records)
        return values
    finally:
        consumer.close()
