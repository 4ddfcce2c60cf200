"""Web views served by the worker: ``/metrics`` (Prometheus text format) and ``/healthz``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

if TYPE_CHECKING:
    from agents.app import Monitor


def register_views(monitor: Monitor) -> None:
    """Attach the worker's HTTP endpoints to its Faust web server."""
    app, registry = monitor.app, monitor.registry

    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        return web.bytes(generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        return web.json({"status": "ok", "app": app.conf.id})
