"""The worker's consumer never commits, or reads, past a record it missed."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from types import SimpleNamespace
from typing import Any
from weakref import WeakSet

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import IllegalStateError
from aiokafka.partitioner import DefaultPartitioner, murmur2
from faust.transport.drivers import aiokafka as driver
from faust.types import TP
from faust.types.tuples import Message
from faust.utils.tracing import noop_span
from hypothesis import given
from hypothesis import strategies as st
from intervaltree import Interval, IntervalTree
from mode.utils.queues import FlowControlEvent
from prometheus_client import CollectorRegistry

from agents.app import create_app
from agents.transport import (
    FETCH_MAX_WAIT_MS,
    REREAD_SECONDS,
    BatchProducer,
    ClearingFlowControl,
    OutRecord,
    RecordChunk,
    RewindingConsumer,
    RewindingConsumerThread,
    Run,
    extended,
    key_hash,
    records_of,
    rewind_to_committed,
)
from ioc.clock import SystemClock
from ioc.settings import Settings
from streams.catalogue import default_catalogue

FEED = TopicPartition("ioc.feed.ict", 1)
CHANGELOG = TopicPartition("ioc-monitor-series-changelog", 1)


class FakeConsumer:
    """The three aiokafka calls the rewind makes, recorded."""

    def __init__(self, committed: dict[Any, int | None], beginning: int) -> None:
        self.committed = committed
        self.beginning = beginning
        self.rewound: list[Any] = []

    async def seek_to_committed(self) -> dict[Any, int | None]:
        return dict(self.committed)

    async def seek_to_beginning(self, *partitions: Any) -> None:
        self.rewound.extend(partitions)

    async def beginning_offsets(self, partitions: list[Any]) -> dict[Any, int]:
        return dict.fromkeys(partitions, self.beginning)


async def test_a_stream_partition_without_a_commit_is_rewound_to_its_beginning() -> None:
    fake = FakeConsumer({FEED: None, CHANGELOG: None}, beginning=7)
    committed, starts = await rewind_to_committed(fake, {CHANGELOG.topic})
    assert fake.rewound == [FEED]  # the changelog is left to table recovery
    assert starts == {TP(FEED.topic, 1): 7}
    assert committed == {FEED: None, CHANGELOG: None}


async def test_a_committed_partition_starts_at_its_commit_even_at_zero() -> None:
    fake = FakeConsumer({FEED: 12}, beginning=0)
    _, starts = await rewind_to_committed(fake, set())
    assert fake.rewound == []
    assert starts == {TP(FEED.topic, 1): 12}
    zero = FakeConsumer({FEED: 0}, beginning=0)
    _, starts = await rewind_to_committed(zero, set())
    assert zero.rewound == [FEED]  # aiokafka itself does not seek to a commit of 0
    assert starts == {TP(FEED.topic, 1): 0}


class _Log:
    def __init__(self) -> None:
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self.infos: list[str] = []

    def info(self, message: str, *args: Any) -> None:
        self.infos.append(message % args)

    def error(self, message: str, *args: Any) -> None:
        self.errors.append(message % args)

    def warning(self, message: str, *args: Any) -> None:
        self.warnings.append(message % args)

    def exception(self, message: str, *args: Any) -> None:
        self.errors.append(message % args)

    def dev(self, message: str, *args: Any) -> None:
        pass


def consumer(expected: int, acked: list[int], committed: int | None = None) -> RewindingConsumer:
    """A consumer's offset bookkeeping, without a broker (only what ``_new_offset`` reads)."""
    tp = TP(FEED.topic, 1)
    c = RewindingConsumer.__new__(RewindingConsumer)
    c._expected, c._rewind, c._rewound, c._revoking = {tp: expected}, {}, {}, set()
    c._acked = defaultdict(list, {tp: list(acked)})
    c._acked_index = defaultdict(set, {tp: set(acked)})
    c._gap = defaultdict(IntervalTree)
    c._committed_offset = defaultdict(lambda: None, {tp: committed})
    c.__dict__["log"] = _Log()
    return c


def test_commits_a_run_that_starts_at_the_expected_offset() -> None:
    c = consumer(expected=5, acked=[5, 6, 7])
    assert c._new_offset(TP(FEED.topic, 1)) == 8
    assert c._expected[TP(FEED.topic, 1)] == 8


def test_does_not_commit_past_a_missing_record_and_reads_it_again() -> None:
    tp = TP(FEED.topic, 1)
    c = consumer(expected=5, acked=[6, 7, 8])  # offset 5 never arrived
    assert c._new_offset(tp) is None
    assert c._rewind == {tp: 5}


def test_faust_alone_commits_past_the_missing_first_record() -> None:
    # Why the fix exists: with no commit yet, Faust's own rule commits 6..8 and so skips 5.
    c = consumer(expected=5, acked=[6, 7, 8])
    assert super(RewindingConsumer, c)._new_offset(TP(FEED.topic, 1)) == 9


