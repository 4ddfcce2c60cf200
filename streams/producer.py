"""The producer SDK agencies use to publish indicator events (kafka-python, acks=all, idempotent).

A send returns only once the broker has acknowledged it, with the topic, partition and offset
where the event now lives: an agency knows for certain what the IOC has received.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from kafka import KafkaProducer
from kafka.errors import AuthorizationError, KafkaError

from ioc.errors import ProducerError
from ioc.settings import Settings
from streams.events import IndicatorEvent
from streams.kafka_config import client_config
from streams.topics import Topics


@dataclass(frozen=True)
class Delivery:
    """Where the broker stored one event."""

    event_id: str
    topic: str
    partition: int
    offset: int


def _unreachable(settings: Settings, exc: BaseException) -> ProducerError:
    if isinstance(exc, AuthorizationError):
        return _denied(settings, exc)
    return ProducerError(
        f"Kafka tại {settings.bootstrap_servers} không xác nhận việc gửi: {exc}. "
        "Kiểm tra broker đang chạy (`ioc kafka status`) rồi gửi lại; gửi lại an toàn vì "
        "trùng lặp bị loại theo event_id.\n"
        f"Kafka at {settings.bootstrap_servers} did not acknowledge the send: {exc}. "
        "Check the broker runs (`ioc kafka status`) and send again; resending is safe, "
        "duplicates are dropped by event_id."
    )


def _denied(settings: Settings, exc: AuthorizationError) -> ProducerError:
    user = settings.kafka_sasl_username or "(không tên / anonymous)"
    error = ProducerError(
        f"Kafka từ chối tài khoản {user}: {exc}. Mỗi nguồn chỉ được ghi vào kênh của chính "
        "mình (ioc.feed.<nguồn>); kiểm tra --source và IOC_KAFKA_SASL_USERNAME. Gửi lại "
        "không giúp được.\n"
        f"Kafka denied user {user}: {exc}. Each source may write only its own feed "
        "(ioc.feed.<source>); check --source and IOC_KAFKA_SASL_USERNAME. Resending will not "
        "help."
    )
    error.retriable = False
    return error


class IndicatorProducer:
    """Publishes events to their source's feed topic and waits for the broker's acknowledgement."""

    def __init__(
        self,
        settings: Settings,
        *,
        client_id: str = "ioc-producer",
        ack_timeout: float | None = None,
        **overrides: Any,
    ) -> None:
        self.settings = settings
        self.topics = Topics(settings.topic_prefix)
        self.ack_timeout = ack_timeout if ack_timeout is not None else settings.producer_timeout
        ack_ms = int(self.ack_timeout * 1000)
        config = client_config(settings, client_id) | {
            "acks": "all",
            "enable_idempotence": True,
            "linger_ms": 5,
            "retries": 2**31 - 1,  # bounded by delivery_timeout_ms instead
            "delivery_timeout_ms": ack_ms,
            # kafka-python refuses a delivery timeout below linger + request timeout: at most
            # half of it leaves room for a retry (IOC_PRODUCER_TIMEOUT=3 used to be refused).
            "request_timeout_ms": min(15_000, ack_ms // 2),
            "max_block_ms": ack_ms,
            "bootstrap_timeout_ms": ack_ms,
        }
        try:
            self._producer = KafkaProducer(**(config | overrides))
        except KafkaError as exc:
            raise _unreachable(settings, exc) from exc

    def send(self, event: IndicatorEvent) -> Delivery:
        """Publish one event; return once it is acknowledged by all in-sync replicas."""
        return self.send_many([event])[0]

    def send_many(self, events: Iterable[IndicatorEvent]) -> list[Delivery]:
        """Publish events in order and wait until every one is acknowledged."""
        pending = []
        try:
            for event in events:
                topic = self.topics.feed(event.source)
                future = self._producer.send(topic, key=event.key, value=event.to_json())
                pending.append((event, future))
            self._producer.flush(timeout=self.ack_timeout)
            return [
                self._delivery(event, future.get(timeout=self.ack_timeout))
                for event, future in pending
            ]
        except KafkaError as exc:
            raise _unreachable(self.settings, exc) from exc

    def send_raw(self, topic: str, value: bytes, key: bytes | None = None) -> Delivery:
        """Publish bytes as they are (for tests of hostile input and for replays)."""
        try:
            meta = self._producer.send(topic, key=key, value=value).get(timeout=self.ack_timeout)
        except KafkaError as exc:
            raise _unreachable(self.settings, exc) from exc
        return Delivery("", meta.topic, meta.partition, meta.offset)

    def send_raw_many(self, messages: Iterable[tuple[str, bytes, bytes | None]]) -> int:
        """Publish (topic, value, key) triples in order; return once all are acknowledged."""
        pending = []
        try:
            for topic, value, key in messages:
                pending.append(self._producer.send(topic, key=key, value=value))
            self._producer.flush(timeout=self.ack_timeout)
            for future in pending:
                future.get(timeout=self.ack_timeout)
        except KafkaError as exc:
            raise _unreachable(self.settings, exc) from exc
        return len(pending)

    @staticmethod
    def _delivery(event: IndicatorEvent, meta: Any) -> Delivery:
        return Delivery(str(event.event_id), meta.topic, meta.partition, meta.offset)

    def close(self) -> None:
        """Flush what is pending and release the connection."""
        self._producer.close(timeout=self.ack_timeout)

    def __enter__(self) -> IndicatorProducer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
