"""The raw ceiling: a plain aiokafka consume-and-decode loop (``python -m bench.raw``).

No validation, no state, no output: each message's value is decoded with orjson and counted.
Nothing in Python that reads these topics can go much faster than this loop, so it bounds what
a stream processor written in Python can reach on this machine.
"""

from __future__ import annotations

import asyncio
import time

import orjson
from aiokafka import AIOKafkaConsumer

from bench.child import (
    RunnerArgs,
    RunnerResult,
    announce_ready,
    finish,
    own_cpu,
    parse_args,
    record_cpu,
)
from bench.load import feed_topics
from bench.stats import CpuSample
from streams.catalogue import default_catalogue

#: Records taken per ``getmany``.
MAX_RECORDS = 10_000


async def consume(args: RunnerArgs) -> RunnerResult:
    """Decode the ``args.expect`` pre-loaded messages, then the ``args.live`` ones."""
    consumer = AIOKafkaConsumer(
        *feed_topics(args.prefix, default_catalogue().sources),
        bootstrap_servers=args.bootstrap.split(","),
        group_id=args.group,
        client_id="ioc-bench-raw",
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 << 20,
        fetch_max_bytes=64 << 20,
    )
    await consumer.start()
    result = RunnerResult()
    decode = orjson.loads
    try:
        first: float | None = None
        cpu_began: CpuSample | None = None
        idle_since = time.monotonic()
        while result.seen < args.expect:
            batches = await consumer.getmany(timeout_ms=200, max_records=MAX_RECORDS)
            if not batches:
                if time.monotonic() - idle_since > args.timeout:
                    result.error = f"no message for {args.timeout:.0f} s"
                    return result
                continue
            if first is None:
                first = time.perf_counter()
                cpu_began = own_cpu()
            for records in batches.values():
                for record in records:
                    decode(record.value)
                result.seen += len(records)
            result.seconds = time.perf_counter() - first
            idle_since = time.monotonic()
        result.counts = {"decoded": result.seen}
        record_cpu(result, cpu_began)
        announce_ready()
        live = 0
        samples = result.samples
        idle_since = time.monotonic()
        while live < args.live:
            batches = await consumer.getmany(timeout_ms=200, max_records=MAX_RECORDS)
            if not batches and time.monotonic() - idle_since > args.timeout:
                result.error = f"no live message for {args.timeout:.0f} s"
                break
            for records in batches.values():
                for record in records:
                    decode(record.value)
                    samples.append([record.timestamp, int(time.time() * 1000) - record.timestamp])
                live += len(records)
                idle_since = time.monotonic()
        result.counts["live_seen"] = live
        return result
    finally:
        await consumer.stop()


def main() -> None:
    """Entry point of ``python -m bench.raw``."""
    args = parse_args()
    finish(args, asyncio.run(consume(args)))


if __name__ == "__main__":
    main()