def test_a_record_read_again_in_vain_is_read_again_later_never_skipped() -> None:
    tp = TP(FEED.topic, 1)
    c = consumer(expected=5, acked=[6, 7, 8])
    c._rewound[tp] = (5, time.monotonic())  # just read again from 5, and still nothing at 5
    assert c._new_offset(tp) is None  # nothing past 5 is committed
    assert c._rewind == {tp: 5}
    assert c._may_read_again(tp, 5) is False  # not at every commit
    assert c.log.errors == []  # type: ignore[attr-defined]
    c._rewound[tp] = (5, time.monotonic() - REREAD_SECONDS - 1)
    assert c._may_read_again(tp, 5) is True
    assert "left its record unprocessed" in c.log.errors[0]  # type: ignore[attr-defined]
    assert c._may_read_again(tp, 4) is True  # another offset: at once, nothing said
    assert len(c.log.errors) == 1  # type: ignore[attr-defined]


def tails(*, delivered: int | None = 6, queued: bool = False) -> RewindingConsumer:
    """A consumer expecting offset 5 of the feed partition, with nothing acked, that handed
    the streams the records up to ``delivered``."""
    c = consumer(expected=5, acked=[])
    c._quiet = {}
    c._delivered = {} if delivered is None else {TP(FEED.topic, 1): delivered}
    queue = SimpleNamespace(empty=lambda: not queued)
    index = {FEED.topic: [SimpleNamespace(queue=queue)]}
    c.__dict__["app"] = SimpleNamespace(topics=SimpleNamespace(_topic_name_index=index))
    return c


def test_a_dropped_last_record_is_found_at_the_second_look() -> None:
    tp = TP(FEED.topic, 1)
    c = tails()
    # Records 5 and 6 were handed over; nothing acked, in flight or queued: suspect first.
    assert c.dropped_tails(set()) == set()
    assert c.dropped_tails(set()) == {tp}


def test_a_record_on_its_way_is_not_taken_for_a_dropped_one() -> None:
    tp = TP(FEED.topic, 1)
    for c, in_flight in (
        (tails(), {tp}),  # a stream holds a message of the partition
        (tails(queued=True), set()),  # a stream's queue holds one
        (tails(delivered=4), set()),  # 5 not handed over yet (fetched, paused, or behind)
        (tails(delivered=None), set()),  # nothing handed over since the last seek
    ):
        c.dropped_tails(in_flight)
        assert c.dropped_tails(in_flight) == set()
    acked = tails()
    acked._acked[tp] = [5]  # processed: the commit takes it from here
    acked.dropped_tails(set())
    assert acked.dropped_tails(set()) == set()


class FakeBuilder:
    """Holds up to ``room`` records, as aiokafka's BatchBuilder does up to its size."""

    def __init__(self, room: int) -> None:
        self.room = room
        self.records: list[tuple[int | None, bytes | None, bytes | None]] = []

    def append(self, *, timestamp: int | None, key: bytes | None, value: bytes | None) -> Any:
        if len(self.records) >= self.room:
            return None
        self.records.append((timestamp, key, value))
        return object()

    def record_count(self) -> int:
        return len(self.records)


class FakeProducer:
    """The aiokafka producer calls ``send_records`` makes, recorded."""

    def __init__(self, partitions: int, room: int) -> None:
        self.room = room
        self._metadata = SimpleNamespace(partitions_for_topic=lambda topic: set(range(partitions)))
        self.client = SimpleNamespace(_wait_on_metadata=self._no_wait)
        self.sent: list[tuple[str, int, list[Any]]] = []

    async def _no_wait(self, topic: str) -> None:
        return None

    def create_batch(self) -> FakeBuilder:
        return FakeBuilder(self.room)

    async def send_batch(self, builder: FakeBuilder, topic: str, *, partition: int) -> Any:
        self.sent.append((topic, partition, builder.records))
        return asyncio.get_running_loop().create_future()


def batch_producer(fake: FakeProducer) -> BatchProducer:
    producer = BatchProducer.__new__(BatchProducer)
    producer.__dict__["_ensure_producer"] = lambda: fake
    return producer


async def test_records_go_out_as_batches_per_partition_in_order() -> None:
    fake = FakeProducer(partitions=2, room=2)
    records = [OutRecord(1, b"k", f"v{n}".encode(), 1000 + n) for n in range(5)]
    records.append(OutRecord(0, b"k", b"other", None))
    deliveries = await batch_producer(fake).send_records("ioc.indicators", records)
    assert [(p, [r[2] for r in rs]) for _, p, rs in fake.sent] == [
        (1, [b"v0", b"v1"]),  # a full batch goes out, the next one starts
        (1, [b"v2", b"v3"]),
        (1, [b"v4"]),
        (0, [b"other"]),
    ]
    assert fake.sent[0][2][0] == (1000, b"k", b"v0")  # the timestamp travels with it
    assert len(deliveries) == 4


async def test_a_record_without_a_valid_partition_goes_where_its_key_hashes() -> None:
    fake = FakeProducer(partitions=2, room=10)
    key = b"online_application_rate|son-la"
    await batch_producer(fake).send_records(
        "t", [OutRecord(None, key, b"a"), OutRecord(7, key, b"b")]
    )
    expected = (murmur2(key) & 0x7FFFFFFF) % 2  # what aiokafka's default partitioner picks
    assert [(p, len(rs)) for _, p, rs in fake.sent] == [(expected, 2)]


