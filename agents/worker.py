"""Running the worker process: topics first, then the Faust worker with its web server."""

from __future__ import annotations

from faust.worker import Worker

from agents.app import create_app
from ioc.clock import clock_from_settings
from ioc.settings import Settings
from streams.catalogue import default_catalogue
from streams.topics import Topics, ensure_topics


def run_worker(settings: Settings) -> None:
    """Create missing topics, then run the worker until SIGINT or SIGTERM."""
    catalogue = default_catalogue()
    ensure_topics(settings, Topics(settings.topic_prefix).all(sorted(catalogue.sources)))
    monitor = create_app(settings, catalogue, clock_from_settings(settings))
    settings.worker_data_dir.mkdir(parents=True, exist_ok=True)
    worker = Worker(monitor.app, loglevel=settings.log_level.upper(), quiet=True)
    worker.execute_from_commandline()
