"""The one settings object of the IOC monitor, read from ``IOC_*`` environment variables.

Every process (the CLI, the local runner, the worker, the tests) builds its configuration
here, so a port or a topic prefix means the same thing everywhere. Defaults match
``docker-compose.yml`` and ``deploy/``; a test pins that agreement.
"""

from __future__ import annotations

import os
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    AwareDatetime,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from ioc.errors import ConfigurationError

#: Apache Kafka release assembled from Maven Central and run by ``ioc kafka start``.
#: ``docker-compose.yml`` runs the official image of the same version (a test checks it).
KAFKA_VERSION = "4.3.1"
#: The local broker's JVM compilers: the quick one alone, or the JVM's default (C1 then C2).
KafkaJit = Literal["c1", "tiered"]

#: Repository root, for files under version control such as ``deploy/``.
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _xdg(var: str, fallback: str, *parts: str) -> Path:
    return Path(os.environ.get(var) or Path.home() / fallback).joinpath("ioc-monitor", *parts)


#: Secret settings that may instead be read from a file: secret field -> file field.
PASSWORD_FILES = {
    "kafka_sasl_password": "kafka_sasl_password_file",
    "kafka_admin_password": "kafka_admin_password_file",
}


def read_secret_file(path: Path, variable: str) -> str:
    """The secret held in ``path``: its first line. Errors never quote the file's content."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        msg = f"{variable}: không đọc được / cannot read {path} ({reason})"
        raise ValueError(msg) from None
    secret = text.splitlines()[0] if text.strip() else ""
    if not secret:
        msg = f"{variable}: tệp rỗng / the file is empty: {path}"
        raise ValueError(msg)
    return secret


class Settings(BaseSettings):
    """Configuration of every IOC process. Frozen: build a new one to change a value."""

    model_config = SettingsConfigDict(env_prefix="IOC_", frozen=True, extra="ignore")

    # --- Kafka ---------------------------------------------------------------------------
    kafka_bootstrap: str | None = Field(
        default=None,
        description="Bootstrap servers of an existing broker; unset means the local broker.",
    )
    kafka_host: str = Field(default="127.0.0.1", description="Address the local broker binds.")
    kafka_port: int = Field(default=9092, ge=1, le=65535)
    kafka_controller_port: int = Field(default=9094, ge=1, le=65535)
    kafka_data_dir: Path = Field(
        default_factory=lambda: _xdg("XDG_STATE_HOME", ".local/state", "kafka"),
        description="The local broker's directory: properties, pid file, log and data.",
    )
    kafka_heap: str = Field(default="512m", pattern=r"^[0-9]+[kmg]$")
    kafka_jit: KafkaJit = Field(
        default="c1",
        description=(
            "The local broker's JIT: c1, the JVM's quick compiler only; tiered, the JVM's "
            "default (C1, then C2 for hot code). A broker minutes old spent 0.4 of a core "
            "in C2 at 2,000 events/s (docs/benchmark.md)."
        ),
    )
    kafka_start_timeout: float = Field(default=90.0, gt=0)
    cache_dir: Path = Field(
        default_factory=lambda: _xdg("XDG_CACHE_HOME", ".cache"),
        description="Where the Kafka jars from Maven Central are kept between runs.",
    )
    producer_timeout: float = Field(
        default=30.0, gt=0, description="Seconds a send may wait for the broker's acknowledgement."
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SASL_PLAINTEXT"] = Field(
        default="PLAINTEXT",
        description="SASL_PLAINTEXT: SCRAM-SHA-512 logins and ACLs (docs/security.md).",
    )
    kafka_sasl_username: str | None = Field(
        default=None, description="This process's Kafka user (an agency, the worker)."
    )
    kafka_sasl_password: SecretStr | None = None
    kafka_sasl_password_file: Path | None = Field(
        default=None,
        description="A file holding the password, instead of IOC_KAFKA_SASL_PASSWORD.",
    )
    kafka_admin_username: str = Field(
        default="admin",
        pattern=r"^[A-Za-z0-9._-]+$",
        description="The broker's super user: formats storage, runs `ioc sources provision`.",
    )
    kafka_admin_password: SecretStr | None = None
    kafka_admin_password_file: Path | None = Field(
        default=None,
        description="A file holding the admin password; unset: "
        "<IOC_CREDENTIALS_DIR>/<IOC_KAFKA_ADMIN_USERNAME>.password.",
    )
    credentials_dir: Path = Field(
        default_factory=lambda: _xdg("XDG_STATE_HOME", ".local/state", "credentials"),
        description="Where generated passwords are written, one file (mode 0600) per user.",
    )

    # --- Topics --------------------------------------------------------------------------
    topic_prefix: str = Field(
        default="",
        pattern=r"^[A-Za-z0-9._-]*$",
        description="Prepended to every topic name, so test runs and tenants never meet.",
    )
    partitions: int = Field(default=2, ge=1, le=256)
    retention_hours: int = Field(default=24 * 30, ge=1)

    # --- Worker --------------------------------------------------------------------------
    app_id: str = Field(default="ioc-monitor", pattern=r"^[A-Za-z0-9._-]+$")
    worker_host: str = "127.0.0.1"
    worker_port: int = Field(default=6066, ge=1, le=65535)
    worker_data_dir: Path = Field(
        default_factory=lambda: _xdg("XDG_STATE_HOME", ".local/state", "worker")
    )
    session_timeout: float = Field(
        default=10.0,
        ge=6,
        le=300,
        description="Seconds before a crashed worker's partitions move to another worker.",
    )
    commit_seconds: float = Field(
        default=2.8,
        gt=0,
        le=600,
        description="How often the worker commits the offsets it processed (Faust's 2.8 s by "
        "default); what a crashed worker had not committed is read again by the next.",
    )
    worker_stop_seconds: float = Field(
        default=20.0,
        ge=1,
        le=600,
        description="Seconds the worker may take to stop on SIGINT or SIGTERM before it exits "
        "anyway (what it had not committed is read again at its next start).",
    )
    target_margin: float = Field(
        default=0.1, ge=0, le=1, description="Within this fraction of a target: at risk."
    )
    tick_seconds: float = Field(
        default=1.0, gt=0, description="How often reporting deadlines are checked."
    )
    reporting_since: AwareDatetime | None = Field(
        default=None,
        description="Reports are expected for periods due from this time on (the go-live); "
        "unset: from when the worker first watches each source.",
    )
    alert_for_seconds: float = Field(
        default=0.0, ge=0, description="How long a source must stay overdue before it pages."
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    # --- Clock (ioc/clock.py): simulated time for demos and tests -------------------------
    clock_start: AwareDatetime | None = Field(
        default=None, description="Simulated time at IOC_CLOCK_EPOCH; unset means real time."
    )
    clock_epoch: float | None = Field(
        default=None, description="Wall-clock Unix time at which simulated time is clock_start."
    )
    clock_speed: float = Field(default=1.0, gt=0, le=1_000_000)

    # --- Other services (used by docker-compose and the demo) ----------------------------
    prometheus_port: int = Field(default=9090, ge=1, le=65535)
    alertmanager_port: int = Field(default=9093, ge=1, le=65535)
    grafana_port: int = Field(default=3000, ge=1, le=65535)
    grafana_url: str = Field(
        default="http://127.0.0.1:3000", description="Grafana for `ioc dashboards push`."
    )
    grafana_token: SecretStr | None = Field(
        default=None, description="A Grafana service-account token (never printed)."
    )

    @field_validator("kafka_bootstrap")
    @classmethod
    def _bootstrap_has_port(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        for server in value.split(","):
            host, sep, port = server.strip().rpartition(":")
            if not sep or not host or not port.isdigit():
                msg = f"expected host:port[,host:port...], got {value!r}"
                raise ValueError(msg)
        return value

    @model_validator(mode="before")
    @classmethod
    def _passwords_from_files(cls, data: Any) -> Any:
        """Read ``*_password_file`` into its secret; setting both is ambiguous, so refused."""
        if not isinstance(data, dict):
            return data
        for secret, file in PASSWORD_FILES.items():
            path = data.get(file)
            if path is None or path == "":
                data.pop(file, None)
                continue
            variable, file_variable = f"IOC_{secret.upper()}", f"IOC_{file.upper()}"
            if data.get(secret) is not None:
                msg = (
                    f"Chỉ đặt một trong {variable} và {file_variable} / "
                    f"Set only one of {variable} and {file_variable}"
                )
                raise ValueError(msg)
            data[secret] = read_secret_file(Path(path), file_variable)
        return data

    @model_validator(mode="after")
    def _shared_clock(self) -> Settings:
        if self.clock_start is not None and self.clock_speed != 1 and self.clock_epoch is None:
            msg = (
                "IOC_CLOCK_SPEED khác 1 cần cả IOC_CLOCK_EPOCH (thời điểm Unix ứng với "
                "IOC_CLOCK_START), để mọi tiến trình dùng chung một đồng hồ / "
                "IOC_CLOCK_SPEED != 1 needs IOC_CLOCK_EPOCH too (the wall-clock Unix time at "
                "which simulated time is IOC_CLOCK_START): without it each process would start "
                "its own clock, and at that speed seconds between starts become hours"
            )
            raise ValueError(msg)
        return self

    @cached_property
    def bootstrap_servers(self) -> str:
        """Where clients connect: ``IOC_KAFKA_BOOTSTRAP``, else the local broker."""
        return self.kafka_bootstrap or f"{self.kafka_host}:{self.kafka_port}"

    @property
    def worker_url(self) -> str:
        """Base URL of the worker's web server (``/metrics`` and the wall)."""
        return f"http://{self.worker_host}:{self.worker_port}"