@given(key=st.binary(min_size=1, max_size=64), partitions=st.integers(1, 64))
def test_the_kept_key_hash_picks_the_partition_aiokafkas_partitioner_picks(
    key: bytes, partitions: int
) -> None:
    every = list(range(partitions))
    expected = DefaultPartitioner()(key, every, every)
    assert key_hash(key) % partitions == expected
    assert key_hash(key) % partitions == expected  # and again, from the kept hashes


async def test_a_record_too_large_for_an_empty_batch_is_an_error() -> None:
    fake = FakeProducer(partitions=1, room=0)
    with pytest.raises(ValueError, match="does not fit"):
        await batch_producer(fake).send_records("t", [OutRecord(0, b"k", b"x" * 10)])


def test_offsets_acked_twice_do_not_slow_commits_to_one_offset_each() -> None:
    # As found in a worker crawling after a rebalance: each offset acked twice, and the
    # index Faust checks missing some of them.
    tp = TP(FEED.topic, 1)
    c = consumer(expected=211, acked=[211, 212, 212, 213, 213, 214], committed=211)
    c._acked_index[tp] = {211, 213, 214}
    assert c._new_offset(tp) == 215
    assert c._acked[tp] == []
    assert c._acked_index[tp] == set()


def test_faust_alone_commits_one_offset_per_repeated_ack() -> None:
    # Why: a repeated offset ends Faust's run of consecutive offsets.
    c = consumer(expected=211, acked=[211, 212, 212, 213, 213, 214], committed=211)
    assert super(RewindingConsumer, c)._new_offset(TP(FEED.topic, 1)) == 213


def record(offset: int, partition: int = 1) -> Message:
    return Message(FEED.topic, partition, offset, 1.0, 0, None, b"k", b"v%d" % offset, None)


def chunk(*offsets: int) -> RecordChunk:
    return RecordChunk(TP(FEED.topic, 1), [record(o) for o in offsets], generation_id=1)


def acking(expected: int, committed: int | None = None) -> RewindingConsumer:
    """A consumer whose ``ack`` and ``_new_offset`` run on their own bookkeeping."""
    c = consumer(expected=expected, acked=[], committed=committed)
    c._unacked_messages = WeakSet()
    c._n_acked = 0
    c._waiting_for_ack = None
    topics = SimpleNamespace(acks_enabled_for=lambda topic: True)
    c.__dict__["app"] = SimpleNamespace(topics=topics)
    return c


def test_a_chunk_carries_its_records_and_spans_their_offsets() -> None:
    c = chunk(5, 6, 7)
    assert (c.first, c.offset, c.tp) == (5, 7, TP(FEED.topic, 1))
    assert [r.value for r in records_of(c)] == [b"v5", b"v6", b"v7"]
    single = record(9)
    assert list(records_of(single)) == [single]  # a plain message is its only record


def test_acking_a_chunk_acks_every_offset_so_one_commit_covers_it() -> None:
    tp = TP(FEED.topic, 1)
    c = acking(expected=5, committed=5)
    message = chunk(5, 6, 8)  # 7 is not in the fetch (a gap, as Faust treats gaps)
    c._unacked_messages.add(message)
    assert c.ack(message) is True
    assert c.ack(message) is False  # once only
    assert sorted(c._acked[tp]) == [5, 6, 7, 8]
    assert c._n_acked == 4
    assert message not in c._unacked_messages
    assert c._new_offset(tp) == 9


def test_a_chunk_acks_nothing_below_the_committed_offset() -> None:
    tp = TP(FEED.topic, 1)
    c = acking(expected=7, committed=7)
    c.ack(chunk(5, 6, 7, 8))  # read again from 5 after a rebalance; 5 and 6 committed
    assert sorted(c._acked[tp]) == [7, 8]
    assert c._new_offset(tp) == 9


def test_a_commit_past_the_expected_offset_does_not_stall_the_partition() -> None:
    # A commit the seek did not see covered 5 to 8: the seek expects 5, and reading again
    # from 5 brings records whose acks, below the commit, are never recorded.
    tp = TP(FEED.topic, 1)
    c = acking(expected=5, committed=9)
    c.ack(chunk(5, 6, 7, 8, 9, 10))
    assert sorted(c._acked[tp]) == [9, 10]
    assert c._new_offset(tp) == 11
    assert c._rewind == {}  # not read again, every 30 s, for ever


async def test_nothing_is_committed_on_a_partition_before_its_seek_in_the_generation() -> None:
    # Records handed over before the seek that ends table recovery are processed and acked;
    # a commit of them then could land after the seek read the commit before it.
    tp = TP(FEED.topic, 1)
    c = seeking(generation=1, committed=5)
    c._expected.clear()  # a new generation: not sought yet
    c._acked[tp], c._acked_index[tp] = [5, 6, 7], {5, 6, 7}
    assert c._new_offset(tp) is None
    assert c._acked[tp] == [5, 6, 7]  # kept for the first commit after the seek
    await c.perform_seek()
    assert c._new_offset(tp) == 8


