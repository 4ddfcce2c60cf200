"""Security on a real broker: SASL/SCRAM-SHA-512 logins and StandardAuthorizer ACLs.

This module runs its own secured broker (free ports, a temporary directory, a topic prefix of
its own), started and provisioned through the ``ioc`` command as an operator would. A source
may write its own feed topic and nothing else: it cannot write another feed, and it cannot
read any topic, not even its own feed (the broker's acknowledgement tells it what arrived).
The worker runs with the least rights of :func:`ioc.security.acl_plan`, and must still do all
its work; the broker's audit log must show no denial for it.
"""

from __future__ import annotations

import os
import secrets
import stat
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import (
    ACL,
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    KafkaAdminClient,
    ResourcePattern,
    ResourcePatternFilter,
    ResourceType,
)
from kafka.errors import (
    GroupAuthorizationFailedError,
    TopicAuthorizationFailedError,
)

from ioc.errors import ProducerError
from ioc.local.kafka import DEPLOY_DIR, KafkaDistribution, LocalKafka, find_java
from ioc.local.process import free_port, terminate, wait_until
from ioc.local.worker import WorkerProcess
from ioc.security import (
    _from_acl,
    acl_plan,
    admin_settings,
    password_file,
    source_user,
    worker_user,
)
from ioc.settings import PROJECT_ROOT, Settings
from streams.catalogue import default_catalogue
from streams.deadletter import DeadLetter
from streams.kafka_config import client_config
from streams.producer import IndicatorProducer
from streams.reader import read_topic
from streams.topics import Topics
from tests.support import indicator_event, run_ioc, sample, scrape, wait_for

pytestmark = pytest.mark.integration

#: The admin's password for this run, known to the test so it can look for it in every output.
ADMIN_PASSWORD = "Adm1n-" + secrets.token_urlsafe(18).replace("-", "x").replace("_", "y")
KEY = b"online_application_rate|son-la"


@dataclass
class SecuredBroker:
    """The module's secured broker, and settings for each of its users."""

    values: dict[str, Any]
    home: Path
    #: Every ``ioc`` command run against it: (arguments, stdout + stderr).
    outputs: list[tuple[str, str]] = field(default_factory=list)

    @property
    def settings(self) -> Settings:
        """No client identity: the base of the others (and of `ioc kafka start`)."""
        return Settings(**self.values)

    @property
    def prefix(self) -> str:
        return str(self.values["topic_prefix"])

    @property
    def topics(self) -> Topics:
        return Topics(self.prefix)

    @property
    def broker_log(self) -> Path:
        return LocalKafka(self.settings).log_file

    def login(self, user: str, **overrides: Any) -> Settings:
        """Settings of ``user``, its password read from the file provisioning wrote."""
        base = self.settings
        return Settings(
            **(
                self.values
                | {
                    "kafka_sasl_username": user,
                    "kafka_sasl_password_file": password_file(base, user),
                }
                | overrides
            )
        )

    def source(self, code: str) -> Settings:
        return self.login(source_user(self.prefix, code))

    def admin(self) -> Settings:
        return admin_settings(self.settings)

    def run(self, settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
        result = run_ioc(settings, *args)
        self.outputs.append((" ".join(args), result.stdout + result.stderr))
        return result

    def passwords(self) -> dict[str, str]:
        """Every secret of this broker: the admin's and each provisioned user's."""
        found = {"admin": ADMIN_PASSWORD}
        for path in self.settings.credentials_dir.glob("*.password"):
            found[path.name] = path.read_text().strip()
        return found


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredBroker]:
    """A secured broker of this module's own, started and provisioned with the CLI."""
    home = tmp_path_factory.mktemp("secured")
    admin_file = home / "kafka-admin.password"
    admin_file.write_text(ADMIN_PASSWORD + "\n")
    admin_file.chmod(0o600)
    port = free_port()
    broker = SecuredBroker(
        values={
            "kafka_bootstrap": f"127.0.0.1:{port}",
            "kafka_port": port,
            "kafka_controller_port": free_port(),
            "kafka_data_dir": home / "kafka",
            "kafka_security_protocol": "SASL_PLAINTEXT",
            "kafka_admin_password_file": admin_file,
            "credentials_dir": home / "credentials",
            "topic_prefix": f"s{uuid.uuid4().hex[:8]}.",
            "partitions": 2,
            "worker_data_dir": home / "worker",
        },
        home=home,
    )
    started = broker.run(broker.settings, "kafka", "start")
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        provisioned = broker.run(broker.settings, "sources", "provision")
        assert provisioned.returncode == 0, provisioned.stdout + provisioned.stderr
        yield broker
    finally:
        LocalKafka(broker.settings).stop()


