"""The worker process's own set-up."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from agents.worker import GC_THRESHOLDS, tune_garbage_collector


@pytest.fixture
def collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("collector")
def test_the_worker_freezes_what_it_built_and_collects_less_often() -> None:
    gc.unfreeze()
    built = [object() for _ in range(10)], {"a": [1]}  # containers made before consuming
    tune_garbage_collector()
    assert gc.get_threshold() == GC_THRESHOLDS
    assert gc.get_freeze_count() > 0
    assert all(o is not built for o in gc.get_objects())  # frozen: no collection walks it
