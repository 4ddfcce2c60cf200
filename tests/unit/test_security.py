"""The ACL plan, the password files and the secured broker's properties, without a broker."""

from __future__ import annotations

import base64
import hashlib
import re
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from ioc.demo import unsecured_notice
from ioc.errors import ConfigurationError, CorruptDataDirError
from ioc.local.kafka import LocalKafka
from ioc.security import (
    SCRAM_ITERATIONS,
    Grant,
    _from_acl,
    _to_acl,
    acl_plan,
    admin_password,
    check_admin_password,
    principal,
    read_or_create_secret,
    scram_argument,
    source_user,
    worker_user,
)
from ioc.settings import Settings
from streams.catalogue import default_catalogue

SOURCES = sorted(default_catalogue().sources)


def test_two_sources_get_exactly_these_acls() -> None:
    plan = acl_plan("p.", "ioc-monitor", ["tax", "ict"])

    worker = "User:p.ioc-worker"
    expected = [
        Grant("User:p.ioc-source-ict", "TOPIC", "p.ioc.feed.ict", "LITERAL", "WRITE"),
        Grant("User:p.ioc-source-tax", "TOPIC", "p.ioc.feed.tax", "LITERAL", "WRITE"),
        Grant(worker, "GROUP", "p.ioc-monitor", "LITERAL", "READ"),
        Grant(worker, "TOPIC", "p.ioc-monitor-", "PREFIXED", "CREATE"),
        Grant(worker, "TOPIC", "p.ioc-monitor-", "PREFIXED", "READ"),
        Grant(worker, "TOPIC", "p.ioc-monitor-", "PREFIXED", "WRITE"),
        Grant(worker, "TOPIC", "p.ioc.alerts", "LITERAL", "WRITE"),
        Grant(worker, "TOPIC", "p.ioc.deadletter", "LITERAL", "WRITE"),
        Grant(worker, "TOPIC", "p.ioc.feed.ict", "LITERAL", "READ"),
        Grant(worker, "TOPIC", "p.ioc.feed.tax", "LITERAL", "READ"),
        Grant(worker, "TOPIC", "p.ioc.indicators", "LITERAL", "WRITE"),
        Grant(worker, "TOPIC", "p.ioc.internal.receipts", "LITERAL", "READ"),
        Grant(worker, "TOPIC", "p.ioc.internal.receipts", "LITERAL", "WRITE"),
        Grant(worker, "TOPIC", "p.ioc.internal.rollups", "LITERAL", "READ"),
        Grant(worker, "TOPIC", "p.ioc.internal.rollups", "LITERAL", "WRITE"),
        Grant(worker, "TOPIC", "p.ioc.internal.rules", "LITERAL", "READ"),
        Grant(worker, "TOPIC", "p.ioc.internal.rules", "LITERAL", "WRITE"),
    ]
    assert plan == sorted(expected)


def test_each_of_the_41_sources_may_write_its_own_feed_and_nothing_else() -> None:
    plan = acl_plan("", "ioc-monitor", SOURCES)

    for source in SOURCES:
        grants = [g for g in plan if g.principal == f"User:ioc-source-{source}"]
        assert grants == [
            Grant(grants[0].principal, "TOPIC", f"ioc.feed.{source}", "LITERAL", "WRITE")
        ]
    sources_granted = {g.principal for g in plan} - {principal(worker_user(""))}
    assert len(sources_granted) == 41


def test_the_worker_reads_feeds_but_never_writes_them_and_has_no_cluster_rights() -> None:
    plan = acl_plan("", "ioc-monitor", SOURCES)
    worker = [g for g in plan if g.principal == "User:ioc-worker"]

    feeds = {g.name: g.operation for g in worker if g.name.startswith("ioc.feed.")}
    assert feeds == {f"ioc.feed.{s}": "READ" for s in SOURCES}
    assert not [g for g in worker if g.resource == "CLUSTER"]
    assert not [g for g in worker if g.operation in {"DELETE", "ALTER", "ALTER_CONFIGS"}]
    # Nothing in the whole plan names every topic, and only the worker's own prefix is a prefix.
    assert not [g for g in plan if g.name in {"*", ""}]
    assert {g.name for g in plan if g.pattern == "PREFIXED"} == {"ioc-monitor-"}


def test_the_plan_follows_the_topic_prefix_and_app_id() -> None:
    plan = acl_plan("tenant-a.", "ioc-x", ["ict", "ict"])

    assert all(g.principal.startswith("User:tenant-a.") for g in plan)
    assert all(g.name.startswith("tenant-a.") for g in plan)
    assert Grant("User:tenant-a.ioc-worker", "GROUP", "tenant-a.ioc-x", "LITERAL", "READ") in plan
    assert len(plan) == len(set(plan))  # a source named twice is granted once
    assert source_user("tenant-a.", "ict") == "tenant-a.ioc-source-ict"


def test_a_grant_survives_the_round_trip_through_kafka_python() -> None:
    for grant in acl_plan("p.", "ioc-monitor", ["ict"]):
        assert _from_acl(_to_acl(grant)) == grant


