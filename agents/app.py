"""The Faust application of the IOC worker, built by a factory from :class:`Settings`.

Data flow inside the worker::

    ioc.feed.<source> (raw bytes) ──validate──► ioc.indicators ──latest──► table latest_values
                         │  table validator_seen   └─► ioc.deadletter (reason, original bytes)
                         └─ duplicates: counted in ioc_events_duplicate_total, not forwarded

Feed topics are consumed as raw bytes and parsed inside the agent: a typed Faust agent would
crash on the first malformed message (``ValueDecodeError``), and no payload may stop the worker.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import faust
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from agents.gatekeeper import Duplicate, Forward, Gatekeeper
from agents.metrics import LatestValuesCollector, PipelineMetrics
from agents.web import register_views
from ioc.clock import Clock
from ioc.settings import Settings
from streams.catalogue import Catalogue
from streams.deadletter import DeadLetter
from streams.events import IndicatorEvent
from streams.topics import Topics
from streams.validation import Rejection

log = logging.getLogger(__name__)

RAW: dict[str, Any] = {
    "key_type": bytes,
    "value_type": bytes,
    "key_serializer": "raw",
    "value_serializer": "raw",
}


@dataclass
class Monitor:
    """The Faust app together with what its views and tests need to reach."""

    app: faust.App
    settings: Settings
    registry: CollectorRegistry
    metrics: PipelineMetrics
    topics: Topics
    catalogue: Catalogue
    clock: Clock
    tables: dict[str, Any] = field(default_factory=dict)


def _broker_credentials(settings: Settings) -> Any:
    if settings.kafka_security_protocol != "SASL_PLAINTEXT":
        return None
    password = settings.kafka_sasl_password
    return faust.SASLCredentials(
        username=settings.kafka_sasl_username,
        password=password.get_secret_value() if password else None,
        mechanism="SCRAM-SHA-512",
    )


def create_app(
    settings: Settings,
    catalogue: Catalogue,
    clock: Clock,
    *,
    registry: CollectorRegistry | None = None,
) -> Monitor:
    """Build the worker's Faust app, its agents, tables, metrics and web views."""
    registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
    topics = Topics(settings.topic_prefix)
    app = faust.App(
        f"{settings.topic_prefix}{settings.app_id}",
        broker=[f"kafka://{server}" for server in settings.bootstrap_servers.split(",")],
        broker_credentials=_broker_credentials(settings),
        store="memory://",
        datadir=str(settings.worker_data_dir),
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        topic_allow_declare=True,
        web_enabled=True,
        web_host=settings.worker_host,
        web_port=settings.worker_port,
        web_bind=settings.worker_host,
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
        autodiscover=False,
    )
    monitor = Monitor(
        app=app,
        settings=settings,
        registry=registry,
        metrics=PipelineMetrics(registry),
        topics=topics,
        catalogue=catalogue,
        clock=clock,
    )
    _register_agents(monitor)
    register_views(monitor)
    return monitor


def _table(monitor: Monitor, name: str) -> Any:
    # No key_type/value_type: plain JSON. Faust's recovery calls ``value_type.from_data``,
    # which builtins such as ``dict`` do not have (recovery would stall).
    table = monitor.app.Table(name, default=None, partitions=monitor.settings.partitions)
    monitor.tables[name] = table
    return table


def _register_agents(monitor: Monitor) -> None:
    app, topics, metrics = monitor.app, monitor.topics, monitor.metrics
    sources = sorted(monitor.catalogue.sources)
    feeds = app.topic(*(topics.feed(s) for s in sources), **RAW)
    indicators = app.topic(topics.indicators, **RAW)
    deadletter = app.topic(topics.deadletter, **RAW)

    gatekeeper = Gatekeeper(monitor.catalogue, monitor.clock, _table(monitor, "validator_seen"))
    latest = _table(monitor, "latest_values")
    monitor.registry.register(LatestValuesCollector(latest.items))

    async def reject(message: Any, source: str, rejection: Rejection) -> None:
        record = DeadLetter.of(
            rejection,
            source=source,
            original=message.value,
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            received_at=datetime.now(UTC),
        )
        await deadletter.send(key=source.encode(), value=record.model_dump_json().encode())
        metrics.rejected.labels(source, rejection.reason).inc()

    @app.agent(feeds, name="validate")
    async def validate(stream: Any) -> None:
        async for event in stream.events():
            message = event.message
            source = topics.source_of(message.topic) or "unknown"
            metrics.received.labels(source).inc()
            outcome = gatekeeper.judge(message.value, message.key, source)
            if isinstance(outcome, Forward):
                await indicators.send(key=outcome.event.key, value=outcome.event.to_json())
                metrics.accepted.labels(source).inc()
                if outcome.correction:
                    metrics.corrections.labels(source).inc()
            elif isinstance(outcome, Duplicate):
                metrics.duplicates.labels(source).inc()
            else:
                await reject(message, source, outcome.rejection)

    @app.agent(indicators, name="latest")
    async def keep_latest(stream: Any) -> None:
        async for raw in stream:
            try:
                event = IndicatorEvent.from_json(raw)
            except ValidationError as exc:
                # Only the validator writes here; anything else is a bug or an intruder.
                metrics.internal_errors.labels("latest").inc()
                log.error("Invalid record on %s skipped: %s", topics.indicators, exc)
                continue
            key = f"{event.indicator}|{event.area}"
            current = latest.get(key)
            # The newest period wins; within a period, the later message (a correction).
            # Period strings of one type sort chronologically (2024-W09 < 2024-W10).
            if current is not None and event.period < current["period"]:
                continue
            latest[key] = {
                "source": event.source,
                "indicator": event.indicator,
                "area": event.area,
                "period": event.period,
                "value": event.value,
                "event_id": str(event.event_id),
                "sent_at": event.sent_at.isoformat(),
            }