def load_settings(**overrides: object) -> Settings:
    """Build the settings from the environment, turning validation errors into one clear message.

    The message names each offending environment variable, what it accepts and what it got.
    """
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"])
            if not field:  # a check across several variables; its message names them
                problems.append(f"  {error['msg'].removeprefix('Value error, ')}")
                continue
            variable = f"IOC_{field.upper()}"
            problems.append(
                f"  {variable}: {error['msg']} (nhận được / received: {error.get('input')!r})"
            )
        raise ConfigurationError(
            "Cấu hình không hợp lệ / Invalid configuration:\n" + "\n".join(problems)
        ) from None


def settings_env(settings: Settings) -> dict[str, str]:
    """The ``IOC_*`` environment that rebuilds ``settings`` in a child process.

    A secret read from a file is passed as the file's path, not as its value.
    """
    env: dict[str, str] = {}
    values = settings.model_dump()
    for name, value in values.items():
        if value is None:
            continue
        if name in PASSWORD_FILES and values[PASSWORD_FILES[name]] is not None:
            continue  # the child reads the file itself; the secret stays out of its environment
        if isinstance(value, SecretStr):
            text = value.get_secret_value()
        elif isinstance(value, datetime):
            text = value.isoformat()
        else:
            text = str(value)
        env[f"IOC_{name.upper()}"] = text
    return env
