"""Per-agency Kafka users and ACLs on a SASL/SCRAM-SHA-512 broker with ``StandardAuthorizer``.

``ioc sources provision`` (run with the broker's admin credentials) creates every topic, one
SCRAM user per catalogue source with WRITE on its own feed topic only, and one worker user with
the least rights the Faust worker needs (:func:`acl_plan` is the whole list). Generated
passwords go to files of mode 0600 under ``IOC_CREDENTIALS_DIR``, one per user, and are never
printed or logged. Running it again converges: passwords already on file are kept, missing
users and ACLs are added, and ACLs of these users that the plan no longer holds are removed.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import SecretStr

from ioc.errors import ConfigurationError, ProducerError
from ioc.settings import Settings, read_secret_file

#: The one SASL mechanism the broker enables.
MECHANISM = "SCRAM-SHA-512"
#: PBKDF2 rounds of the stored SCRAM credentials (Kafka accepts 4096 to 16384).
SCRAM_ITERATIONS = 8192
#: Suffix of every password file under the credentials directory.
PASSWORD_SUFFIX = ".password"

Resource = Literal["TOPIC", "GROUP", "CLUSTER", "TRANSACTIONAL_ID"]
Pattern = Literal["LITERAL", "PREFIXED"]
Operation = Literal[
    "READ", "WRITE", "CREATE", "DELETE", "ALTER", "DESCRIBE", "DESCRIBE_CONFIGS", "ALTER_CONFIGS"
]


# --- who -------------------------------------------------------------------------------------
def source_user(prefix: str, source: str) -> str:
    """The Kafka user of one source (agency): ``<prefix>ioc-source-<code>``."""
    return f"{prefix}ioc-source-{source}"


def worker_user(prefix: str) -> str:
    """The Kafka user of the Faust worker: ``<prefix>ioc-worker``."""
    return f"{prefix}ioc-worker"


def principal(user: str) -> str:
    """The ACL principal of a SCRAM user."""
    return f"User:{user}"


# --- what: the ACL plan ----------------------------------------------------------------------
@dataclass(frozen=True, order=True)
class Grant:
    """One ALLOW ACL, from any host: ``principal`` may ``operation`` on a resource."""

    principal: str
    resource: Resource
    name: str
    pattern: Pattern
    operation: Operation


def acl_plan(prefix: str, app_id: str, sources: Iterable[str]) -> list[Grant]:
    """Every ACL of the source users and the worker user, sorted; nothing else is allowed.

    * A source may WRITE its own feed topic (which implies DESCRIBE), nothing more: it cannot
      read any topic, not even its own feed; the broker's acknowledgement tells it what
      arrived. Since Kafka 3.0 WRITE on a topic also allows an idempotent producer's id.
    * The worker READs every feed; READs and WRITEs the topics between its agents; only
      WRITEs the dead-letter and alert topics; READs its consumer group; and owns the topics
      Faust creates itself, all named ``<prefix><app_id>-...`` (table changelogs and the
      assignor's leader topic): READ, WRITE and CREATE on that prefix.
    """
    from streams.topics import Topics  # noqa: PLC0415 - streams imports ioc.settings only

    topics = Topics(prefix)
    codes = sorted(set(sources))
    worker = principal(worker_user(prefix))
    group = f"{prefix}{app_id}"
    plan = [Grant(principal(source_user(prefix, s)), "TOPIC", topics.feed(s), "LITERAL", "WRITE")
            for s in codes]  # fmt: skip
    plan += [Grant(worker, "TOPIC", topics.feed(s), "LITERAL", "READ") for s in codes]
    for topic in (topics.rollups, topics.rules, topics.receipts):
        plan += [Grant(worker, "TOPIC", topic, "LITERAL", op) for op in ("READ", "WRITE")]
    plan += [
        Grant(worker, "TOPIC", topic, "LITERAL", "WRITE")
        for topic in (topics.indicators, topics.deadletter, topics.alerts)
    ]
    plan += [
        Grant(worker, "TOPIC", f"{group}-", "PREFIXED", op) for op in ("READ", "WRITE", "CREATE")
    ]
    plan.append(Grant(worker, "GROUP", group, "LITERAL", "READ"))
    return sorted(plan)


# --- secrets ---------------------------------------------------------------------------------
def generate_password() -> str:
    """A fresh random password: 32 URL-safe characters (192 bits)."""
    return secrets.token_urlsafe(24)


def password_file(settings: Settings, user: str) -> Path:
    """Where the password of ``user`` is kept: ``<IOC_CREDENTIALS_DIR>/<user>.password``."""
    return settings.credentials_dir / f"{user}{PASSWORD_SUFFIX}"


def read_or_create_secret(path: Path) -> tuple[SecretStr, bool]:
    """The secret in ``path``, or a new one written there with mode 0600; True if new.

    The directory is created with mode 0700. An existing file is never overwritten.
    """
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        try:
            return SecretStr(read_secret_file(path, str(path))), False
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
    password = generate_password()
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(password + "\n")
    return SecretStr(password), True


def admin_password(settings: Settings, *, create: bool = False) -> SecretStr:
    """The broker admin's password: from the settings, else from its file in the credentials
    directory (written there on first use when ``create``, as the local broker does)."""
    if settings.kafka_admin_password is not None:
        return check_admin_password(settings.kafka_admin_password)
    path = password_file(settings, settings.kafka_admin_username)
    if create or path.exists():
        return check_admin_password(read_or_create_secret(path)[0])
    raise ConfigurationError(
        "Chưa có mật khẩu quản trị Kafka: đặt IOC_KAFKA_ADMIN_PASSWORD_FILE (hoặc "
        f"IOC_KAFKA_ADMIN_PASSWORD), hoặc để `ioc kafka start` tạo nó tại {path}. / "
        "No Kafka admin password: set IOC_KAFKA_ADMIN_PASSWORD_FILE (or "
        f"IOC_KAFKA_ADMIN_PASSWORD), or let `ioc kafka start` create it at {path}."
    )


#: What an admin password may hold: it is quoted in the broker's JAAS line and, in the compose
#: variant, in the format tool's ``--add-scram`` list, where a quote, comma, bracket, equals
#: sign or space would end it (deploy/kafka/secured-entrypoint.sh checks the same rule).
ADMIN_PASSWORD_RULE = re.compile(r"[A-Za-z0-9._~+/!@#%^*():;?-]{12,}")


def check_admin_password(password: SecretStr) -> SecretStr:
    """``password`` if it keeps :data:`ADMIN_PASSWORD_RULE`; the error never quotes it."""
    if not ADMIN_PASSWORD_RULE.fullmatch(password.get_secret_value()):
        raise ConfigurationError(
            "Mật khẩu quản trị Kafka cần ít nhất 12 ký tự A-Z a-z 0-9 . _ ~ + / ! @ # % ^ * ( ) "
            ": ; ? - / The Kafka admin password needs at least 12 of A-Z a-z 0-9 "
            ". _ ~ + / ! @ # % ^ * ( ) : ; ? -"
        )
    return password


def scram_argument(user: str, password: SecretStr) -> str:
    """``kafka-storage format --add-scram`` argument carrying a salted credential.

    The plaintext password never reaches a command line, only its PBKDF2 salted form.
    """
    salt = secrets.token_bytes(24)
    salted = hashlib.pbkdf2_hmac(
        "sha512", password.get_secret_value().encode(), salt, SCRAM_ITERATIONS
    )
    b64 = base64.b64encode
    return (
        f"{MECHANISM}=[name={user},iterations={SCRAM_ITERATIONS},"
        f'salt="{b64(salt).decode()}",saltedpassword="{b64(salted).decode()}"]'
    )


def admin_settings(settings: Settings) -> Settings:
    """The same settings, logged in as the broker's admin user."""
    return settings.model_copy(
        update={
            "kafka_sasl_username": settings.kafka_admin_username,
            "kafka_sasl_password": admin_password(settings),
            "kafka_sasl_password_file": None,
        }
    )


# --- provisioning on the broker --------------------------------------------------------------
@dataclass
class ProvisionReport:
    """What ``ioc sources provision`` did (names and paths only, never a secret)."""

    credentials_dir: Path
    topics_created: list[str] = field(default_factory=list)
    users_created: list[str] = field(default_factory=list)
    users_kept: list[str] = field(default_factory=list)
    files_written: list[Path] = field(default_factory=list)
    acls_added: list[Grant] = field(default_factory=list)
    acls_removed: list[Grant] = field(default_factory=list)


def _to_acl(grant: Grant) -> Any:
    from kafka.admin import (  # noqa: PLC0415 - kafka-python only where the broker is used
        ACL,
        ACLOperation,
        ACLPermissionType,
        ACLResourcePatternType,
        ResourcePattern,
        ResourceType,
    )

    return ACL(
        principal=grant.principal,
        host="*",
        operation=ACLOperation[grant.operation],
        permission_type=ACLPermissionType.ALLOW,
        resource_pattern=ResourcePattern(
            ResourceType[grant.resource], grant.name, ACLResourcePatternType[grant.pattern]
        ),
    )


def _from_acl(acl: Any) -> Grant | None:
    """The grant an ACL holds, or None for one the plan can never hold (DENY, one host)."""
    if acl.host != "*" or acl.permission_type.name != "ALLOW":
        return None
    return Grant(
        acl.principal,
        acl.resource_pattern.resource_type.name,
        acl.resource_pattern.resource_name,
        acl.resource_pattern.pattern_type.name,
        acl.operation.name,
    )


def _refused(settings: Settings, what: str, detail: object) -> ProducerError:
    return ProducerError(
        f"Kafka tại {settings.bootstrap_servers} từ chối {what}: {detail}. Kiểm tra "
        "IOC_KAFKA_ADMIN_USERNAME và mật khẩu của nó. / "
        f"Kafka at {settings.bootstrap_servers} refused to {what}: {detail}. Check "
        "IOC_KAFKA_ADMIN_USERNAME and its password."
    )


def provision(settings: Settings, sources: Iterable[str]) -> ProvisionReport:
    """Create the topics, the users of ``sources`` and the worker, and exactly their ACLs."""
    from kafka.admin import KafkaAdminClient  # noqa: PLC0415 - only where a broker is used
    from kafka.errors import KafkaError  # noqa: PLC0415

    from streams.kafka_config import client_config  # noqa: PLC0415
    from streams.topics import Topics, ensure_topics  # noqa: PLC0415

    if settings.kafka_security_protocol != "SASL_PLAINTEXT":
        raise ConfigurationError(
            "Cấp tài khoản cần broker bảo mật: đặt IOC_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT. / "
            "Provisioning needs the secured broker: set IOC_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT."
        )
    codes = sorted(set(sources))
    prefix = settings.topic_prefix
    admin = admin_settings(settings)
    report = ProvisionReport(settings.credentials_dir)
    users = [source_user(prefix, s) for s in codes] + [worker_user(prefix)]

    report.topics_created = ensure_topics(admin, Topics(prefix).all(codes))
    try:
        client = KafkaAdminClient(**client_config(admin, "ioc-provision"))
    except KafkaError as exc:
        raise _refused(settings, "the admin login", type(exc).__name__) from exc
    try:
        _provision_users(settings, client, users, report)
        _converge_acls(settings, client, acl_plan(prefix, settings.app_id, codes), users, report)
    except KafkaError as exc:
        raise _refused(settings, "provision users and ACLs", exc) from exc
    finally:
        client.close()
    return report


def _provision_users(
    settings: Settings, client: Any, users: list[str], report: ProvisionReport
) -> None:
    """Give every user the SCRAM credential of its password file (written when missing)."""
    from kafka.admin import ScramMechanism, UserScramCredentialUpsertion  # noqa: PLC0415

    described = client.describe_user_scram_credentials(users)
    existing = {user for user, info in described.items() if not info["error"]}
    upserts = []
    for user in users:
        path = password_file(settings, user)
        password, new_file = read_or_create_secret(path)
        if new_file:
            report.files_written.append(path)
        # Always set from the file: the broker and the file then agree, even after a broker
        # reset or a replaced file.
        upserts.append(
            UserScramCredentialUpsertion(
                user,
                ScramMechanism.SCRAM_SHA_512,
                password.get_secret_value(),
                iterations=SCRAM_ITERATIONS,
            )
        )
        (report.users_kept if user in existing else report.users_created).append(user)
    errors = {u: e for u, e in client.alter_user_scram_credentials(upserts).items() if e}
    if errors:
        raise _refused(settings, "set SCRAM credentials", errors)


def _converge_acls(
    settings: Settings, client: Any, plan: list[Grant], users: list[str], report: ProvisionReport
) -> None:
    """Make the ACLs of ``users`` exactly ``plan``: add what is missing, remove the rest."""
    from kafka.admin import (  # noqa: PLC0415
        ACLFilter,
        ACLOperation,
        ACLPermissionType,
        ACLResourcePatternType,
        ResourcePatternFilter,
        ResourceType,
    )

    managed = {principal(u) for u in users}
    everything = ACLFilter(
        principal=None,
        host=None,
        operation=ACLOperation.ANY,
        permission_type=ACLPermissionType.ANY,
        resource_pattern=ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY),
    )
    current, _ = client.describe_acls(everything)
    wanted = set(plan)
    present: set[Grant] = set()
    stale = []
    for acl in current:
        if acl.principal not in managed:
            continue
        grant = _from_acl(acl)
        if grant in wanted:
            present.add(grant)
            continue
        stale.append(acl)
        if grant is not None:
            report.acls_removed.append(grant)
    if stale:
        for _, _, error in client.delete_acls(stale):
            if error.errno:
                raise _refused(settings, "delete ACLs", error.__name__)
    report.acls_added = sorted(wanted - present)
    if report.acls_added:
        result = client.create_acls([_to_acl(g) for g in report.acls_added])
        if result["failed"]:
            raise _refused(settings, "create ACLs", result["failed"][0])
