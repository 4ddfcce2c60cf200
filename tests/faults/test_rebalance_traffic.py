"""Workers join and leave while the week streams in: totals exact, every series exported once.

This is the test that found Faust skipping records around a rebalance (a newcomer joins, and
the records sent at that moment on the partitions the first worker keeps were never
processed); see ``agents/transport.py``.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from tests.faults.conftest import fault_settings
from tests.faults.harness import (
    UNCLOSED_CLIENT_SOCKET,
    Figures,
    Ledger,
    Reference,
    Sender,
    compare,
    exported,
    group_worker,
    kill_points,
    settle,
    wait_until,
    workload,
)

pytestmark = [pytest.mark.integration, pytest.mark.faults, UNCLOSED_CLIENT_SOCKET]

STREAM_SECONDS = 40.0


def test_two_then_three_workers_join_and_leave_while_traffic_flows(
    kafka_bootstrap: str, tmp_path: Path, reference: Reference, ledger: Ledger, fault_seed: int
) -> None:
    first = fault_settings(kafka_bootstrap, tmp_path)
    a, b, c, d = (group_worker(first, tmp_path, n) for n in "abcd")
    steps = [
        ("b joins", b.start),
        ("c joins (3 workers)", c.start),
        ("a leaves", a.stop),
        ("d joins (3 workers)", d.start),
        ("c crashes (kill -9)", c.kill),
    ]
    moments = kill_points(random.Random(fault_seed + 1), len(steps), STREAM_SECONDS)
    a.start()
    started = time.monotonic()
    sender = Sender(first, workload(), STREAM_SECONDS)
    sender.start()
    done: list[str] = []
    try:
        for (what, step), moment in zip(steps, moments, strict=True):
            time.sleep(max(0.0, started + moment - time.monotonic()))
            step()
            done.append(f"{what} at {time.monotonic() - started:.0f} s")
        sent = sender.finish()
        snapshot = settle(
            first, 240, "the run with joins and leaves", [w.log_file for w in (a, b, c, d)]
        )
        survivors = [b.settings.worker_url, d.settings.worker_url]

        def exported_once() -> bool:
            values, seen = exported(survivors)
            return values == reference.values and set(seen.values()) == {1}

        wait_until(exported_once, 90, "each series exported once by the two survivors")
        values, seen = exported(survivors)
        shares = [exported([url])[0] for url in survivors]
    finally:
        for w in (a, b, c, d):
            w.stop()
    comparison = compare(reference.snapshot, snapshot)
    ledger.add(
        Figures(
            scenario="Rebalance / Worker vào, ra",
            faults="; ".join(done),
            events=sent,
            comparison=comparison,
            seconds=time.monotonic() - started,
            seed=fault_seed,
        )
    )
    assert comparison.exact, str(comparison)
    assert values == reference.values
    assert max(seen.values()) == 1, "a series exported by two workers"
    assert all(shares), "both survivors own a share"
