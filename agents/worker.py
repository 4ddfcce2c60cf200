"""Running the worker process: topics first, then the Faust worker with its web server."""

from __future__ import annotations

import gc

from faust.worker import Worker

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


def run_worker(settings: Settings) -> None:
    """Create missing topics, then run the worker until SIGINT or SIGTERM."""
    catalogue = default_catalogue()
    ensure_topics(settings, Topics(settings.topic_prefix).all(sorted(catalogue.sources)))
    monitor = create_app(settings, catalogue, clock_from_settings(settings))
    tune_garbage_collector()
    settings.worker_data_dir.mkdir(parents=True, exist_ok=True)
    worker = Worker(monitor.app, loglevel=settings.log_level.upper(), quiet=True)
    worker.execute_from_commandline()