def test_only_the_unread_records_of_a_chunk_are_handed_over() -> None:
    tp = TP(FEED.topic, 1)
    c = RewindingConsumer.__new__(RewindingConsumer)
    c._read_offset = defaultdict(lambda: None)
    c._handed = {}
    fresh = chunk(3, 4, 5)
    assert c._unread(tp, fresh) is fresh  # nothing read yet
    c._read_offset[tp] = 4  # read up to 4 (or sought back to 4)
    kept = c._unread(tp, fresh)
    assert isinstance(kept, RecordChunk)
    assert [r.offset for r in kept.records] == [4, 5]
    assert (kept.first, kept.offset) == (4, 5)
    assert c._unread(tp, chunk(1, 2, 3)) is None  # all of it read
    assert c._unread(tp, record(3)) is None
    plain = record(4)
    assert c._unread(tp, plain) is plain


def test_a_run_of_handed_offsets_grows_with_the_chunks_that_go_on_from_it() -> None:
    run = extended(None, chunk(0, 1, 2))
    assert run == Run(1, 0, 2)
    run = extended(run, chunk(3, 4))
    assert run == Run(1, 0, 4)
    assert extended(run, chunk(2, 3, 4, 5)) == Run(1, 0, 5)  # read again, and on
    assert extended(run, chunk(7, 8)) == Run(1, 7, 8)  # 5 and 6 not handed over: a new run
    later = RecordChunk(TP(FEED.topic, 1), [record(5)], generation_id=2)
    assert extended(run, later) == Run(2, 5, 5)  # a rebalance since: a new run


def seeking(generation: int, committed: int | None) -> RewindingConsumer:
    """A consumer in ``generation`` whose seek to the committed offsets sends the feed
    partition back to ``committed`` (to its beginning, 0, when nothing is committed)."""
    tp = TP(FEED.topic, 1)
    c = consumer(expected=0, acked=[], committed=committed)
    c._read_offset = defaultdict(lambda: None)
    c._seeks, c._handed, c._delivered = {}, {}, {}

    async def seek_to_committed() -> dict[TP, int | None]:
        c.expect({tp: committed or 0})
        return {tp: committed}

    async def no_seek(tp: TP, offset: int) -> None:
        return None

    c.__dict__.update(
        seek_to_committed=seek_to_committed,
        _seek=no_seek,
        assignment=lambda: {tp},
        app=SimpleNamespace(consumer_generation_id=generation, flow_control=FlowControlEvent()),
    )
    c.app.flow_control.resume()
    return c


@pytest.mark.parametrize("committed", [None, 2])
async def test_records_handed_over_around_recovery_s_seek_are_handed_over_once(
    committed: int | None,
) -> None:
    # Faust resumes the stream partitions, the flow running since it read the changelogs,
    # just before its seek to the committed offsets: a fetch in between hands records over,
    # and the fetches made once the consumer's thread has sought bring them again.
    tp = TP(FEED.topic, 1)
    start = committed or 0
    c = seeking(generation=1, committed=committed)
    for message in (chunk(start, start + 1), chunk(start + 2, start + 3)):
        c.note_handed(message)
    c._read_offset[tp] = start + 3  # as the fetch loop leaves it: the last offset handed over
    # Before the seek is done: Faust's rule alone (offsets from the read offset) hands the
    # last one over again.
    assert c._unread(tp, chunk(*range(start, start + 4))) is None
    await c.perform_seek()
    assert c._read_offset[tp] == committed  # Faust's (None: from the beginning)
    assert c._unread(tp, chunk(*range(start, start + 4))) is None  # all handed over already
    kept = c._unread(tp, chunk(*range(start + 2, start + 6)))
    assert isinstance(kept, RecordChunk)
    assert [r.offset for r in kept.records] == [start + 4, start + 5]
    assert c._expected[tp] == start  # nothing is committed past one of them left unprocessed
    assert c._delivered[tp] == start + 3  # and the last of them is still watched
    said = c.log.infos  # type: ignore[attr-defined]
    assert "Not handing the agents again 4 records of 1 partitions" in said[-1]


async def test_records_of_another_generation_or_after_a_gap_are_handed_over() -> None:
    tp = TP(FEED.topic, 1)
    rebalanced = seeking(generation=2, committed=None)
    rebalanced.note_handed(chunk(0, 1))  # in generation 1 (the chunks'), before a rebalance
    await rebalanced.perform_seek()
    fetched = RecordChunk(tp, [record(0), record(1)], generation_id=2)
    assert rebalanced._unread(tp, fetched) is fetched
    gap = seeking(generation=1, committed=None)
    gap.note_handed(chunk(2, 3))  # 0 and 1 never handed over: they must come
    await gap.perform_seek()
    fetched = chunk(0, 1, 2, 3, 4)
    assert gap._unread(tp, fetched) is fetched
    for c in (rebalanced, gap):
        assert tp not in c._delivered  # nothing handed over from the seek's offset
        assert c.log.infos == []  # type: ignore[attr-defined]


async def test_a_partition_read_again_on_purpose_has_its_records_handed_over_again() -> None:
    tp = TP(FEED.topic, 1)
    c = seeking(generation=1, committed=None)
    c.note_handed(chunk(0, 1, 2))
    await c._read_again(tp, 0, "%s %s %s %s")  # one of them dropped (dropped_tails)
    fetched = chunk(0, 1, 2)
    assert c._unread(tp, fetched) is fetched