def grants_on_broker(broker: SecuredBroker) -> set[Any]:
    """The ACLs of the provisioned users, as :class:`ioc.security.Grant`."""
    admin = KafkaAdminClient(**client_config(broker.admin(), "test-acls"))
    try:
        acls, _ = admin.describe_acls(
            ACLFilter(
                principal=None,
                host=None,
                operation=ACLOperation.ANY,
                permission_type=ACLPermissionType.ANY,
                resource_pattern=ResourcePatternFilter(
                    ResourceType.ANY, None, ACLResourcePatternType.ANY
                ),
            )
        )
    finally:
        admin.close()
    return {_from_acl(acl) for acl in acls if acl.principal.startswith(f"User:{broker.prefix}")}


def audit(broker: SecuredBroker, principal: str) -> list[str]:
    """The broker's audit lines denying ``principal`` something."""
    text = broker.broker_log.read_text(errors="replace")
    return [line for line in text.splitlines() if f"Principal = User:{principal} is Denied" in line]


# --- provisioning ----------------------------------------------------------------------------
def test_provision_creates_a_user_per_source_with_private_password_files(
    secured: SecuredBroker,
) -> None:
    first = secured.outputs[1][1]
    assert "Kafka users: 42 new, 0 existed (41 sources and the worker)" in first
    plan = acl_plan(secured.prefix, "ioc-monitor", _sources())
    assert f"ACLs: {len(plan)} planned, {len(plan)} added, 0 removed" in first

    credentials = secured.settings.credentials_dir
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o700
    users = [source_user(secured.prefix, s) for s in _sources()] + [worker_user(secured.prefix)]
    for user in users:
        path = credentials / f"{user}.password"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert grants_on_broker(secured) == set(plan)
    admin = KafkaAdminClient(**client_config(secured.admin(), "test-users"))
    try:
        described = admin.describe_user_scram_credentials(users)
    finally:
        admin.close()
    assert {u for u, info in described.items() if info["error"] is None} == set(users)


def test_provision_again_keeps_passwords_and_removes_a_stray_acl(secured: SecuredBroker) -> None:
    ict = source_user(secured.prefix, "ict")
    before = {path.name: path.read_text() for path in secured.settings.credentials_dir.iterdir()}
    stray = ACL(
        principal=f"User:{ict}",
        host="*",
        operation=ACLOperation.READ,
        permission_type=ACLPermissionType.ALLOW,
        resource_pattern=ResourcePattern(ResourceType.TOPIC, secured.topics.feed("tax")),
    )
    admin = KafkaAdminClient(**client_config(secured.admin(), "test-stray"))
    try:
        assert not admin.create_acls([stray])["failed"]
    finally:
        admin.close()

    again = secured.run(secured.settings, "sources", "provision")

    assert again.returncode == 0, again.stderr
    assert "Topics: 0 created" in again.stdout
    assert "Kafka users: 0 new, 42 existed" in again.stdout
    assert "0 added, 1 removed" in again.stdout
    after = {path.name: path.read_text() for path in secured.settings.credentials_dir.iterdir()}
    assert after == before
    assert grants_on_broker(secured) == set(acl_plan(secured.prefix, "ioc-monitor", _sources()))
    with IndicatorProducer(secured.source("ict")) as producer:  # the password still works
        assert producer.send(_event("ict")).topic == secured.topics.feed("ict")


# --- what a source may do --------------------------------------------------------------------
def test_a_source_writes_its_own_feed(secured: SecuredBroker) -> None:
    event = _event("ict", value=55.5)

    with IndicatorProducer(secured.source("ict")) as producer:
        delivery = producer.send(event)

    assert delivery.topic == secured.topics.feed("ict")
    stored = read_topic(secured.admin(), secured.topics.feed("ict"))
    assert event.to_json() in stored


def test_a_source_writing_another_sources_feed_is_denied_by_the_broker(
    secured: SecuredBroker,
) -> None:
    ict = source_user(secured.prefix, "ict")
    tax_feed = secured.topics.feed("tax")
    event = _event("tax")  # tax's figure, sent with ict's login: goes to tax's feed

    with IndicatorProducer(secured.source("ict")) as producer, pytest.raises(ProducerError) as err:
        producer.send(event)

    cause = err.value.__cause__
    assert isinstance(cause, TopicAuthorizationFailedError)
    assert tax_feed in str(cause)
    assert f"Kafka denied user {ict}" in str(err.value)
    assert not err.value.retriable
    wait_for(
        lambda: [line for line in audit(secured, ict) if f"Topic:LITERAL:{tax_feed}" in line],
        10,
        "the broker's audit line for the denial",
    )
    assert event.to_json() not in read_topic(secured.admin(), tax_feed)


