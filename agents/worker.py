"""Running the worker process: topics first, then the Faust worker with its web server."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from faust.worker import Worker
from mode.worker import Worker as ServiceWorker

from agents.app import create_app
from ioc.clock import clock_from_settings
from ioc.settings import Settings
from streams.catalogue import default_catalogue
from streams.topics import Topics, ensure_topics

#: The garbage collector's thresholds in the worker (Python's: 700, 10, 10). A batch allocates
#: thousands of objects that live until it closes, so at 700 the collector ran hundreds of
#: times a second, and each full collection walked every table row still held in containers.
#: Table rows and records are freed by reference counting; the collector only has cycles left
#: to find, and it finds them later instead.
GC_THRESHOLDS = (50_000, 20, 100)


def tune_garbage_collector() -> None:
    """Freeze what the worker has built so far (modules, catalogue, app: never garbage), and
    collect less often (:data:`GC_THRESHOLDS`)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


#: Exit status of a worker that did not stop in time, or was told twice (EX_SOFTWARE).
FORCED_EXIT_STATUS = 70
#: Tasks listed, at most, when the worker exits without having stopped; awaits shown per task.
TASKS_LISTED = 40
AWAITS_SHOWN = 24


def awaiting(task: asyncio.Task[Any]) -> list[str]:
    """Where ``task`` waits: its chain of awaits, outermost first (``f (file:line)``)."""
    steps: list[str] = []
    coro: Any = task.get_coro()
    while coro is not None and len(steps) < AWAITS_SHOWN:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "ag_frame", None)
        if frame is None:
            break
        code = frame.f_code
        steps.append(f"{code.co_qualname} ({Path(code.co_filename).name}:{frame.f_lineno})")
        coro = getattr(coro, "cr_await", None) or getattr(coro, "ag_await", None)
    return steps or [repr(task.get_coro())]


def pending_tasks(loop: asyncio.AbstractEventLoop) -> list[str]:
    """What the event loop's unfinished tasks wait on, one line per chain of awaits, the
    deepest first (the stop that hangs is there); read from any thread."""
    try:
        tasks = [task for task in asyncio.all_tasks(loop) if not task.done()]
    except RuntimeError as exc:  # the loop changed its tasks under us too often
        return [f"(không liệt kê được / could not list the tasks: {exc})"]
    chains = Counter(tuple(awaiting(task)) for task in tasks)
    lines = [
        " → ".join(chain) + (f" (×{count})" if count > 1 else "")
        for chain, count in sorted(chains.items(), key=lambda item: (-len(item[0]), item[0]))
    ]
    if len(lines) > TASKS_LISTED:
        lines[TASKS_LISTED:] = [f"... và / and {len(lines) - TASKS_LISTED} more"]
    return lines


class BoundedStop(ServiceWorker):
    """A mode worker whose stop, once asked for, ends within ``stop_seconds``.

    mode waits for its services to stop however long that takes, and takes no notice of
    another signal meanwhile. With the broker gone, Faust's last commit ("Wait for
    streams...") retries for ever: reproduced by ``kill -9`` of the broker, then SIGTERM to the
    worker, which was still there minutes later. So the first stop signal (or a stop on a
    crash) also starts a timer. If the process is still there when it runs out, the worker logs
    what each task waits on and exits with :data:`FORCED_EXIT_STATUS`. A second SIGINT or
    SIGTERM does the same at once. Nothing is lost: what was not committed is read again at the
    next start and deduplicated, as after ``kill -9`` (``tests/faults/test_worker_crash.py``).
    """

    def __init__(self, *args: Any, stop_seconds: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stop_seconds = stop_seconds
        self._stop_timer: threading.Timer | None = None

    def _schedule_shutdown(self, received: signal.Signals) -> None:
        if self._signal_stop_time:
            name = received.name
            self.exit_now(f"tín hiệu dừng lần hai ({name}) / a second stop signal ({name})")
        self._bound_stop()
        super()._schedule_shutdown(received)

    def stop_and_shutdown(self) -> None:
        self._bound_stop()
        super().stop_and_shutdown()

    def _bound_stop(self) -> None:
        if self._stop_timer is not None:
            return
        why = (
            f"chưa dừng xong sau {self.stop_seconds:g} s / "
            f"not stopped after {self.stop_seconds:g} s"
        )
        self._stop_timer = threading.Timer(self.stop_seconds, self.exit_now, (why,))
        self._stop_timer.daemon = True  # it never holds up a worker that did stop
        self._stop_timer.start()

    def exit_now(self, why: str) -> None:
        """Log what the worker still waits on, and end the process (from any thread)."""
        self.log.error(
            "Worker thoát mà chưa dừng xong / The worker exits without having stopped: %s. "
            "Phần chưa commit sẽ được đọc lại khi khởi động / What it had not committed is read "
            "again at its next start. Các tác vụ đang chờ / Its tasks were waiting on:\n  %s",
            why,
            "\n  ".join(pending_tasks(self.loop)),
        )
        logging.shutdown()  # flush the log first: os._exit skips it
        os._exit(FORCED_EXIT_STATUS)


class IocWorker(BoundedStop, Worker):
    """Faust's worker, with a bounded stop (:class:`BoundedStop`)."""


def run_worker(settings: Settings) -> None:
    """Create missing topics, then run the worker until SIGINT or SIGTERM."""
    catalogue = default_catalogue()
    ensure_topics(settings, Topics(settings.topic_prefix).all(sorted(catalogue.sources)))
    monitor = create_app(settings, catalogue, clock_from_settings(settings))
    tune_garbage_collector()
    settings.worker_data_dir.mkdir(parents=True, exist_ok=True)
    worker = IocWorker(
        monitor.app,
        loglevel=settings.log_level.upper(),
        quiet=True,
        stop_seconds=settings.worker_stop_seconds,
    )
    worker.execute_from_commandline()