def waiting(message: RecordChunk) -> Any:
    """A stream queue's item: the event of ``message``."""
    return SimpleNamespace(message=message)


async def test_records_waiting_in_a_stream_s_queue_after_its_seek_survive_faust_s_clear() -> None:
    # Faust resumes the flow right after its seek to the committed offsets, and resuming
    # clears the streams' queues: records handed over in the generation waiting there,
    # the seek's own or ones its records are not handed over again for, would be lost.
    tp = TP(FEED.topic, 1)
    c = seeking(generation=1, committed=None)
    c._expected = {}  # a new generation, not sought yet (a revoke forgot the partitions)
    queued = chunk(2, 3)
    for message in (chunk(0, 1), queued):
        c.note_handed(message)
    assert not c.keeps(waiting(queued))  # before the seek: the seek brings them again
    await c.perform_seek()
    assert c.keeps(waiting(queued))
    assert not c.keeps(waiting(RecordChunk(tp, [record(2)], generation_id=0)))
    assert not c.keeps(waiting(chunk(4, 5)))  # not handed over in the run
    assert not c.keeps(SimpleNamespace(message=None))
    c.app.flow_control.suspend()  # a revoke: the streams would skip it, and ack it
    assert not c.keeps(waiting(queued))
    c.app.flow_control.resume()
    c._revoking = {tp}  # given up: its next owner reads it from the commit
    assert not c.keeps(waiting(queued))


async def test_records_cleared_before_their_partition_s_seek_are_handed_over_again() -> None:
    tp = TP(FEED.topic, 1)
    c = seeking(generation=1, committed=None)
    queued = chunk(2, 3)
    for message in (chunk(0, 1), queued):
        c.note_handed(message)
    c._read_offset[tp] = 3
    c.note_cleared([waiting(queued), waiting(RecordChunk(tp, [record(1)], generation_id=0))])
    assert c._handed[tp] == Run(1, 0, 1)
    said = c.log.infos  # type: ignore[attr-defined]
    assert "cleared 2 records handed over from the streams' queues (1 partitions)" in said[-1]
    await c.perform_seek()
    kept = c._unread(tp, chunk(0, 1, 2, 3, 4))  # what the seek brings
    assert isinstance(kept, RecordChunk)
    assert [r.offset for r in kept.records] == [2, 3, 4]
    c.note_cleared([waiting(chunk(0, 1))])  # all of a run: all of it comes again
    assert tp not in c._handed


async def test_the_app_s_flow_control_keeps_what_its_consumer_keeps_and_drops_the_rest() -> None:
    registry = CollectorRegistry()
    monitor = create_app(Settings(), default_catalogue(), SystemClock(), registry=registry)
    app, consumer = monitor.app, monitor.app.consumer
    assert isinstance(consumer, RewindingConsumer)
    assert isinstance(app.flow_control, ClearingFlowControl)
    tp = TP(FEED.topic, 1)
    generation = app.consumer_generation_id
    handed = RecordChunk(tp, [record(0), record(1)], generation_id=generation)
    consumer.note_handed(handed)
    consumer.expect({tp: 0})  # the seek to the committed offsets
    stale = waiting(RecordChunk(tp, [record(0)], generation_id=generation - 1))
    kept = waiting(handed)
    feed = app.topic(FEED.topic)
    for item in (stale, kept, "not a chunk"):
        feed.queue.put_nowait(item)
    app.flow_control.resume()  # as Faust resumes the flow at the end of a recovery
    assert feed.queue.get_nowait() is kept
    assert feed.queue.empty()
    assert consumer._handed[tp] == Run(generation, 0, 1)
    consumer._thread.thread_loop.close()  # the loop the consumer's thread would have run in


def delivering() -> tuple[RewindingConsumer, list[Message]]:
    """A consumer whose ``_deliver`` and ``seek`` run on their own bookkeeping; the streams
    receive into the returned list."""
    c = acking(expected=90, committed=90)
    c._read_offset = defaultdict(lambda: None)
    c._seeks, c._skips, c._handed = {}, {}, {}
    c._commit_every = None
    received: list[Message] = []

    async def callback(message: Message) -> None:
        received.append(message)

    async def no_seek(tp: TP, offset: int) -> None:
        return None

    async def first_of(*coros: Any) -> None:
        await coros[0]
        coros[1].close()

    c.__dict__.update(
        callback=callback, _seek=no_seek, wait_first=first_of, suspend_flow=asyncio.Event()
    )
    return c, received


async def test_the_records_after_a_run_handed_over_are_not_taken_for_a_skip() -> None:
    # A rebalance: records 90..105 handed over just before the seek back to the commit, 90.
    tp = TP(FEED.topic, 1)
    c, received = delivering()
    c._handed[tp] = Run(1, 90, 105)
    await c.seek(tp, 90)
    kept = c._unread(tp, chunk(*range(90, 111)))
    assert isinstance(kept, RecordChunk)
    assert (kept.first, kept.offset) == (106, 110)
    assert c._read_offset[tp] == 105  # as handing 105 over left it
    await c._deliver(tp, kept, c._seeks[tp])
    assert [m.offset for m in received] == [110]
    assert c.log.warnings == []  # type: ignore[attr-defined]
    assert c.log.errors == []  # type: ignore[attr-defined]
    assert not c._gap[tp]


