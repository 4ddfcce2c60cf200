"""The peer: the same job written with Quix Streams (``python -m bench.peer``).

The job, on every feed topic: validate each message (contract and catalogue), drop duplicates
by event id, keep the latest value per indicator and area, count per source. Validation and
dedupe are this project's own :class:`~agents.gatekeeper.Gatekeeper` over Quix's state, so
both sides pay for exactly the same checks and the comparison is of the frameworks around
them. State is Quix's default: RocksDB per partition, backed by changelog topics (as the
worker's tables are), keyed by the message key ``indicator|area``.

Quix Streams is an optional, benchmark-only dependency (``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import importlib
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

with warnings.catch_warnings():
    # Quix Streams imports confluent-kafka's schema registry, which imports a deprecated
    # authlib module; authlib turns its deprecation warnings on ("always") as it loads, so
    # load it first, then silence them for the import (the filters are restored after it).
    importlib.import_module("authlib.deprecate")
    warnings.simplefilter("ignore", DeprecationWarning)
    from quixstreams import Application, State, message_context

from agents.gatekeeper import Duplicate, Forward, Gatekeeper, position_of
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
from ioc.clock import SystemClock
from streams.catalogue import Catalogue, default_catalogue
from streams.topics import Topics

LATEST = "latest"


class StateView(MutableMapping[str, Any]):
    """The dedupe state of one message key, as the mapping :class:`Gatekeeper` expects.

    Quix's state holds JSON: the gatekeeper's entries (bytes) are kept in hex."""

    def __init__(self, state: State[str, Any]) -> None:
        self.state = state

    def __getitem__(self, key: str) -> bytes:
        value = self.state.get(key)
        if value is None:
            raise KeyError(key)
        return bytes.fromhex(value)

    def __setitem__(self, key: str, value: bytes) -> None:
        self.state.set(key, value.hex())

    def __delitem__(self, key: str) -> None:
        self.state.delete(key)

    def __iter__(self) -> Iterator[str]:
        raise NotImplementedError  # the gatekeeper only reads and writes single keys

    def __len__(self) -> int:
        raise NotImplementedError


class PeerJob:
    """The job, one message at a time: the pre-load, then the live messages."""

    def __init__(self, catalogue: Catalogue, args: RunnerArgs) -> None:
        self.catalogue = catalogue
        self.clock = SystemClock()
        self.args = args
        self.topics = Topics(args.prefix)
        self.received: Counter[str] = Counter()
        self.accepted: Counter[str] = Counter()
        self.duplicates: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()
        self.latest_updates = 0
        self.live = 0
        self.result = RunnerResult()
        self.first: float | None = None
        self.cpu_began: CpuSample | None = None
        self.app: Application | None = None

    def process(
        self, value: bytes, key: bytes, timestamp: int, _: Any, state: State[str, Any]
    ) -> None:
        """Quix's callback: the message's topic, partition and offset, then :meth:`handle`."""
        context = message_context()
        origin = position_of(context.partition, context.offset)
        self.handle(context.topic, origin, value, key, timestamp, state)

    def handle(
        self,
        topic: str,
        origin: int,
        value: bytes,
        key: bytes,
        timestamp: int,
        state: State[str, Any],
    ) -> None:
        """Judge one feed message, keep the latest value of its series, count it."""
        result = self.result
        if self.first is None:
            self.first = time.perf_counter()
            self.cpu_began = own_cpu()
        source = self.topics.source_of(topic) or "unknown"
        self.received[source] += 1
        gatekeeper = Gatekeeper(self.catalogue, self.clock, StateView(state))
        outcome = gatekeeper.judge(value, key, source, origin)
        if isinstance(outcome, Forward):
            self.accepted[source] += 1
            event = outcome.event
            latest = state.get(LATEST)
            if latest is None or event.period >= latest[0]:
                state.set(LATEST, [event.period, event.value, event.sent_at.isoformat()])
                self.latest_updates += 1
        elif isinstance(outcome, Duplicate):
            self.duplicates[source] += 1
        else:
            self.rejected[source] += 1
        if result.seen < self.args.expect:
            result.seen += 1
            result.seconds = time.perf_counter() - self.first
            if result.seen == self.args.expect:
                result.counts = self.counts()
                record_cpu(result, self.cpu_began)
                announce_ready()
        else:
            self.live += 1
            result.samples.append([timestamp, int(time.time() * 1000) - timestamp])
            result.counts["live_seen"] = self.live
        if result.seen >= self.args.expect and self.live >= self.args.live and self.app:
            self.app.stop()

    def counts(self) -> dict[str, Any]:
        """The job's tallies, per source and in total."""
        return {
            "received": sum(self.received.values()),
            "accepted": sum(self.accepted.values()),
            "duplicates": sum(self.duplicates.values()),
            "rejected": sum(self.rejected.values()),
            "latest_updates": self.latest_updates,
            "per_source": dict(sorted(self.accepted.items())),
        }


def run(args: RunnerArgs) -> RunnerResult:
    """Run the job over the pre-load and the live messages (or until ``args.timeout`` passes
    without a message)."""
    catalogue = default_catalogue()
    with tempfile.TemporaryDirectory(prefix="ioc-bench-quix-") as scratch:
        app = Application(
            broker_address=args.bootstrap,
            consumer_group=args.group,
            auto_offset_reset="earliest",
            state_dir=args.state_dir or Path(scratch),
            loglevel="WARNING",
            consumer_extra_config={"fetch.wait.max.ms": 50},
        )
        job = PeerJob(catalogue, args)
        job.app = app
        names = feed_topics(args.prefix, catalogue.sources)
        for name in names:
            topic = app.topic(name, key_deserializer="bytes", value_deserializer="bytes")
            app.dataframe(topic).update(job.process, stateful=True, metadata=True)
        app.run(timeout=args.timeout)
        result = job.result
        if result.seen < args.expect or job.live < args.live:
            result.counts = result.counts or job.counts()
            result.error = (
                f"no message for {args.timeout:.0f} s: {result.seen} of {args.expect} "
                f"pre-loaded and {job.live} of {args.live} live messages processed"
            )
        return result


def main() -> None:
    """Entry point of ``python -m bench.peer``."""
    args = parse_args()
    finish(args, run(args))


if __name__ == "__main__":
    main()
