"""``ioc topics create``: explicit partitions and retention, and idempotent."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

from ioc.settings import settings_env
from streams.kafka_config import client_config
from tests.conftest import SettingsFactory

pytestmark = pytest.mark.integration


def test_create_is_explicit_and_idempotent(settings_factory: SettingsFactory) -> None:
    settings = settings_factory(partitions=3, retention_hours=48)
    env = os.environ | settings_env(settings)
    run = [sys.executable, "-m", "ioc", "topics", "create"]

    first = subprocess.run(run, env=env, capture_output=True, text=True, check=False)
    second = subprocess.run(run, env=env, capture_output=True, text=True, check=False)

    assert first.returncode == 0, first.stderr
    assert "Created 47 topics, 0 existed already" in first.stdout  # 41 feeds + 6
    assert "Created 0 topics, 47 existed already" in second.stdout
    admin = KafkaAdminClient(**client_config(settings, "test-admin"))
    try:
        name = f"{settings.topic_prefix}ioc.feed.tax"
        (description,) = admin.describe_topics([name])
        assert len(description["partitions"]) == 3
        configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
        text = repr(configs)
        assert str(48 * 3600 * 1000) in text
    finally:
        admin.close()