async def test_a_fetch_that_goes_on_right_after_the_run_is_not_taken_for_a_skip() -> None:
    # A fetch made while the seek back to the commit, 90, was made goes on from the position
    # after the run handed over before it (90..105).
    tp = TP(FEED.topic, 1)
    c, received = delivering()
    c._handed[tp] = Run(1, 90, 105)
    await c.seek(tp, 90)
    after = chunk(106, 107)
    assert c._unread(tp, after) is after
    assert c._read_offset[tp] == 105
    await c._deliver(tp, after, c._seeks[tp])
    assert [m.offset for m in received] == [107]
    assert c.log.warnings == []  # type: ignore[attr-defined]
    assert not c._gap[tp]


def test_a_run_that_begins_past_the_read_offset_is_not_passed_over() -> None:
    # 51..59 were not handed over in this generation: the fetch's skip must show, and the
    # records read again from 50 come with the run's.
    tp = TP(FEED.topic, 1)
    c, _ = delivering()
    c._handed[tp] = Run(1, 60, 70)
    c._read_offset[tp] = 50
    fetched = chunk(*range(60, 76))
    assert c._unread(tp, fetched) is fetched
    again = chunk(*range(50, 76))
    assert c._unread(tp, again) is again
    assert c._read_offset[tp] == 50


async def test_a_fetch_older_than_a_seek_does_not_undo_it() -> None:
    tp = TP(FEED.topic, 1)
    c, received = delivering()
    c._read_offset[tp] = 150  # handed over up to 150; 90..99 turned out to be dropped
    before = dict(c._seeks)  # a fetch begins (records 151..160, from the old position)
    await c.seek(tp, 90)  # read again from 90 (the commit's rewind)
    await c._deliver(tp, chunk(151, 160), before.get(tp, 0))
    assert received[-1].offset == 160  # the old fetch's records are still handed over...
    assert c._read_offset[tp] == 90  # ...but the read offset stays at the seek's
    assert not c._gap[tp]  # and 91..150 are not taken for a gap
    again = chunk(90, 91, 99)  # the records read again come
    assert c._unread(tp, again) is again
    await c._deliver(tp, again, c._seeks[tp])
    assert c._read_offset[tp] == 99  # a fetch after the seek moves it on


async def test_a_fetch_older_than_a_seek_that_goes_on_from_it_moves_the_read_offset() -> None:
    tp = TP(FEED.topic, 1)
    c, received = delivering()
    before = dict(c._seeks)  # the fetch loop waits, flow stopped, through a rebalance
    await c.seek(tp, 100)  # the rebalance's seek to the committed offset
    await c._deliver(tp, chunk(100, 159), before.get(tp, 0))  # its first fetch
    assert c._read_offset[tp] == 159
    await c._deliver(tp, chunk(160, 170), c._seeks[tp])
    assert not c._gap[tp]  # 101..159 were handed over: no gap that would commit past them
    assert [m.offset for m in received] == [159, 170]


async def test_a_fetch_after_every_seek_moves_the_read_offset() -> None:
    tp = TP(FEED.topic, 1)
    c, received = delivering()
    await c.seek(tp, 90)
    await c._deliver(tp, chunk(90, 91), c._seeks[tp])
    await c._deliver(tp, chunk(92, 93), c._seeks[tp])
    assert [m.offset for m in received] == [91, 93]
    assert c._read_offset[tp] == 93
    assert not c._gap[tp]


async def test_a_fetch_that_skips_offsets_is_read_again_from_the_read_offset() -> None:
    tp = TP(FEED.topic, 1)
    c, received = delivering()
    await c.seek(tp, 122)  # a rebalance's seek to the commit; the position went on meanwhile
    await c._deliver(tp, chunk(143, 150), c._seeks[tp])  # 123..142 skipped
    assert received == []  # not handed over...
    assert not c._gap[tp]  # ...nor taken for a gap that Faust would commit over
    assert c._read_offset[tp] == 122  # sought back to the read offset
    assert "offsets 123..142; reading again from 122" in c.log.warnings[-1]
    await c._deliver(tp, chunk(122, 123, 150), c._seeks[tp])  # the records read again
    assert [m.offset for m in received] == [150]
    assert c._read_offset[tp] == 150
    assert not c._gap[tp]


async def test_only_a_skip_that_reading_again_brings_back_is_a_gap() -> None:
    tp = TP(FEED.topic, 1)
    c, received = delivering()
    await c.seek(tp, 90)
    await c._deliver(tp, chunk(90, 91), c._seeks[tp])
    await c._deliver(tp, chunk(95), c._seeks[tp])  # 92..94 skipped: read again from 91
    assert [m.offset for m in received] == [91]
    await c._deliver(tp, chunk(95), c._seeks[tp])  # again: they are not there any more
    assert [m.offset for m in received] == [91, 95]
    assert sorted(c._gap[tp]) == [Interval(92, 96)]  # Faust's gap rule, only now
    assert "92..94 are not in the partition any more; taken as a gap" in c.log.errors[-1]


