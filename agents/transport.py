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
  are absorbed downstream (the validator's dedupe and idempotent tables);
- a dropped record with no later one on its partition (the last report of a burst) is found
  at commit time, and read again (:meth:`RewindingConsumer.dropped_tails`);
- a record read again is never skipped: if reading it again did not get it processed, it is
  read again (each :data:`REREAD_SECONDS` at most, said each time), and nothing past it is
  committed meanwhile;
- changelog records a fetch drops (the flow stopped, the partition paused) are read again
  from the first of them (:meth:`RewindingConsumer._read_changelogs_again`): table recovery
  gets no other seek, and waited for them for ever, or finished without them;
- records of a fetch made before a seek on their partition do not open a gap, nor move its
  read offset past the seek's unless they go on from it: the seek's records are handed over
  when they come. Before, a seek back made while such a fetch was being handed over was
  undone by it, and the records read again were filtered out as read. Found in the code
  after CI saw a partition stop committing for good (``tests/faults/test_join_dedupe.py``,
  lag 192 for 240 s, three live workers); that this was the cause there is not proven;
- a record is handed to the streams once per generation, unless it is read again on
  purpose. Faust resumes the stream partitions, with the flow already running (it read the
  changelogs), a moment before its seek to the committed offsets that ends table recovery:
  a fetch in between hands their first records over, and the seek (to the beginning, in a
  new group) read them again. They were processed twice, each time counted received and
  forwarded (reproduced: 12 waiting reports counted 24 times, in 4 of 6 starts of a new
  group recovering a changelog; ``tests/integration/test_transport.py``). The consumer
  keeps the run of offsets it handed over in the generation, and hands none of them over
  again (:meth:`RewindingConsumer._unread`); reading a partition again on purpose (a record
  dropped) forgets its run;
- records waiting in a stream's queue when Faust clears the queues, as it resumes the flow
  right after that seek, are kept there when nothing else would bring them: records of the
  seek's own fetch, or of the run its records are not handed over again for. Before, they
  were dropped unprocessed with the partition's position past them, and a commit a few
  seconds later found the hole and read everything from it again, seconds of records
  processed twice (:class:`ClearingFlowControl`);
- a partition given up at a rebalance has what was processed of it committed first. Faust's
  consumer forgets the acked offsets of revoked partitions, then runs the app's handler,
  which waits for the streams and commits: that commit had nothing left to commit, and the
  partitions' next owners read again everything processed since the last periodic commit,
  up to ``IOC_COMMIT_SECONDS`` (2.8 s) of it (faust-streaming issue 502; reproduced: 2,740
  reports counted for 1,920 streamed while a second worker joined; with no periodic commit,
  every report processed before the join was read again,
  ``tests/integration/test_rebalance.py``). Nothing is committed on a partition before its
  seek in the generation either: a commit of the records handed over before that seek raced
  it (:meth:`RewindingConsumer._new_offset`);
- a fetch that skips offsets of a stream partition is not handed over: the partition is read
  again from its read offset. Faust takes such a skip for a gap and commits past it, but
  the stream topics' offsets are contiguous, so the records are there, maybe unprocessed.
  After a rebalance, Faust seeks to the commits while it fetches: records handed over during
  the seek move the read offset on, the seek's end sets it back to the commit, and the next
  fetch goes on from past them (read from the code; the fault suite logged such skips right
  after "Worker ready", in nearly every rebalance). Seen in
  ``tests/faults/test_join_dedupe.py``: 15 rollup records produced while one worker sought
  (offsets 189 to 203 of one partition) were never processed, its commit jumped from 103 to
  256, and three province rollups came out short. Only a skip that reading again brings
  back (retention deleted the records) is taken as a gap, and logged as an error. A fetch
  that goes on right after the records handed over in the generation (the run above) skips
  nothing: the records the seek set the read offset back over are the run's.

It hands the streams whole fetches instead of single records (:class:`RecordChunk`): Faust's
delivery of one message (its drain loop, the conductor, the stream's iterator, the ack) costs
more than the agents' work on it, so each partition's share of a fetch travels as one message
and is acked, offset by offset, as one.

It also gives the producer a way to hand whole record batches to aiokafka
(:class:`BatchProducer`), which the agents use for every record they write.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Iterable, Mapping, Sequence, Set
from typing import Any, NamedTuple

import aiokafka
from aiokafka.errors import IllegalStateError
from aiokafka.partitioner import murmur2
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as driver
from faust.types import TP
from faust.types.tuples import ConsumerMessage, Message, ack_lock
from faust.utils.tracing import traced_from_parent_span
from mode import ServiceT
from mode.utils.futures import notify
from mode.utils.queues import FlowControlEvent

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


#: How long a worker waits, before it joins its group, for the broker's metadata to list every
#: topic it reads (Faust has just created them).
TOPICS_VISIBLE_SECONDS = 60.0


async def wait_until_visible(
    consumer: aiokafka.AIOKafkaConsumer, topics: Set[str], timeout: float
) -> set[str]:
    """Refresh the consumer's metadata until it has partitions for every topic in ``topics``.

    Returns the topics still missing after ``timeout`` seconds (empty when all are there).
    """
    client = consumer._client
    for topic in topics:
        client.add_topic(topic)
    deadline = time.monotonic() + timeout
    while True:
        await client.force_metadata_update()
        missing = {topic for topic in topics if not client.cluster.partitions_for_topic(topic)}
        if not missing or time.monotonic() >= deadline:
            return missing
        await asyncio.sleep(0.2)


#: Longest time the broker holds one of the worker's fetches when none of its partitions has
#: data (Faust sets 1,500 ms). aiokafka keeps one fetch in flight per broker, and leaves out of
#: it every partition whose records the worker has not taken yet: the busy ones. A fetch sent
#: while all of those were still being handled waited out the whole 1.5 s on the idle ones,
#: and nothing was read in that time, however much had arrived (a stall of 1.5 s every few
#: seconds at 2,000 events/s). The broker still answers at once when any partition has data.
FETCH_MAX_WAIT_MS = 100


class RewindingConsumerThread(driver.AIOKafkaConsumerThread):
    """The aiokafka consumer thread whose seek to committed offsets never leaves a gap, that
    joins its group only once the broker lists the topics it reads, and whose fetches wait
    at most :data:`FETCH_MAX_WAIT_MS`.

    A group leader assigns only the partitions of topics its metadata knows ("Ignoring missing
    topic"). Just after Faust creates the topics, on a broker holding thousands of partitions,
    the metadata can miss them; the worker then joined with no partitions and said it was
    ready, and nothing made it look again before the metadata's next refresh, five minutes
    later (reproduced: the fault suite's reference run, lag 4,006 after 180 s). Subscribing
    once every topic is listed prevents that; ``consumer_metadata_max_age_ms`` bounds what
    is left.
    """

    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # Faust passes its 1,500 ms as a literal; the fetcher reads this when it starts.
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer

    async def subscribe(self, topics: Iterable[str]) -> None:
        wanted = set(topics)
        missing = await self.call_thread(
            wait_until_visible, self._ensure_consumer(), wanted, TOPICS_VISIBLE_SECONDS
        )
        if missing:
            self.log.error(
                "Broker chưa liệt kê %d topic sau %.0f s; vẫn tham gia nhóm / The broker does "
                "not list %d topics after %.0f s; joining the group anyway: %s",
                len(missing),
                TOPICS_VISIBLE_SECONDS,
                len(missing),
                TOPICS_VISIBLE_SECONDS,
                ", ".join(sorted(missing)),
            )
        await super().subscribe(wanted)

    async def seek_to_committed(self) -> Mapping[TP, int]:
        committed, starts = await self.call_thread(
            rewind_to_committed, self._ensure_consumer(), set(self.app.tables.changelog_topics)
        )
        consumer = self.consumer
        assert isinstance(consumer, RewindingConsumer)
        consumer.expect(starts)
        return committed  # type: ignore[no-any-return]


class ClearingFlowControl(FlowControlEvent):
    """Mode's flow control of the streams' queues, whose clear keeps what the consumer says
    must survive it, and tells the consumer what it dropped.

    Faust resumes the flow at the end of every table recovery, right after its seek to the
    committed offsets, and resuming clears every stream queue. The records waiting there
    were handed over in this generation, many of them by the seek's own first fetch: they
    were dropped unprocessed, and the partition's position was already past them. Only a
    commit a few seconds later found the hole (:meth:`RewindingConsumer._new_offset`) and
    read everything from it again, seconds of records processed twice: "A record was
    skipped around a rebalance", a few seconds after "Worker ready", 2 to 7 times in each of
    five runs of ``tests/faults/test_join_dedupe.py`` and ``test_rebalance_traffic.py``,
    and never in five runs with this class. The consumer keeps those
    (:meth:`RewindingConsumer.keeps`) and forgets having handed over the others
    (:meth:`RewindingConsumer.note_cleared`). ``consumer`` gives the app's consumer, or
    None before it is made (then nothing was handed over, and the clear is Faust's).
    """

    def __init__(self, *, consumer: Callable[[], Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._consumer = consumer

    def clear(self) -> None:
        """Clear every managed queue but for the items the consumer keeps, in their order."""
        consumer = self._consumer()
        if not isinstance(consumer, RewindingConsumer):
            super().clear()
            return
        dropped: list[Any] = []
        for queue in self._queues:
            held = queue._queue  # type: ignore[attr-defined]  # mode's clear empties it too
            items = list(held)
            held.clear()
            for item in items:
                if consumer.keeps(item):
                    held.append(item)
                else:
                    dropped.append(item)
        if dropped:
            consumer.note_cleared(dropped)


#: Messages the fetch loop hands over between two yields to the event loop (Faust's figure).
YIELD_EVERY = 100
#: How long a partition waits before a record that reading again did not get processed is read
#: again once more (the first time, it is read again at once).
REREAD_SECONDS = 30.0


class RecordChunk(ConsumerMessage):
    """The records of one partition from one fetch, delivered to the streams as one message.

    Its ``offset`` is the last record's and ``first`` the first's; acking it acks every offset
    from ``first`` to ``offset`` (an offset the fetch skipped is a gap, as Faust treats gaps).
    ``records`` are the records as Faust's own messages (``topic``, ``partition``, ``offset``,
    ``key``, ``value``, ``timestamp`` in seconds), never tracked or acked one by one.
    """

    __slots__ = ("first", "records")

    def __init__(self, tp: TP, records: Sequence[Message], generation_id: int | None) -> None:
        last = records[-1]
        super().__init__(
            tp.topic,
            tp.partition,
            last.offset,
            last.timestamp,
            last.timestamp_type,
            None,
            None,
            None,
            None,
            0,
            sum(record.serialized_value_size for record in records),
            tp,
            generation_id=generation_id,
        )
        self.first: int = records[0].offset
        self.records: Sequence[Message] = records

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.tp} offsets={self.first}..{self.offset}>"


class Run(NamedTuple):
    """Offsets ``first`` to ``last`` of a partition, handed to the streams in one run in
    ``generation``."""

    generation: int | None
    first: int
    last: int


def extended(run: Run | None, chunk: RecordChunk) -> Run:
    """``run`` with ``chunk`` handed over after it: longer when the chunk adjoins or overlaps
    it in the same generation, else a new run of the chunk's offsets."""
    generation, first, last = chunk.generation_id, chunk.first, chunk.offset
    if (
        run is not None
        and run.generation == generation
        and first <= run.last + 1
        and last >= run.first - 1
    ):
        return Run(generation, min(run.first, first), max(run.last, last))
    return Run(generation, first, last)


def records_of(message: Any) -> Sequence[Any]:
    """The records a stream message carries: a chunk's, or the message itself."""
    records: Sequence[Any] = getattr(message, "records", None) or (message,)
    return records


class RewindingConsumer(driver.Consumer):
    """Faust's aiokafka consumer that never commits, or reads, past a record it missed, and
    that delivers stream records a fetch at a time (:class:`RecordChunk`)."""

    _expected: dict[TP, int]
    _rewind: dict[TP, int]
    #: Per partition, the offset last read again and when (monotonic seconds).
    _rewound: dict[TP, tuple[int, float]]
    _quiet: dict[TP, int]
    #: Seeks made on each partition so far: a fetch made before one is stale for it.
    _seeks: dict[TP, int]
    #: Per partition, the last skip a fetch made that was read again: (read offset, first).
    _skips: dict[TP, tuple[int, int]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._expected = {}
        self._rewind = {}
        self._rewound = {}
        self._quiet = {}
        self._seeks = {}
        self._skips = {}
        self._delivered: dict[TP, int] = {}
        self._handed: dict[TP, Run] = {}
        #: The partitions of the revoke under way, if any.
        self._revoking: Set[TP] = set()
        super().__init__(*args, **kwargs)
        deliver = self.callback
        note = self.note_handed

        async def callback(message: Any) -> None:
            note(message)
            await deliver(message)

        self.callback = callback

    def note_handed(self, message: Message) -> None:
        """Remember that ``message`` goes to the streams: the last offset of its partition
        (:meth:`dropped_tails`) and, for a chunk, the run of offsets it extends in this
        generation (:meth:`_unread`)."""
        tp = message.tp
        self._delivered[tp] = message.offset
        if isinstance(message, RecordChunk):
            self._handed[tp] = extended(self._handed.get(tp), message)

    def keeps(self, item: Any) -> bool:
        """Whether a stream queue's ``item`` must survive Faust clearing the queues
        (:class:`ClearingFlowControl`): a chunk of this generation, of a partition kept
        (not being revoked) and sought in the generation, inside the run handed over from
        the offset expected next.

        Its records are the seek's, or ones the seek's records are not handed over again
        for (:meth:`_unread`): nothing else brings them, so the streams must have them.
        Anything else goes, as Faust clears it: another generation's records, those of a
        partition given up (its next owner reads them from the commit), records handed
        over before the partition's seek (the seek brings them), and anything while the
        flow is suspended (a revoke's clear).
        """
        chunk = getattr(item, "message", None)
        if not isinstance(chunk, RecordChunk):
            return False
        tp = chunk.tp
        expected = self._expected.get(tp)
        run = self._handed.get(tp)
        return (
            expected is not None
            and run is not None
            and tp not in self._revoking
            # A stream skips, and acks, what it takes while the flow is suspended.
            and self.app.flow_control.is_active()
            and chunk.generation_id == run.generation == self.app.consumer_generation_id
            and run.first <= expected
            and run.first <= chunk.first
            and chunk.offset <= run.last
        )

    def note_cleared(self, items: Iterable[Any]) -> None:
        """Take out of the runs handed over the records of the chunks among ``items``, what
        Faust cleared from the streams' queues and :meth:`keeps` let go: they were dropped
        unprocessed, so from the first of them on a partition's records are handed over
        again when they come (the partition's seek brings them).
        """
        firsts: dict[TP, int] = {}
        for item in items:
            chunk = getattr(item, "message", None)
            if not isinstance(chunk, RecordChunk):
                continue
            tp = chunk.tp
            run = self._handed.get(tp)
            if run is None or tp in self._revoking:
                continue  # nothing handed over, or given up (its next owner reads it)
            if run.generation == chunk.generation_id and run.first <= chunk.first <= run.last:
                firsts[tp] = min(firsts.get(tp, chunk.first), chunk.first)
        dropped = 0
        for tp, first in firsts.items():
            run = self._handed[tp]
            dropped += run.last - first + 1
            if first == run.first:
                del self._handed[tp]
            else:
                self._handed[tp] = run._replace(last=first - 1)
        if dropped:
            self.log.info(
                "Faust xoá %d bản ghi đã chuyển khỏi hàng đợi của stream (%d partition); "
                "sẽ chuyển lại khi đọc lại / Faust cleared %d records handed over from the "
                "streams' queues (%d partitions); they are handed over again when read again",
                *(dropped, len(firsts)) * 2,
            )

    def _new_consumer_thread(self) -> driver.AIOKafkaConsumerThread:
        return RewindingConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def getmany(self, timeout: float) -> Any:  # an async iterator of (TP, message)
        """Fetch records: each stream partition's records as one :class:`RecordChunk`,
        changelog records (table recovery) one by one, as Faust delivers them.

        Faust's own ``getmany`` alternates between topics record by record so that one topic
        cannot starve another; a chunk holds one fetch of one partition (bounded by
        ``broker_max_poll_records``), so every partition of a fetch is handed over in turn.
        """
        records, active = await self._wait_next_records(timeout)
        if records is None or self.should_stop:
            return
        changelogs = self.app.tables.changelog_topics
        if not self.flow_active:
            # As Faust: records fetched while the flow is stopped are dropped, and read again
            # from the committed offsets; changelog records from where they were dropped.
            try:
                await self._read_changelogs_again(records, set(), changelogs)
                await self.perform_seek()
            except IllegalStateError as exc:
                # "No current assignment for partition": the assignment changed during the
                # seek (a rebalance), and the new one's table recovery seeks again.
                self.log.info(
                    "Phân công partition đã đổi trong lúc quay lại offset đã commit; phân công "
                    "mới sẽ quay lại / The assignment changed during the seek back to the "
                    "committed offsets; the new assignment seeks again (%s)",
                    exc,
                )
            except Exception:  # as Faust: the next fetch seeks again; logged, not raised
                self.log.exception(
                    "Không quay lại được offset đã commit / Seeking back to the committed "
                    "offsets failed"
                )
            return
        generation_id = self.app.consumer_generation_id
        to_message = self._to_message
        handed: set[TP] = set()
        for tp, fetched in records.items():
            if not self.flow_active or self.app.consumer_generation_id != generation_id:
                break
            if not fetched or not (
                active is None or tp in active or tp in self._buffered_partitions
            ):
                continue
            handed.add(tp)
            self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
            if tp.topic in changelogs:
                for record in fetched:
                    yield tp, to_message(tp, record)
            else:
                chunk = [to_message(tp, record) for record in fetched]
                yield tp, RecordChunk(tp, chunk, generation_id)
        await self._read_changelogs_again(records, handed, changelogs)

    async def _read_changelogs_again(
        self, records: Mapping[TP, Sequence[Any]], handed: Set[TP], changelogs: Set[str]
    ) -> None:
        """Seek each changelog partition whose fetched records were not handed over back to
        the first of them, so that they come again.

        Faust drops them (the flow stopped, the partition paused, the generation changed) and
        relies on a seek to read them again; a stream partition gets one to its committed
        offset at the next rebalance, but a changelog partition in the middle of table
        recovery does not: its position has moved past them, and recovery waits for them for
        ever. Seen in ``tests/faults/test_join_dedupe.py``: a worker logged "Still fetching
        changelog topics for recovery", need offset 30, have -1, for four minutes, and its
        partitions never committed. That its records were dropped this way is inferred from
        the code, not proven.
        """
        dropped = [
            (tp, fetched[0].offset)
            for tp, fetched in records.items()
            if fetched and tp not in handed and tp.topic in changelogs
        ]
        if not dropped:  # the common case: no assignment lookup per fetch
            return
        assigned = self.assignment()
        for tp, offset in dropped:
            if tp in assigned:
                await self.seek(tp, offset)

    async def _drain_messages(self, fetcher: ServiceT) -> None:
        """Faust's fetch loop (``Consumer._drain_messages``), for chunks as well as records."""
        try:
            await self._fetch_until_stopped(fetcher)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)

    async def _fetch_until_stopped(self, fetcher: ServiceT) -> None:
        consumer_stopped = self._stopped.is_set
        fetcher_stopped = fetcher._stopped.is_set  # type: ignore[attr-defined]
        since_yield = 0
        while not (consumer_stopped() or fetcher_stopped()):
            self.diag.set_flag(CONSUMER_FETCHING)
            seeks = dict(self._seeks)  # before the fetch: a seek from here on makes it stale
            fetched = self.getmany(timeout=1.0)
            await self.sleep(0)
            if not self.should_stop:
                async for tp, message in fetched:
                    unread = self._unread(tp, message)
                    if unread is not None:
                        await self._deliver(tp, unread, seeks.get(tp, 0))
                    since_yield += 1
                    if since_yield >= YIELD_EVERY:  # as Faust: let the loop breathe
                        since_yield = 0
                        await asyncio.sleep(0)
            self.diag.unset_flag(CONSUMER_FETCHING)

    def _unread(self, tp: TP, message: Message) -> Message | None:
        """``message`` without what was read already (None if nothing is left).

        A record counts as read up to the last offset handed over, or from the offset of a
        seek on (Faust's ``_read_offset``). So does a record of the run handed over in the
        message's generation, when what is left of the message begins in that run (or right
        after it) and the run goes on from the read offset; the read offset then moves to the
        run's last, as handing it over did. Else the fetch loop would take the records after
        the run for a fetch that skipped offsets: read again, and then the run's records for
        a gap (seen in the fault suite, right after the seeks of rebalances), or, for a fetch
        made before the seek that goes on after the run, read again once for nothing.
        """
        r_offset = self._read_offset.get(tp)
        last = message.offset
        if r_offset is not None and last < r_offset:
            return None
        first = getattr(message, "first", last)
        keep = first if r_offset is None else max(first, r_offset)
        run = self._handed.get(tp)
        if (
            run is not None
            and run.generation == message.generation_id
            and run.first <= keep <= run.last + 1
            and (r_offset is None or run.first <= r_offset + 1)
        ):
            keep = run.last + 1
            self._read_offset[tp] = run.last
        if keep > last:
            return None
        if keep > first and isinstance(message, RecordChunk):
            kept = [record for record in message.records if record.offset >= keep]
            return RecordChunk(tp, kept, message.generation_id)
        return message

    async def _deliver(self, tp: TP, message: Message, seeks: int = 0) -> None:
        """Hand ``message`` to the streams, as Faust's fetch loop does.

        ``seeks`` is how many seeks ``tp`` had had when the fetch that brought ``message``
        began. After a later one, the message is still handed over (it may hold records the
        seek's position is past), and no gap is opened. The read offset moves to its end only
        if it goes on from where the seek left it (a rebalance's seek to the committed offset,
        then the first fetch); otherwise it stays at the seek's, and the records from there
        are handed over when they come. Either way it never falls behind records handed over
        in one run from it, which Faust would take for a gap at the next fetch.

        A message from a fetch made after every seek that skips offsets is not handed over:
        ``tp`` is read again from its read offset, and only the same skip again is a gap.
        """
        r_offset = self._read_offset.get(tp)
        first = getattr(message, "first", message.offset)
        if (
            r_offset
            and first - r_offset > 1
            and self.app.topics.acks_enabled_for(tp.topic)
            and self._seeks.get(tp, 0) == seeks
        ):
            # The stream topics' offsets are contiguous (not compacted, no transactions), so
            # the records skipped are there: Faust's gap would ack them unprocessed.
            if self._skips.get(tp) != (r_offset, first):
                self._skips[tp] = (r_offset, first)
                self.log.warning(
                    "Lần đọc bỏ qua %s offset %s..%s; đọc lại từ %s / A fetch skipped %s "
                    "offsets %s..%s; reading again from %s",
                    *(tp, r_offset + 1, first - 1, r_offset) * 2,
                )
                await self.seek(tp, r_offset)  # from the read offset: at most one twice
                return
            # Read again, the fetch skipped them again: they are not in the partition any
            # more (retention deleted them); only then is it a gap.
            self.log.error(
                "%s offset %s..%s không còn trong partition; coi là khoảng trống / %s offsets "
                "%s..%s are not in the partition any more; taken as a gap",
                *(tp, r_offset + 1, first - 1) * 2,
            )
            await self._add_gap(tp, r_offset + 1, first)
        commit_every = self._commit_every
        if commit_every is not None and self._n_acked >= commit_every:
            self._n_acked = 0
            await self.commit()
        await self.wait_first(self.callback(message), self.suspend_flow.wait())
        if self._seeks.get(tp, 0) == seeks:
            self._read_offset[tp] = message.offset
            return
        now = self._read_offset.get(tp)  # the seek's (None: from the beginning)
        start = -1 if now is None else now
        if first <= start + 1:
            self._read_offset[tp] = max(start, message.offset)

    async def seek(self, partition: TP, offset: int) -> None:
        """Faust's seek, counted (once it is done: a fetch it could not reach is stale)."""
        await super().seek(partition, offset)
        tp = TP(partition.topic, partition.partition)
        self._seeks[tp] = self._seeks.get(tp, 0) + 1

    async def perform_seek(self) -> None:
        """Faust's seek to the committed offsets, counted for every assigned partition."""
        await super().perform_seek()
        for tp in self.assignment():
            self._seeks[tp] = self._seeks.get(tp, 0) + 1

    def ack(self, message: Message) -> bool:
        """Mark a message processed; a chunk marks every offset from its first to its last."""
        if not isinstance(message, RecordChunk):
            acked: bool = super().ack(message)
            return acked
        with ack_lock:
            if message.acked:
                return False
            message.acked = True
            self._unacked_messages.discard(message)
            tp = message.tp
            if self.app.topics.acks_enabled_for(message.topic):
                committed = self._committed_offset[tp]
                index = self._acked_index[tp]
                offsets = self._acked[tp]
                start = message.first if committed is None else max(message.first, committed)
                new = [offset for offset in range(start, message.offset + 1) if offset not in index]
                index.update(new)
                offsets.extend(new)
                self._n_acked += len(new)
            notify(self._waiting_for_ack)
            return True

    def expect(self, starts: Starts) -> None:
        """After a seek: each partition's next record to process is at ``starts[tp]``.

        A partition whose records from there were handed over in this generation already
        (Faust resumes the streams just before this seek, when it ends table recovery) will
        not have them handed over again (:meth:`_unread`); the last of them is still
        watched (:meth:`dropped_tails`). That is said once per seek.
        """
        self._expected.update(starts)
        generation = self.app.consumer_generation_id
        passed: dict[TP, int] = {}
        for tp, start in starts.items():
            self._rewind.pop(tp, None)
            run = self._handed.get(tp)
            if run is not None and run.generation == generation and run.first <= start <= run.last:
                passed[tp] = run.last - start + 1
                self._delivered[tp] = run.last
            else:
                self._delivered.pop(tp, None)  # nothing handed over from the new position yet
        if passed:
            self.log.info(
                "Không chuyển lại cho agent %d bản ghi của %d partition đã chuyển trước khi quay "
                "về offset đã commit / Not handing the agents again %d records of %d partitions "
                "handed over before the seek to the committed offsets",
                *(sum(passed.values()), len(passed)) * 2,
            )

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        """Commit what was processed of ``revoked``, then forget them.

        Faust's own (``faust.transport.consumer.Consumer``) forgets the partitions' acked
        offsets first, then runs the app's handler, which waits for the streams and commits:
        that commit had nothing left to commit. Whatever was processed since the last
        periodic commit (up to ``broker_commit_interval``, 2.8 s) was read again by the
        partition's next owner, and counted and forwarded again (faust-streaming issue 502).
        """
        span = self.app._start_span_from_rebalancing("on_partitions_revoked")
        trace = traced_from_parent_span(span)
        with span:
            if self._active_partitions is not None:
                self._active_partitions.difference_update(revoked)
            self._paused_partitions.difference_update(revoked)
            self._revoking = revoked
            try:
                # Stops the flow, waits for the streams to ack what they hold, and commits.
                await trace(self._on_partitions_revoked, partitions=revoked)(revoked)
                # That commit commits nothing when a periodic one is under way (it waits
                # for it), maybe one that counted its offsets before the last acks: commit
                # again, now that nothing is acked any more.
                await self.commit(revoked)
            finally:
                self._revoking = set()
                self._forget(revoked)

    def _forget(self, revoked: Set[TP]) -> None:
        """Drop what this consumer, and Faust's, kept about partitions it no longer has."""
        for tp in revoked:
            for kept in (
                self._gap,
                self._acked,
                self._acked_index,
                self._read_offset,
                self._committed_offset,
                self._expected,
                self._rewind,
                self._rewound,
                self._quiet,
                self._delivered,
                self._skips,
                self._handed,
            ):
                kept.pop(tp, None)

    def _new_offset(self, tp: TP) -> int | None:
        expected = self._expected.get(tp)
        if expected is None:
            # Not sought in this generation yet: the seek that ends table recovery says where
            # the partition starts, and records handed over before it (Faust resumes the
            # partitions first) stay acked until then. A commit of them raced that seek: the
            # seek could read the commit before it, and expect records that commit covered.
            return None
        committed = self._committed_offset.get(tp)
        if committed is not None and committed > expected:
            # Committed past ``expected`` (by a commit the seek did not see): those records
            # were processed. Their acks are never recorded again (:meth:`ack` skips offsets
            # below the commit), so waiting for them would stall the partition for good
            # (the likely cause, read from the code, of seven partitions read again every
            # 30 s and never processed in one run of ``tests/faults/test_join_dedupe.py``).
            expected = self._expected[tp] = committed
        acked = self._acked[tp]
        self._drop_repeated_acks(tp, acked)
        if acked and min(acked) > expected and not self._gap[tp]:
            # Processing went past ``expected``, which never arrived: read it again (the
            # commit decides when, :meth:`_may_read_again`), and commit nothing past it.
            self._rewind[tp] = expected
            return None
        offset: int | None = super()._new_offset(tp)
        if offset is not None:
            self._expected[tp] = max(offset, expected)
        return offset

    def _drop_repeated_acks(self, tp: TP, acked: list[int]) -> None:
        """Keep each offset once in ``acked``, and the index Faust checks equal to it.

        Faust fills a gap by adding its offsets to ``acked`` without its index; when those
        records come again (re-read after a rebalance), they are acked a second time. Faust
        then commits one run of consecutive offsets per commit, and a repeated offset ends
        the run: with every offset twice, a commit moved one offset on, every 2.8 s
        (reproduced: workers that joined after a rebalance crawled through a backlog of
        1,500 records for minutes; ``tests/faults``).
        """
        unique = set(acked)
        if len(unique) != len(acked):
            acked[:] = sorted(unique)
        if self._acked_index[tp] != unique:
            self._acked_index[tp] = unique

    def _queued(self, tp: TP) -> bool:
        """Whether a stream's queue holds messages of ``tp``'s topic, not yet taken."""
        index: Mapping[str, Set[Any]] = getattr(self.app.topics, "_topic_name_index", {})
        return any(not channel.queue.empty() for channel in index.get(tp.topic, ()))

    def dropped_tails(self, in_flight: Set[TP]) -> set[TP]:
        """Stream partitions whose record at the expected offset was dropped, with nothing
        after it.

        A record dropped around a rebalance is read again when a later record of its
        partition gets processed (:meth:`_new_offset`). When it was the last one, nothing
        comes after: it would wait, uncommitted and unprocessed, for the next report on that
        partition. Such a partition has had that record handed to a stream, and has nothing
        acked, nothing in flight and nothing queued. It is judged at two commits in a row,
        so that a record merely on its way is not taken for a dropped one.
        """
        suspects: dict[TP, int] = {}
        for tp, expected in self._expected.items():
            delivered = self._delivered.get(tp)
            if (
                delivered is not None
                and delivered >= expected
                and not self._acked.get(tp)
                and tp not in in_flight
                and not self._queued(tp)
            ):
                suspects[tp] = expected
        dropped = {tp for tp, expected in suspects.items() if self._quiet.get(tp) == expected}
        self._quiet = {tp: e for tp, e in suspects.items() if tp not in dropped}
        return dropped

    async def _rewind_dropped_tails(self) -> None:
        in_flight = {message.tp for message in list(self._unacked_messages)}
        assigned = self.assignment()
        for tp in self.dropped_tails(in_flight):
            expected = self._expected[tp]
            if tp in assigned and self._may_read_again(tp, expected):
                await self._read_again(
                    tp,
                    expected,
                    "Bản ghi cuối %s offset %s bị bỏ sót khi tái cân bằng, đọc lại / The last "
                    "record of %s, offset %s, was dropped around a rebalance; reading it again",
                )

    def _may_read_again(self, tp: TP, offset: int) -> bool:
        """Whether to read ``tp`` again from ``offset`` now: at once the first time, then each
        :data:`REREAD_SECONDS` at most, with an error each time (the record is never skipped,
        and nothing past it is committed). Never while ``tp`` is being revoked: its records
        were cleared from the streams, and its next owner reads them from the commit."""
        if tp in self._revoking:
            return False
        last = self._rewound.get(tp)
        if last is None or last[0] != offset:
            return True
        waited = time.monotonic() - last[1]
        if waited < REREAD_SECONDS:
            return False
        self.log.error(
            "Đọc lại %s từ %s chưa xử lý được bản ghi sau %.0f s; đọc lại lần nữa / Reading %s "
            "again from %s left its record unprocessed for %.0f s; reading it again",
            tp,
            offset,
            waited,
            tp,
            offset,
            waited,
        )
        return True

    async def _read_again(self, tp: TP, offset: int, message: str) -> None:
        """Seek ``tp`` back to ``offset``, saying why (``message``)."""
        self.log.warning(message, tp, offset, tp, offset)
        self._rewound[tp] = (offset, time.monotonic())
        self._delivered.pop(tp, None)
        self._handed.pop(tp, None)  # its records come again on purpose
        await self.seek(tp, offset)

    async def commit(self, *args: Any, **kwargs: Any) -> bool:
        committed: bool = await super().commit(*args, **kwargs)
        try:
            await self._rewind_dropped_tails()
        except Exception:  # a safety net must not stop the commits: logged, not raised
            self.log.exception("Kiểm tra bản ghi bị bỏ sót lỗi / The dropped-record check failed")
        rewind, self._rewind = self._rewind, {}
        for tp, offset in rewind.items():
            if tp in self.assignment() and self._may_read_again(tp, offset):
                await self._read_again(
                    tp,
                    offset,
                    "Bản ghi %s offset %s bị bỏ sót khi tái cân bằng, đọc lại / A record was "
                    "skipped around a rebalance at %s offset %s; reading from there again",
                )
        return committed


class OutRecord(NamedTuple):
    """A record to produce: partition (None: by the key, as the default partitioner does),
    key, value, and timestamp in milliseconds (None: now)."""

    partition: int | None
    key: bytes | None
    value: bytes | None
    timestamp_ms: int | None = None


#: Keys whose partitioner hash is kept: aiokafka's murmur2 is pure Python (7 µs a key here), and
#: the agents post to a few thousand keys (rollups, rules, receipts) in batch after batch.
HASHED_KEYS = 65_536


@functools.lru_cache(maxsize=HASHED_KEYS)
def key_hash(key: bytes) -> int:
    """The default partitioner's hash of ``key`` (murmur2, positive), as ``send`` takes it."""
    hashed: int = murmur2(key) & 0x7FFFFFFF
    return hashed


class BatchProducer(driver.Producer):
    """Faust's aiokafka producer, which can also hand records to aiokafka as whole batches.

    ``send`` costs each record a future, a partitioner call and an accumulator lookup; an
    agent that produces a few records per event spends more there than on the event. The
    batches go through the same aiokafka producer, which Faust flushes before every offset
    commit, so they are as durable as Faust's own sends.
    """

    async def send_records(
        self, topic: str, records: Sequence[OutRecord]
    ) -> list[asyncio.Future[Any]]:
        """Queue ``records`` for ``topic``, one record batch per partition (more when one
        fills up); return the futures of the batches' delivery."""
        producer = self._ensure_producer()
        await producer.client._wait_on_metadata(topic)
        partitions = producer._metadata.partitions_for_topic(topic) or set()
        count = len(partitions)
        by_partition: dict[int, list[OutRecord]] = {}
        for record in records:
            partition = record.partition
            if partition is None or partition not in partitions:
                # The default partitioner's choice (murmur2 of the key), as ``send`` makes.
                partition = key_hash(record.key) % count if record.key else 0
            by_partition.setdefault(partition, []).append(record)
        deliveries = []
        for partition, batch in by_partition.items():
            builder = producer.create_batch()
            for record in batch:
                key, value, timestamp = record.key, record.value, record.timestamp_ms
                while builder.append(timestamp=timestamp, key=key, value=value) is None:
                    if builder.record_count() == 0:
                        raise ValueError(
                            f"a record of {len(value or b'')} bytes for {topic} does not fit "
                            "in a batch (producer_max_batch_size)"
                        )
                    deliveries.append(
                        await producer.send_batch(builder, topic, partition=partition)
                    )
                    builder = producer.create_batch()
            deliveries.append(await producer.send_batch(builder, topic, partition=partition))
        return deliveries


class Transport(driver.Transport):
    """Faust's aiokafka transport with :class:`RewindingConsumer` and :class:`BatchProducer`."""

    Consumer = RewindingConsumer
    Producer = BatchProducer