def test_the_worker_cannot_write_a_feed_either(secured: SecuredBroker) -> None:
    """A produce request itself (not only its metadata lookup) is refused for WRITE."""
    user = worker_user(secured.prefix)
    feed = secured.topics.feed("ict")

    with IndicatorProducer(secured.login(user)) as producer, pytest.raises(ProducerError) as err:
        producer.send_raw(feed, _event("ict").to_json(), key=KEY)

    assert isinstance(err.value.__cause__, TopicAuthorizationFailedError)
    wait_for(
        lambda: [
            line
            for line in audit(secured, user)
            if f"operation = WRITE from host = 127.0.0.1 on resource = Topic:LITERAL:{feed}" in line
            and "for request = Produce" in line
        ],
        10,
        "the broker's audit line for the denied produce",
    )


def read_refusal(settings: Settings, topic: str) -> Exception | None:
    """The error reading partition 0 of ``topic`` ends in, or None if records can be read."""
    consumer = KafkaConsumer(
        **client_config(settings, "test-reader"), group_id=None, auto_offset_reset="earliest"
    )
    partition = TopicPartition(topic, 0)
    try:
        consumer.assign([partition])
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                consumer.beginning_offsets([partition])  # ListOffsets: needs DESCRIBE
                if consumer.poll(timeout_ms=1000):  # Fetch: needs READ
                    return None
            except TopicAuthorizationFailedError as exc:
                return exc
        return None
    finally:
        consumer.close()


@pytest.mark.parametrize("topic", ["feed.ict", "feed.tax", "indicators", "deadletter"])
def test_a_source_cannot_read_any_topic_not_even_its_own_feed(
    secured: SecuredBroker, topic: str
) -> None:
    name = secured.topics.feed("ict") if topic == "feed.ict" else secured.topics.feed("tax")
    if not topic.startswith("feed."):
        name = getattr(secured.topics, topic)
    refusal = read_refusal(secured.source("ict"), name)

    assert isinstance(refusal, TopicAuthorizationFailedError), refusal
    assert name in str(refusal)


def test_a_source_cannot_join_the_workers_consumer_group(secured: SecuredBroker) -> None:
    consumer = KafkaConsumer(
        secured.topics.feed("ict"),
        **client_config(secured.source("ict"), "test-group"),
        group_id=f"{secured.prefix}ioc-monitor",
    )
    try:
        with pytest.raises(GroupAuthorizationFailedError):
            consumer.poll(timeout_ms=10_000)
    finally:
        consumer.close()


# --- who may log in at all -------------------------------------------------------------------
@pytest.mark.parametrize("who", ["no login (PLAINTEXT)", "wrong password", "unknown user"])
def test_an_unauthenticated_client_is_refused(secured: SecuredBroker, who: str) -> None:
    ict = source_user(secured.prefix, "ict")
    login = {
        "no login (PLAINTEXT)": {"kafka_security_protocol": "PLAINTEXT"},
        "wrong password": {"kafka_sasl_username": ict, "kafka_sasl_password": "not-it"},
        "unknown user": {"kafka_sasl_username": "nobody", "kafka_sasl_password": "x"},
    }[who]
    settings = Settings(**(secured.values | login | {"producer_timeout": 3}))
    log = secured.broker_log
    # What the broker logs when it refuses (the client only sees the connection close).
    refusal = (
        "Unexpected Kafka request of type METADATA during SASL handshake"
        if who.startswith("no login")
        else "Failed authentication with /127.0.0.1 (channelId="
    )
    seen = log.read_text(errors="replace").count(refusal)

    # An agency's `ioc push` (in a child: a producer that never connected leaks its sockets).
    result = secured.run(settings, *_push_args("ict", "2022"))

    assert result.returncode == 5, result.stdout + result.stderr
    assert "Unable to bootstrap" in result.stderr  # it never got past the login
    wait_for(
        lambda: log.read_text(errors="replace").count(refusal) > seen,
        10,
        f"the broker to log {refusal!r}",
    )
    if not who.startswith("no login"):
        reason = "due to invalid credentials with SASL mechanism SCRAM-SHA-512"
        failed = [line for line in log.read_text().splitlines() if refusal in line]
        assert all(reason in line for line in failed), failed


