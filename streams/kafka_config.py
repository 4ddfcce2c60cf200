"""Connection settings for kafka-python clients (producers, admin, the rejects reader)."""

from __future__ import annotations

from typing import Any

from ioc.settings import Settings


def client_config(settings: Settings, client_id: str) -> dict[str, Any]:
    """Keyword arguments shared by every kafka-python client of the project."""
    config: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers.split(","),
        "client_id": client_id,
        "security_protocol": settings.kafka_security_protocol,
        "request_timeout_ms": 15_000,
    }
    if settings.kafka_security_protocol == "SASL_PLAINTEXT":
        config["sasl_mechanism"] = "SCRAM-SHA-512"
        config["sasl_plain_username"] = settings.kafka_sasl_username
        config["sasl_plain_password"] = (
            settings.kafka_sasl_password.get_secret_value()
            if settings.kafka_sasl_password
            else None
        )
    return config
