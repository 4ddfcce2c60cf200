"""``ioc bench`` end to end on the session's broker: every runner, on a small load.

Rates and latencies are not asserted (the machine is shared): only that each runner ran,
processed exactly what it was given, and that dedupe counted the re-sent events.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from ioc.settings import Settings, settings_env

pytestmark = pytest.mark.integration

EVENTS = 3000
RESENT = 30  # the default --duplicates 0.01
LIVE = 400  # --rate 200 for --latency-seconds 2


@pytest.mark.timeout(900)
def test_bench_measures_every_runner_on_exactly_the_data(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = Settings(kafka_bootstrap=kafka_bootstrap, worker_data_dir=tmp_path / "worker")
    command = [sys.executable, "-m", "ioc", "bench", "--events", str(EVENTS), "--json"]
    command += ["--rate", "200", "--latency-seconds", "2"]
    done = subprocess.run(
        command,
        env=os.environ | settings_env(settings),
        capture_output=True,
        text=True,
        timeout=840,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = orjson.loads(done.stdout)

    assert report["events"] == report["distinct_keys"] == EVENTS
    assert report["duplicates"] == RESENT
    assert report["sources"] == 41
    assert report["live_events"] == LIVE
    runners = {runner["name"]: runner for runner in report["runners"]}
    assert sorted(runners) == ["peer", "raw", "worker"]
    for runner in runners.values():
        assert runner["given"] == EVENTS + RESENT
        assert runner["timed"] > 0
        assert runner["events_per_second"] > 0
        assert runner["peak_rss_bytes"] > 0
        assert runner["live_events"] == LIVE, runner["name"]  # every live event was timed
        assert runner["p50_ms"] is not None
        assert runner["p99_ms"] >= runner["p50_ms"]

    for runner in runners.values():
        # The cores each process used while its clock ran (too short here to say how many).
        (cpu,) = runner["counts"]["cpu_per_process"]
        assert min(cpu["main_thread"], cpu["other_threads"]) >= 0, runner["name"]
        assert 0 <= cpu["machine_idle"] <= 1
        assert cpu["seconds"] == pytest.approx(runner["seconds"], abs=1.0)

    assert runners["raw"]["timed"] == EVENTS + RESENT
    assert runners["raw"]["counts"]["decoded"] == EVENTS + RESENT

    peer = runners["peer"]["counts"]
    assert runners["peer"]["timed"] == EVENTS + RESENT
    assert (peer["received"], peer["accepted"], peer["duplicates"], peer["rejected"]) == (
        EVENTS + RESENT,
        EVENTS,
        RESENT,
        0,
    )
    assert sum(peer["per_source"].values()) == EVENTS
    assert len(peer["per_source"]) == 41
    assert peer["latest_updates"] == EVENTS  # one distinct period per key each time

    worker = runners["worker"]["counts"]
    assert worker["partial"] is False
    assert worker["uncommitted"] == 0  # the run ended with every feed message committed
    assert (worker["received"], worker["accepted"], worker["duplicates"]) == (
        EVENTS + RESENT,
        EVENTS,
        RESENT,
    )
    assert worker["rejected"] == 0
    assert worker["evaluated"] == EVENTS
    assert worker["lost"] == 0
    assert worker["live_lost"] == 0
    assert runners["worker"]["timed"] == EVENTS + RESENT - worker["finished_before_clock"]
    assert worker["clock_stopped_by"] == "last batch"  # not the scrape that saw it, later
    assert worker["live_matched"] == LIVE
    assert worker["histogram_p99_le"] is not None

    ratios = report["ratios"]
    assert ratios["ours_vs_peer"] > 0
    assert ratios["ours_vs_raw"] > 0