def fetching(fetched: dict[TP, list[Any]], active: set[TP], *, flow: bool = True) -> Any:
    """A consumer whose ``getmany`` returns ``fetched`` once (``active`` partitions being
    fetched); its seeks are recorded in ``.sought``."""
    c = RewindingConsumer.__new__(RewindingConsumer)
    sought: list[tuple[TP, int]] = []

    async def wait_next_records(timeout: float) -> tuple[Any, Any]:
        return fetched, active

    async def seek(tp: TP, offset: int) -> None:
        sought.append((tp, offset))

    async def perform_seek() -> None:
        sought.append((TP("committed", 0), -1))

    c.__dict__.update(
        _wait_next_records=wait_next_records,
        _to_message=lambda tp, r: Message(
            tp.topic, tp.partition, r.offset, 1.0, 0, None, None, b"", None
        ),
        highwater=lambda tp: 0,
        flow_active=flow,
        _buffered_partitions=set(),
        seek=seek,
        perform_seek=perform_seek,
        assignment=lambda: set(fetched),
        sought=sought,
        app=SimpleNamespace(
            consumer_generation_id=3,
            tables=SimpleNamespace(changelog_topics={CHANGELOG.topic}),
            monitor=SimpleNamespace(track_tp_end_offset=lambda tp, offset: None),
        ),
    )
    c.__dict__["_stopped"] = asyncio.Event()
    c.__dict__["_crashed"] = asyncio.Event()
    return c


async def test_a_fetch_becomes_one_chunk_per_stream_partition_and_records_per_changelog() -> None:
    feed, other, changelog = TP(FEED.topic, 0), TP(FEED.topic, 1), TP(CHANGELOG.topic, 1)
    fetched = {
        feed: [SimpleNamespace(offset=o) for o in (0, 1, 2)],
        other: [SimpleNamespace(offset=7)],
        changelog: [SimpleNamespace(offset=o) for o in (10, 11)],
    }
    c = fetching(fetched, {feed, other, changelog})
    delivered = [(tp, m) async for tp, m in c.getmany(timeout=1.0)]
    shown = [
        (tp.partition, type(m).__name__, getattr(m, "first", m.offset), m.offset)
        for tp, m in delivered
    ]
    assert shown == [
        (0, "RecordChunk", 0, 2),
        (1, "RecordChunk", 7, 7),
        (1, "Message", 10, 10),
        (1, "Message", 11, 11),
    ]
    assert all(m.generation_id == 3 for _, m in delivered if isinstance(m, RecordChunk))
    assert c.sought == []  # everything handed over: nothing to read again


async def test_changelog_records_not_handed_over_are_read_again_from_the_first() -> None:
    feed, changelog = TP(FEED.topic, 0), TP(CHANGELOG.topic, 1)
    fetched = {
        feed: [SimpleNamespace(offset=5)],
        changelog: [SimpleNamespace(offset=o) for o in (10, 11)],
    }
    # The changelog partition was paused between the fetch and the hand-over.
    paused = fetching(fetched, {feed})
    assert [tp async for tp, _ in paused.getmany(timeout=1.0)] == [feed]
    assert paused.sought == [(changelog, 10)]
    # The flow stopped: the fetch is dropped; streams go back to their commits, changelogs to
    # where their dropped records start.
    stopped = fetching(fetched, {feed, changelog}, flow=False)
    assert [tp async for tp, _ in stopped.getmany(timeout=1.0)] == []
    assert stopped.sought == [(changelog, 10), (TP("committed", 0), -1)]


async def test_the_workers_fetches_wait_a_tenth_of_a_second_not_faust_s_one_and_a_half() -> None:
    # A fetch holds none of the partitions whose records the worker has not taken yet, and
    # aiokafka sends the next one only when it returns: its wait is a stall of the worker.
    registry = CollectorRegistry()
    monitor = create_app(Settings(), default_catalogue(), SystemClock(), registry=registry)
    thread = monitor.app.consumer._thread
    assert isinstance(thread, RewindingConsumerThread)
    ours = thread._create_worker_consumer(monitor.app.transport)
    faust_s = driver.AIOKafkaConsumerThread._create_worker_consumer(thread, monitor.app.transport)
    await ours.stop()  # never started: only its client to close
    await faust_s.stop()
    thread.thread_loop.close()  # the loop the thread would have run in
    assert ours._fetch_max_wait_ms == FETCH_MAX_WAIT_MS == 100
    assert faust_s._fetch_max_wait_ms == 1500  # what this overrides; if Faust changes it, look


