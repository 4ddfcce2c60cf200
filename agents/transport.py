"""Faust's Kafka transport, fixed so that no record is skipped around a rebalance.

Faust drops records in flight around a rebalance: records fetched while its flow is stopped,
records left in stream buffers, the rest of a fetch when the generation changes, records that
arrive before the conductor knows the partition's channels. It relies on two things to read
them again, and both fail on this stack (reproduced: one worker, a second joins, events sent at
once; the first worker never processed its share, or missed the first record of a partition;
``tests/faults/test_rebalance_traffic.py``):

1. *Seek back to the committed offset.* aiokafka's ``seek_to_committed`` only seeks when the
   committed offset is above zero, so on a partition where nothing was committed yet (a new
   group, a quiet feed) the position stays after the dropped records.
2. *Never commit past an unprocessed record.* Faust commits the first run of consecutive acked
   offsets, but only checks that the run starts right after the committed offset when there
   is a committed offset, and then lets one missing record through (``> 1``).

This transport fixes both, for stream partitions (changelogs are positioned by table recovery):

- a partition without a committed offset is rewound to its beginning (``auto_offset_reset``
  is ``earliest``, so that is what "no committed offset" means);
- the consumer knows, per partition, the next offset it must see processed (the committed
  offset, or the beginning); it commits only runs that start there, and when processing has
  moved past a record that never arrived it seeks back to it. Records processed twice that way
  are absorbed downstream (the validator's dedupe and idempotent tables).
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from typing import Any

import aiokafka
from faust.transport.drivers import aiokafka as driver
from faust.types import TP

#: Starting offsets of the stream partitions a rewind positioned, by partition.
Starts = dict[TP, int]


async def rewind_to_committed(
    consumer: aiokafka.AIOKafkaConsumer, skip_topics: Set[str]
) -> tuple[dict[Any, int | None], Starts]:
    """Seek every assigned partition to its committed offset, or to its beginning if none.

    Returns the committed offsets (None where nothing is committed) and, for the partitions
    not in ``skip_topics``, the offset each will be read from.
    """
    committed: dict[Any, int | None] = await consumer.seek_to_committed()
    streams = [tp for tp in committed if tp.topic not in skip_topics]
    uncommitted = [tp for tp in streams if not committed[tp]]
    beginnings: Mapping[Any, int] = {}
    if uncommitted:
        await consumer.seek_to_beginning(*uncommitted)
        beginnings = await consumer.beginning_offsets(uncommitted)
    starts: Starts = {
        TP(tp.topic, tp.partition): (committed[tp] or beginnings.get(tp, 0)) for tp in streams
    }
    return committed, starts


class RewindingConsumerThread(driver.AIOKafkaConsumerThread):
    """The aiokafka consumer thread whose seek to committed offsets never leaves a gap."""

    async def seek_to_committed(self) -> Mapping[TP, int]:
        committed, starts = await self.call_thread(
            rewind_to_committed, self._ensure_consumer(), set(self.app.tables.changelog_topics)
        )
        consumer = self.consumer
        assert isinstance(consumer, RewindingConsumer)
        consumer.expect(starts)
        return committed  # type: ignore[no-any-return]


class RewindingConsumer(driver.Consumer):
    """Faust's aiokafka consumer that never commits, or reads, past a record it missed."""

    _expected: dict[TP, int]
    _rewind: dict[TP, int]
    _rewound: dict[TP, int]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._expected = {}
        self._rewind = {}
        self._rewound = {}
        super().__init__(*args, **kwargs)

    def _new_consumer_thread(self) -> driver.AIOKafkaConsumerThread:
        return RewindingConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def expect(self, starts: Starts) -> None:
        """After a seek: each partition's next record to process is at ``starts[tp]``."""
        self._expected.update(starts)
        for tp in starts:
            self._rewind.pop(tp, None)

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        for tp in revoked:
            self._expected.pop(tp, None)
            self._rewind.pop(tp, None)
            self._rewound.pop(tp, None)
        await super().on_partitions_revoked(revoked)

    def _new_offset(self, tp: TP) -> int | None:
        expected = self._expected.get(tp)
        acked = self._acked[tp]
        if expected is not None and acked and min(acked) > expected and not self._gap[tp]:
            if self._rewound.get(tp) != expected:
                # Processing went past ``expected``, which never arrived: read it again.
                self._rewind[tp] = expected
                return None
            # Read again once and still not processed: no record there for this stream
            # (Faust's own gap rules apply from here). Said once, not per commit.
            self.log.error(
                "Đọc lại %s từ %s không thấy bản ghi; tiếp tục / Re-reading %s from %s found no "
                "record there; going on",
                tp,
                expected,
                tp,
                expected,
            )
            self._expected[tp] = min(acked)
        offset: int | None = super()._new_offset(tp)
        if offset is not None and expected is not None:
            self._expected[tp] = max(offset, expected)
        return offset

    async def commit(self, *args: Any, **kwargs: Any) -> bool:
        committed: bool = await super().commit(*args, **kwargs)
        rewind, self._rewind = self._rewind, {}
        for tp, offset in rewind.items():
            if tp in self.assignment():
                self.log.warning(
                    "Bản ghi %s offset %s bị bỏ sót khi tái cân bằng, đọc lại / A record was "
                    "skipped around a rebalance at %s offset %s; reading from there again",
                    tp,
                    offset,
                    tp,
                    offset,
                )
                self._rewound[tp] = offset
                await self.seek(tp, offset)
        return committed


class Transport(driver.Transport):
    """Faust's aiokafka transport with :class:`RewindingConsumer`."""

    Consumer = RewindingConsumer