# --- the worker with its least rights --------------------------------------------------------
def test_the_worker_with_its_own_user_validates_and_dead_letters_a_spoofed_source(
    secured: SecuredBroker, tmp_path: Path
) -> None:
    user = worker_user(secured.prefix)
    settings = secured.login(
        user, worker_port=free_port(), worker_data_dir=tmp_path / "worker", partitions=2
    )
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    denied_before = len(audit(secured, user))  # e.g. the test of a worker writing a feed
    try:
        worker.start(timeout=90)
        ict_feed = secured.topics.feed("ict")
        good = _event("ict", value=71.25, period="2025")
        spoofed = _event("tax").to_json()  # tax's figure, written on ict's feed
        with IndicatorProducer(secured.source("ict")) as producer:
            producer.send(good)
            producer.send_raw(ict_feed, spoofed, key=b"tax_revenue|son-la")

        def value() -> bool:
            found = sample(
                scrape(settings.worker_url),
                "ioc_indicator_value",
                source="ict",
                indicator="online_application_rate",
                area="son-la",
                level="province",
            )
            return found == 71.25

        wait_for(value, 60, "the good event at /metrics")

        def letter() -> DeadLetter | None:
            letters = [
                DeadLetter.model_validate_json(raw)
                for raw in read_topic(secured.admin(), secured.topics.deadletter)
            ]
            return next((x for x in letters if x.original == spoofed), None)

        found = wait_for(letter, 60, "the spoofed event in the dead-letter topic")
        assert (found.reason, found.source, found.topic) == ("source_mismatch", "ict", ict_feed)
        assert worker.alive()
    finally:
        worker.stop()
    log = (tmp_path / "worker.log").read_text(errors="replace")
    assert f"Authenticated as {user} via SCRAM-SHA-512" in log
    assert audit(secured, user)[denied_before:] == [], "the worker was denied what it needs"
    password = password_file(secured.settings, user).read_text().strip()
    assert password not in log


# --- secrets ---------------------------------------------------------------------------------
def test_secrets_are_never_printed_or_logged(secured: SecuredBroker) -> None:
    ict = secured.source("ict")
    pushed = secured.run(ict, *_push_args("ict", "2024"))
    assert pushed.returncode == 0, pushed.stderr
    denied = secured.run(ict, *_push_args("tax", "2024-09", indicator="tax_revenue"))
    assert denied.returncode == 5
    assert "Kafka denied user" in denied.stderr
    assert secured.run(secured.settings, "kafka", "status").returncode == 0
    assert secured.run(secured.settings, "sources", "provision").returncode == 0

    secrets_ = secured.passwords()
    assert len(secrets_) == 43  # the admin, 41 sources, the worker
    texts = {f"`ioc {args}`": output for args, output in secured.outputs}
    texts["broker.log"] = secured.broker_log.read_text(errors="replace")
    for path in secured.home.rglob("*.log"):
        texts[str(path)] = path.read_text(errors="replace")
    assert len(texts) >= 7
    for where, text in texts.items():
        for whose, secret in secrets_.items():
            assert secret not in text, f"the password of {whose} is in {where}"
    # The only file holding the admin's password in clear, for the broker's own login:
    properties = LocalKafka(secured.settings).properties_file
    assert stat.S_IMODE(properties.stat().st_mode) == 0o600