def revoking(acked: list[int]) -> tuple[RewindingConsumer, list[dict[TP, int]], list[str]]:
    """A consumer expecting offset 5 of the feed partition, with ``acked`` processed since
    its last commit, whose app handler commits at a revoke (as Faust's does, once the
    streams are empty). Returns it, what each of its commits committed, and its calls."""
    tp = TP(FEED.topic, 1)
    c = consumer(expected=5, acked=acked, committed=5)
    last = max(acked, default=4)
    c._read_offset = defaultdict(lambda: None, {tp: last})
    c._quiet, c._delivered, c._skips = {}, {tp: last}, {}
    c._handed, c._revoking = {tp: Run(1, 5, last)}, set()
    c._active_partitions, c._paused_partitions = {tp}, set()
    c._commit_fut = None
    committed: list[dict[TP, int]] = []
    calls: list[str] = []

    async def commit(topics: Any = None, start_new_transaction: bool = True) -> bool:
        if c._commit_fut is not None:  # Faust's: wait for the commit under way, commit nothing
            await c._commit_fut
            calls.append("skipped")
            return False
        calls.append("commit")
        offsets = c._filter_committable_offsets(topics or {tp})
        committed.append(offsets)
        return bool(offsets)

    async def app_handler(revoked: set[TP]) -> None:
        calls.append("handler")
        await c.commit(revoked)

    c.__dict__.update(
        commit=commit,
        _on_partitions_revoked=app_handler,
        app=SimpleNamespace(_start_span_from_rebalancing=lambda name: noop_span()),
        diag=SimpleNamespace(set_flag=lambda flag: None, unset_flag=lambda flag: None),
    )
    return c, committed, calls


async def test_a_revoke_commits_what_was_processed_then_forgets_the_partition() -> None:
    tp = TP(FEED.topic, 1)
    c, committed, calls = revoking(acked=[5, 6, 7])
    await c.on_partitions_revoked({tp})
    assert calls[0] == "handler"
    assert committed[0] == {tp: 8}  # the handler's commit: everything processed
    for kept in (c._acked, c._read_offset, c._committed_offset, c._expected, c._handed):
        assert tp not in kept
    assert c._active_partitions == set()
    assert c._revoking == set()


async def test_faust_alone_forgets_the_acks_before_its_revoke_commit() -> None:
    # Why the override exists: Faust's drops the acked offsets, then runs the handler.
    tp = TP(FEED.topic, 1)
    c, committed, _ = revoking(acked=[5, 6, 7])
    await driver.Consumer.on_partitions_revoked(c, {tp})
    assert committed == [{}]  # the next owner reads 5, 6 and 7 again


async def test_a_revoke_commits_again_after_a_commit_that_was_under_way() -> None:
    # A periodic commit counted its offsets before 7 was acked, and was still under way when
    # the handler committed: the handler's commit waited for it and committed nothing.
    tp = TP(FEED.topic, 1)
    c, committed, calls = revoking(acked=[5, 6, 7])
    under_way: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    c._commit_fut = under_way

    def done() -> None:  # as Faust's commit ends: no commit under way, then its waiters woken
        c._commit_fut = None
        under_way.set_result(None)

    asyncio.get_running_loop().call_soon(done)
    await c.on_partitions_revoked({tp})
    assert calls == ["handler", "skipped", "commit"]
    assert committed == [{tp: 8}]


async def test_a_partition_being_revoked_is_not_read_again() -> None:
    # The streams' queues were cleared: its records look dropped, but its next owner reads
    # them from the commit.
    tp = TP(FEED.topic, 1)
    c = tails()
    c._revoking = {tp}
    seeks: list[tuple[TP, int]] = []

    async def seek(partition: TP, offset: int) -> None:
        seeks.append((partition, offset))

    c.__dict__.update(seek=seek, assignment=lambda: {tp})
    c._unacked_messages, c._handed = WeakSet(), {}
    for _ in range(2):
        await c._rewind_dropped_tails()
    assert seeks == []
    c._revoking = set()
    await c._rewind_dropped_tails()
    await c._rewind_dropped_tails()
    assert seeks == [(tp, 5)]


@pytest.mark.parametrize(
    ("failure", "said"),
    [
        (IllegalStateError("No current assignment for partition"), "infos"),
        (RuntimeError("broker gone"), "errors"),
    ],
)
async def test_a_seek_a_rebalance_overtook_is_said_and_any_other_failure_is_an_error(
    failure: Exception, said: str
) -> None:
    # The flow stops for a rebalance; the fetch's records are dropped and the partitions
    # sought back to their commits. When the assignment changes during that seek, aiokafka
    # refuses it: the new assignment's recovery seeks again, so that is no error.
    feed = TP(FEED.topic, 0)
    stopped = fetching({feed: [SimpleNamespace(offset=5)]}, {feed}, flow=False)

    async def perform_seek() -> None:
        raise failure

    stopped.__dict__.update(perform_seek=perform_seek, log=_Log())
    assert [tp async for tp, _ in stopped.getmany(timeout=1.0)] == []
    log = stopped.log
    assert len(getattr(log, said)) == 1
    assert len(log.infos) + len(log.errors) == 1
    assert "committed offsets" in getattr(log, said)[0]


def test_the_worker_commits_as_often_as_its_settings_say() -> None:
    # What a revoke must commit is what was processed since the last of these commits.
    registry = CollectorRegistry()
    monitor = create_app(
        Settings(commit_seconds=7.5), default_catalogue(), SystemClock(), registry=registry
    )
    assert monitor.app.conf.broker_commit_interval == 7.5
    assert Settings().commit_seconds == 2.8  # Faust's own default
