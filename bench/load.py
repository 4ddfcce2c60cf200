"""Kafka input and output of the benchmark: pre-load, paced load, reading a topic back.

Pre-loading fills aiokafka record batches directly (one open batch per topic and partition,
sent when full): about five times the rate of one ``send`` per message, so a million events
load in seconds rather than a minute. Partitions are chosen as every producer of the project
chooses them (murmur2 of the key, as the Java client and kafka-python do), so a series stays
on one partition and the worker's dedupe state with it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner

from bench.dataset import Record
from ioc.settings import Settings
from streams.topics import Topics, ensure_topics

#: Bytes per record batch when pre-loading (the broker accepts 1 MiB by default).
BATCH_BYTES = 1 << 20


def feed_topics(prefix: str, sources: Iterable[str]) -> list[str]:
    """The feed topics of ``sources`` under ``prefix``, sorted by source."""
    topics = Topics(prefix)
    return [topics.feed(source) for source in sorted(sources)]


def create_feeds(settings: Settings, sources: Iterable[str]) -> list[str]:
    """Create the feed topics of ``settings.topic_prefix`` (``settings.partitions`` each)."""
    names = feed_topics(settings.topic_prefix, sources)
    ensure_topics(settings, names)
    return names


class Partitioner:
    """The partition of a key, as the project's producers pick it (cached per key)."""

    def __init__(self, partitions: int) -> None:
        self.all = list(range(partitions))
        self._pick = DefaultPartitioner()
        self._cache: dict[bytes, int] = {}

    def __call__(self, key: bytes) -> int:
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = self._pick(key, self.all, self.all)
        return found


def _producer(bootstrap: str, **config: Any) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap.split(","),
        client_id="ioc-bench",
        acks=1,
        linger_ms=config.pop("linger_ms", 20),
        max_batch_size=BATCH_BYTES,
        **config,
    )


async def _preload(
    bootstrap: str, prefix: str, records: Sequence[Record], partitions: int
) -> float:
    topics = Topics(prefix)
    partition_of = Partitioner(partitions)
    producer = _producer(bootstrap)
    await producer.start()
    try:
        began = time.perf_counter()
        names = {source: topics.feed(source) for source in {r.source for r in records}}
        open_batches: dict[tuple[str, int], Any] = {}
        pending: list[asyncio.Future[Any]] = []
        for record in records:
            topic, partition = names[record.source], partition_of(record.key)
            batch = open_batches.get((topic, partition))
            if batch is None:
                batch = open_batches[topic, partition] = producer.create_batch()
            if batch.append(key=record.key, value=record.value, timestamp=None) is None:
                pending.append(await producer.send_batch(batch, topic, partition=partition))
                batch = open_batches[topic, partition] = producer.create_batch()
                batch.append(key=record.key, value=record.value, timestamp=None)
        for (topic, partition), batch in open_batches.items():
            pending.append(await producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*pending)
        return time.perf_counter() - began
    finally:
        await producer.stop()


def preload(settings: Settings, records: Sequence[Record]) -> float:
    """Send ``records`` to the feed topics of ``settings.topic_prefix``; return the seconds."""
    return asyncio.run(
        _preload(settings.bootstrap_servers, settings.topic_prefix, records, settings.partitions)
    )


@dataclass(frozen=True)
class Paced:
    """What a paced load sent: each record's produce time (ms, its Kafka timestamp)."""

    produced_ms: list[int]
    seconds: float

    @property
    def offered_rate(self) -> float:
        """Events per second actually offered."""
        return len(self.produced_ms) / self.seconds if self.seconds > 0 else 0.0


async def _paced(bootstrap: str, prefix: str, records: Sequence[Record], rate: float) -> Paced:
    """Send ``records`` at ``rate`` per second, in ticks of 10 ms, each stamped as sent."""
    topics = Topics(prefix)
    producer = _producer(bootstrap, linger_ms=5)  # the SDK's linger: an agency's producer
    await producer.start()
    produced: list[int] = []
    pending: list[asyncio.Future[Any]] = []
    try:
        began = time.perf_counter()
        tick = 0.01
        sent = 0
        while sent < len(records):
            due = min(len(records), int((time.perf_counter() - began) * rate) + 1)
            while sent < due:
                record = records[sent]
                stamp = int(time.time() * 1000)
                pending.append(
                    await producer.send(
                        topics.feed(record.source),
                        record.value,
                        key=record.key,
                        timestamp_ms=stamp,
                    )
                )
                produced.append(stamp)
                sent += 1
            await asyncio.sleep(tick)
        seconds = time.perf_counter() - began
        await asyncio.gather(*pending)
        return Paced(produced, seconds)
    finally:
        await producer.stop()


def paced_load(settings: Settings, records: Sequence[Record], rate: float) -> Paced:
    """Offer ``records`` to the feeds of ``settings.topic_prefix`` at ``rate`` events/s."""
    return asyncio.run(_paced(settings.bootstrap_servers, settings.topic_prefix, records, rate))


@dataclass(frozen=True)
class Received:
    """One record read back: its key, value and Kafka timestamp (ms)."""

    key: bytes | None
    value: bytes | None
    timestamp_ms: int


async def _read_all(bootstrap: str, topic: str, partitions: int) -> list[Received]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap.split(","), enable_auto_commit=False, group_id=None
    )
    await consumer.start()
    try:
        assigned = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        ends = await consumer.end_offsets(assigned)
        out: list[Received] = []
        remaining = {tp for tp in assigned if ends[tp] > 0}
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=1000, max_records=10_000)
            for messages in batches.values():
                out.extend(Received(m.key, m.value, m.timestamp) for m in messages)
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        return out
    finally:
        await consumer.stop()


def read_topic(settings: Settings, topic: str) -> list[Received]:
    """Every record of ``topic`` (of ``settings.partitions`` partitions) up to its end now."""
    return asyncio.run(_read_all(settings.bootstrap_servers, topic, settings.partitions))