def test_secret_files_are_private_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "credentials" / "ioc-source-ict.password"

    first, created = read_or_create_secret(path)
    again, created_again = read_or_create_secret(path)

    assert created
    assert not created_again
    assert again.get_secret_value() == first.get_secret_value()
    assert len(first.get_secret_value()) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert path.read_text() == first.get_secret_value() + "\n"
    other, _ = read_or_create_secret(tmp_path / "credentials" / "other.password")
    assert other.get_secret_value() != first.get_secret_value()


def test_admin_password_comes_from_settings_then_its_file(tmp_path: Path) -> None:
    explicit = Settings(kafka_admin_password="Explicit-Passw0rd", credentials_dir=tmp_path)
    assert admin_password(explicit).get_secret_value() == "Explicit-Passw0rd"

    generated = Settings(credentials_dir=tmp_path / "c")
    with pytest.raises(ConfigurationError, match="IOC_KAFKA_ADMIN_PASSWORD_FILE"):
        admin_password(generated)
    created = admin_password(generated, create=True)
    assert (tmp_path / "c" / "admin.password").read_text().strip() == created.get_secret_value()
    assert admin_password(generated).get_secret_value() == created.get_secret_value()


@pytest.mark.parametrize(
    "password", ["short", 'has"quote-in-it', "has,comma-in-it", "has space in it", "brackets]]]]]]"]
)
def test_admin_passwords_that_would_break_the_broker_config_are_refused(password: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        check_admin_password(SecretStr(password))
    assert password not in str(caught.value)


def test_the_format_tool_gets_the_salted_credential_not_the_password() -> None:
    argument = scram_argument("admin", SecretStr("Correct-Horse-Battery"))

    assert "Correct-Horse-Battery" not in argument
    match = re.fullmatch(
        r'SCRAM-SHA-512=\[name=admin,iterations=(\d+),salt="([^"]+)",saltedpassword="([^"]+)"\]',
        argument,
    )
    assert match, argument
    iterations, salt, salted = int(match[1]), base64.b64decode(match[2]), base64.b64decode(match[3])
    assert iterations == SCRAM_ITERATIONS
    assert salted == hashlib.pbkdf2_hmac("sha512", b"Correct-Horse-Battery", salt, iterations)


def secured_settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "kafka_port": 19092,
        "kafka_controller_port": 19094,
        "kafka_data_dir": tmp_path / "kafka",
        "credentials_dir": tmp_path / "credentials",
        "kafka_security_protocol": "SASL_PLAINTEXT",
        "kafka_admin_username": "root-user",
    }
    return Settings(**(values | overrides))  # type: ignore[arg-type]


def test_the_secured_local_broker_has_a_sasl_listener_acls_and_a_private_file(
    tmp_path: Path,
) -> None:
    kafka = LocalKafka(secured_settings(tmp_path))

    kafka._prepare_home()

    text = kafka.properties_file.read_text()
    props = dict(line.split("=", 1) for line in text.splitlines() if not line.startswith("#"))
    assert stat.S_IMODE(kafka.properties_file.stat().st_mode) == 0o600
    assert props["listeners"] == "SASL_PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19094"
    assert props["advertised.listeners"] == "SASL_PLAINTEXT://127.0.0.1:19092"
    assert props["inter.broker.listener.name"] == "SASL_PLAINTEXT"
    assert props["listener.security.protocol.map"].split(",").count("CONTROLLER:PLAINTEXT") == 1
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert props["authorizer.class.name"] == (
        "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    )
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["super.users"] == "User:root-user;User:ANONYMOUS"
    password = (tmp_path / "credentials" / "root-user.password").read_text().strip()
    assert props["listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config"] == (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="root-user" password="{password}";'
    )


def test_the_unsecured_local_broker_is_unchanged(tmp_path: Path) -> None:
    kafka = LocalKafka(secured_settings(tmp_path, kafka_security_protocol="PLAINTEXT"))

    kafka._prepare_home()

    text = kafka.properties_file.read_text()
    assert "listeners=PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19094" in text
    assert "authorizer" not in text
    assert "jaas" not in text
    assert not (tmp_path / "credentials").exists()


def test_storage_formatted_unsecured_is_refused_by_the_secured_broker(tmp_path: Path) -> None:
    kafka = LocalKafka(secured_settings(tmp_path))
    kafka.log_dirs.mkdir(parents=True)
    (kafka.log_dirs / "meta.properties").write_text("cluster.id=abc\nnode.id=1\nversion=1\n")

    with pytest.raises(CorruptDataDirError) as caught:
        kafka._check_storage()

    assert "formatted unsecured" in str(caught.value)
    assert "ioc kafka reset" in str(caught.value)


def test_the_demo_says_it_is_unsecured_and_refuses_to_be_otherwise() -> None:
    notice = unsecured_notice(Settings(kafka_port=9092))
    assert notice.startswith("Kafka không bảo mật (chỉ loopback 127.0.0.1:9092")
    assert "Kafka is unsecured (loopback only 127.0.0.1:9092, no logins, no ACLs)" in notice

    with pytest.raises(ConfigurationError, match="IOC_KAFKA_SECURITY_PROTOCOL"):
        unsecured_notice(Settings(kafka_security_protocol="SASL_PLAINTEXT"))
    with pytest.raises(ConfigurationError, match=re.escape("IOC_KAFKA_HOST=0.0.0.0")):
        unsecured_notice(Settings(kafka_host="0.0.0.0"))
    assert unsecured_notice(Settings(kafka_host="localhost"))
