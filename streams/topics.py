"""Topic names, and their explicit creation (the broker never auto-creates topics here)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from ioc.errors import ProducerError
from ioc.settings import Settings
from streams.kafka_config import client_config

FEED = "ioc.feed."


@dataclass(frozen=True)
class Topics:
    """The names of every topic, under one configurable prefix (``IOC_TOPIC_PREFIX``)."""

    prefix: str = ""

    # The names are cached properties: the agents ask for them several times per event.

    def feed(self, source: str) -> str:
        """The inbound topic of one source: ``<prefix>ioc.feed.<source>``."""
        return f"{self.prefix}{FEED}{source}"

    def source_of(self, topic: str) -> str | None:
        """The source whose feed ``topic`` is, or None for any other topic."""
        head = self.prefix + FEED
        return topic[len(head) :] if topic.startswith(head) else None

    @cached_property
    def indicators(self) -> str:
        """Validated events, keyed by (indicator, area)."""
        return f"{self.prefix}ioc.indicators"

    @cached_property
    def deadletter(self) -> str:
        """Rejected input: original bytes, reason and where it came from."""
        return f"{self.prefix}ioc.deadletter"

    @cached_property
    def alerts(self) -> str:
        """Alert transitions (firing, resolved)."""
        return f"{self.prefix}ioc.alerts"

    @cached_property
    def rollups(self) -> str:
        """Internal: children's figures, keyed by (indicator, parent area)."""
        return f"{self.prefix}ioc.internal.rollups"

    @cached_property
    def rules(self) -> str:
        """Internal: inputs of cross-indicator rules, keyed by (rule, area)."""
        return f"{self.prefix}ioc.internal.rules"

    @cached_property
    def receipts(self) -> str:
        """Internal: reports received and clock ticks, keyed by source."""
        return f"{self.prefix}ioc.internal.receipts"

    def all(self, sources: Iterable[str]) -> list[str]:
        """Every topic the pipeline needs for these sources."""
        return [
            *(self.feed(s) for s in sources),
            self.indicators,
            self.deadletter,
            self.alerts,
            self.rollups,
            self.rules,
            self.receipts,
        ]


def ensure_topics(settings: Settings, names: Iterable[str]) -> list[str]:
    """Create the topics that do not exist yet, with explicit partitions and retention.

    Returns the names created. Existing topics are left as they are.
    """
    try:
        admin = KafkaAdminClient(**client_config(settings, "ioc-admin"))
    except KafkaError as exc:
        raise ProducerError(
            f"Không kết nối được Kafka tại {settings.bootstrap_servers}. / "
            f"Could not reach Kafka at {settings.bootstrap_servers}: {exc}"
        ) from exc
    try:
        existing = set(admin.list_topics())
        retention_ms = str(settings.retention_hours * 3600 * 1000)
        wanted = [
            NewTopic(
                name=name,
                num_partitions=settings.partitions,
                replication_factor=1,
                topic_configs={"retention.ms": retention_ms},
            )
            for name in dict.fromkeys(names)
            if name not in existing
        ]
        created: list[str] = []
        for topic in wanted:
            try:
                admin.create_topics([topic])
                created.append(topic.name)
            except TopicAlreadyExistsError:
                pass  # another process created it between list and create
        return created
    finally:
        admin.close()
