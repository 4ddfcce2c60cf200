"""Web views served by the worker: ``/metrics``, ``/healthz`` and the on-call webhook.

``/api/v1/oncall`` is where Alertmanager's ``on-call`` receiver posts (docker-compose points
there). The worker records every page it is sent, for the wall and for audit; a province
plugs its SMS/Zalo gateway in by pointing the receiver (deploy/alertmanager) at it instead.
"""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from faust.web import View
from prometheus_client import CONTENT_TYPE_LATEST, Counter

from agents.metrics import render
from agents.wall import register_wall

if TYPE_CHECKING:
    from agents.app import Monitor

#: Pages kept in memory for ``GET /api/v1/oncall``.
KEEP_PAGES = 200


def register_views(monitor: Monitor) -> None:
    """Attach the worker's HTTP endpoints to its Faust web server."""
    app, registry = monitor.app, monitor.registry
    pages: deque[dict[str, Any]] = deque(maxlen=KEEP_PAGES)
    received = Counter(
        "ioc_oncall_notifications",
        "Alertmanager notifications received by the on-call webhook, by status.",
        ["status"],
        registry=registry,
    )

    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        body = await render(monitor)
        return web.bytes(body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        return web.json({"status": "ok", "app": app.conf.id})

    @app.page("/readyz")
    async def readyz(web: Any, request: Any) -> Any:
        # Ready once the worker has joined its group and recovered its tables: before that
        # it serves HTTP but processes nothing, and its tables may be incomplete.
        tables: Any = app.tables  # Faust's TableManagerT does not declare its recovery
        ready = (
            app.rebalancing_count > 0
            and not app.rebalancing
            and not app.in_recovery
            and tables.recovery.completed.is_set()
        )
        return web.json({"ready": ready}, status=200 if ready else 503)

    @app.page("/api/v1/oncall")
    class OnCall(View):
        async def get(self, request: Any) -> Any:
            return self.json({"pages": list(pages)})

        async def post(self, request: Any) -> Any:
            try:
                payload = orjson.loads(await self.read_request_content(request))
                status = str(payload["status"])
                alerts = list(payload["alerts"])
            except (orjson.JSONDecodeError, KeyError, TypeError):
                return self.json(
                    {"error": "expected an Alertmanager webhook payload (status, alerts)"},
                    status=400,
                )
            received.labels(status if status in ("firing", "resolved") else "other").inc()
            pages.append(
                {
                    "received_at": datetime.now(UTC).isoformat(),
                    "status": status,
                    "alerts": [
                        {
                            "status": alert.get("status"),
                            "labels": alert.get("labels", {}),
                            "annotations": alert.get("annotations", {}),
                        }
                        for alert in alerts
                    ],
                }
            )
            return self.json({"recorded": len(alerts)})

    register_wall(monitor)
