"""The one settings object: defaults, environment, and errors that name the variable."""

from __future__ import annotations

import pytest

from ioc.errors import ConfigurationError
from ioc.settings import Settings, load_settings, settings_env


def test_local_broker_is_the_default_bootstrap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IOC_KAFKA_BOOTSTRAP", raising=False)
    monkeypatch.setenv("IOC_KAFKA_PORT", "19092")

    assert load_settings().bootstrap_servers == "127.0.0.1:19092"


def test_explicit_bootstrap_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IOC_KAFKA_BOOTSTRAP", "kafka:19092,kafka2:19092")

    assert load_settings().bootstrap_servers == "kafka:19092,kafka2:19092"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("IOC_KAFKA_PORT", "ninety", "IOC_KAFKA_PORT"),
        ("IOC_KAFKA_PORT", "70000", "IOC_KAFKA_PORT"),
        ("IOC_PARTITIONS", "0", "IOC_PARTITIONS"),
        ("IOC_LOG_LEVEL", "loud", "IOC_LOG_LEVEL"),
        ("IOC_KAFKA_BOOTSTRAP", "no-port-here", "IOC_KAFKA_BOOTSTRAP"),
        ("IOC_TOPIC_PREFIX", "has space", "IOC_TOPIC_PREFIX"),
        ("IOC_KAFKA_JIT", "c2", "IOC_KAFKA_JIT"),
    ],
)
def test_invalid_variable_is_named_with_what_it_got(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)

    with pytest.raises(ConfigurationError) as caught:
        load_settings()

    message = str(caught.value)
    assert expected in message
    assert repr(value) in message
    assert "Invalid configuration" in message
    assert caught.value.exit_code == 2


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(ValueError, match="frozen"):
        settings.kafka_port = 1  # type: ignore[misc]


def test_settings_env_round_trips(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    original = Settings(
        kafka_bootstrap="h:1",
        topic_prefix="t1.",
        worker_port=7001,
        worker_data_dir=tmp_path,
        kafka_sasl_password="s3cret",
    )
    for key in list(__import__("os").environ):
        if key.startswith("IOC_"):
            monkeypatch.delenv(key)
    for key, value in settings_env(original).items():
        monkeypatch.setenv(key, value)

    assert Settings() == original


def test_a_fast_clock_needs_a_shared_epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IOC_CLOCK_START", "2025-03-04T07:00:00+07:00")
    monkeypatch.setenv("IOC_CLOCK_SPEED", "200")

    with pytest.raises(ConfigurationError, match="IOC_CLOCK_EPOCH"):
        load_settings()
    monkeypatch.setenv("IOC_CLOCK_EPOCH", "1790000000")
    assert load_settings().clock_epoch == 1790000000


def test_a_password_can_come_from_a_file(tmp_path) -> None:
    secret = tmp_path / "worker.password"
    secret.write_text("from-the-file\n")

    settings = Settings(kafka_sasl_password_file=secret, kafka_admin_password_file=secret)

    assert settings.kafka_sasl_password is not None
    assert settings.kafka_sasl_password.get_secret_value() == "from-the-file"
    assert settings.kafka_admin_password is not None
    assert settings.kafka_admin_password.get_secret_value() == "from-the-file"
    assert "from-the-file" not in repr(settings)


def test_a_child_gets_the_password_file_not_the_password(monkeypatch, tmp_path) -> None:
    secret = tmp_path / "worker.password"
    secret.write_text("from-the-file\n")
    original = Settings(kafka_sasl_username="ioc-worker", kafka_sasl_password_file=secret)

    env = settings_env(original)

    assert env["IOC_KAFKA_SASL_PASSWORD_FILE"] == str(secret)
    assert "IOC_KAFKA_SASL_PASSWORD" not in env
    assert "from-the-file" not in "".join(env.values())
    for key in list(__import__("os").environ):
        if key.startswith("IOC_"):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert Settings() == original


def test_a_password_and_its_file_together_are_refused(monkeypatch, tmp_path) -> None:
    secret = tmp_path / "p"
    secret.write_text("one\n")
    monkeypatch.setenv("IOC_KAFKA_SASL_PASSWORD", "s3cr3t-two")
    monkeypatch.setenv("IOC_KAFKA_SASL_PASSWORD_FILE", str(secret))

    with pytest.raises(ConfigurationError) as caught:
        load_settings()

    assert "IOC_KAFKA_SASL_PASSWORD and IOC_KAFKA_SASL_PASSWORD_FILE" in str(caught.value)
    assert "s3cr3t-two" not in str(caught.value)


@pytest.mark.parametrize("content", [None, "", "\n"])
def test_a_missing_or_empty_password_file_is_named(monkeypatch, tmp_path, content) -> None:
    secret = tmp_path / "admin.password"
    if content is not None:
        secret.write_text(content)
    monkeypatch.setenv("IOC_KAFKA_ADMIN_PASSWORD_FILE", str(secret))

    with pytest.raises(ConfigurationError) as caught:
        load_settings()

    assert "IOC_KAFKA_ADMIN_PASSWORD_FILE" in str(caught.value)
    assert str(secret) in str(caught.value)
    assert caught.value.exit_code == 2