# --- docker-compose.secured.yml's broker entry point -----------------------------------------
def test_the_compose_entrypoint_runs_a_secured_broker(tmp_path: Path) -> None:
    """deploy/kafka/secured-entrypoint.sh with the compose files' own environment, on the
    same Kafka release as the image (bin/ scripts stand in for the image's), ports moved."""
    compose = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
    secured = yaml.safe_load((PROJECT_ROOT / "docker-compose.secured.yml").read_text())
    env = {
        key: str(value)
        for key, value in (
            compose["services"]["kafka"]["environment"]
            | secured["services"]["kafka"]["environment"]
        ).items()
    }
    internal, host, controller = free_port(), free_port(), free_port()
    moves = {":19092": f":{internal}", ":9092": f":{host}", ":9094": f":{controller}",
             "//:": "//127.0.0.1:", "kafka:": "127.0.0.1:", "localhost:": "127.0.0.1:"}  # fmt: skip
    env = {key: _replace_all(value, moves) for key, value in env.items()}
    env["KAFKA_LOG_DIRS"] = str(tmp_path / "data")
    shared = tmp_path / "shared"
    shared.mkdir()
    for name in ("server.properties", "secured.properties"):
        (shared / name).write_text((DEPLOY_DIR / name).read_text())
    kafka_home = tmp_path / "kafka-home"
    _stand_in_scripts(kafka_home)
    password = "Compose-" + secrets.token_hex(12)
    secret = tmp_path / "kafka_admin_password"
    secret.write_text(password + "\n")
    run_dir = tmp_path / "run"
    env |= {
        "KAFKA_HOME": str(kafka_home),
        "IOC_SHARED_CONFIG": str(shared),
        "IOC_KAFKA_ADMIN_PASSWORD_FILE": str(secret),
        "IOC_RUN_DIR": str(run_dir),
    }
    base = {k: v for k, v in os.environ.items() if not k.startswith(("IOC_", "KAFKA_"))}
    log = tmp_path / "broker.log"
    entrypoint = secured["services"]["kafka"]["entrypoint"]
    assert entrypoint == ["/bin/bash", "/opt/ioc/secured-entrypoint.sh"]
    with log.open("wb") as out:
        broker = subprocess.Popen(
            ["/bin/bash", str(DEPLOY_DIR / "secured-entrypoint.sh")],
            env=base | env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        assert wait_until(
            lambda: b"Kafka Server started" in log.read_bytes(),
            90,
            abort=lambda: broker.poll() is not None,
        ), log.read_text(errors="replace")[-3000:]
        settings = Settings(
            kafka_bootstrap=f"127.0.0.1:{host}",
            kafka_security_protocol="SASL_PLAINTEXT",
            kafka_sasl_username="admin",
            kafka_sasl_password=password,
        )
        admin = KafkaAdminClient(**client_config(settings, "test-compose"))
        try:
            assert isinstance(admin.list_topics(), list)
        finally:
            admin.close()
        anonymous = Settings(kafka_bootstrap=f"127.0.0.1:{host}", producer_timeout=3)
        refused = run_ioc(anonymous, *_push_args("ict", "2022"))
        assert refused.returncode == 5
        assert "Unable to bootstrap" in refused.stderr
        client_file = run_dir / "admin-client.properties"
        assert stat.S_IMODE(client_file.stat().st_mode) == 0o600
        assert stat.S_IMODE((run_dir / "server.properties").stat().st_mode) == 0o600
    finally:
        if broker.poll() is None:
            terminate(broker.pid, 30)
        broker.wait()
    assert password not in log.read_text(errors="replace")


def _stand_in_scripts(kafka_home: Path) -> None:
    """``bin/kafka-storage.sh`` and ``bin/kafka-server-start.sh`` on the cached jars."""
    distribution = KafkaDistribution(Settings().cache_dir)
    if not distribution.is_ready():
        pytest.fail("the Kafka jars are not cached: run make jars (make test does)")
    java = find_java()
    logging_config = f"-Dlog4j2.configurationFile={DEPLOY_DIR / 'log4j2.properties'}"
    bin_dir = kafka_home / "bin"
    bin_dir.mkdir(parents=True)
    for script, main in [
        ("kafka-storage.sh", "kafka.tools.StorageTool"),
        ("kafka-server-start.sh", "kafka.Kafka"),
    ]:
        path = bin_dir / script
        path.write_text(
            "#!/bin/sh\n"
            f'exec "{java}" -Xmx512m {logging_config} -cp "{distribution.classpath}" '
            f'{main} "$@"\n'
        )
        path.chmod(0o755)


# --- helpers ---------------------------------------------------------------------------------
def _replace_all(text: str, replacements: dict[str, str]) -> str:
    for old, new in replacements.items():
        text = text.replace(old, new)
    return text


def _sources() -> list[str]:
    return sorted(default_catalogue().sources)


def _event(source: str, value: float = 60.0, period: str | None = None) -> Any:
    indicator, default = {"ict": ("online_application_rate", "2023")}.get(
        source, ("tax_revenue", "2024-09")
    )
    return indicator_event(
        datetime.now(UTC) - timedelta(minutes=1), source, indicator, period or default, value
    )


def _push_args(source: str, period: str, indicator: str = "online_application_rate") -> list[str]:
    return [
        "push", "--source", source, "--indicator", indicator, "--area", "son-la",
        "--period", period, "--value", "60",
    ]  # fmt: skip
