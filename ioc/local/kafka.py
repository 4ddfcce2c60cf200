"""A real Apache Kafka 4.x broker on loopback: single-node KRaft, assembled from Maven Central.

``ioc kafka start|stop|status|reset`` and the test fixtures drive :class:`LocalKafka`. The jars
are resolved once by Maven into a cache directory outside the repository; storage is formatted
on first start; readiness is the broker's own "Kafka Server started" line, awaited with a
deadline. The broker runs in its own session so it outlives the command that started it.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ioc.errors import (
    CorruptDataDirError,
    LocalServiceError,
    PortInUseError,
    PrerequisiteMissing,
    ServiceStartError,
)
from ioc.local.process import (
    ServiceRecord,
    ensure_ports_free,
    pid_alive,
    terminate,
    wait_until,
)
from ioc.security import admin_password, scram_argument
from ioc.settings import KAFKA_VERSION, PROJECT_ROOT, KafkaJit, Settings

DEPLOY_DIR = PROJECT_ROOT / "deploy" / "kafka"
READY_LINE = "Kafka Server started"
MIN_JAVA = 17
NODE_ID = 1
#: JVM options per ``Settings.kafka_jit``. The local broker runs for minutes (the tests, the
#: demo) on a machine of two cores, beside the worker: with C2, it spent 0.6 of a core at
#: 2,000 events/s, 0.4 of it compiling, and 0.3 with C1 alone, while its request threads took
#: the same time with either (docs/benchmark.md, "Stalls of 1.5 s"). ``ioc bench`` keeps the
#: JVM's default for its own broker (``bench.run.private_broker_jit``).
JIT_OPTIONS: dict[KafkaJit, tuple[str, ...]] = {
    "c1": ("-XX:TieredStopAtLevel=1",),
    "tiered": (),
}

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


def find_java() -> str:
    """Path of a Java 17+ runtime (``$JAVA_HOME/bin/java`` first, then ``java`` on PATH)."""
    java_home = os.environ.get("JAVA_HOME")
    candidate = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    fix = (
        "Cài Java 17 / Install Java 17: sudo apt-get install -y openjdk-17-jre-headless "
        "(hoặc đặt / or set JAVA_HOME)."
    )
    if not candidate or not Path(candidate).exists():
        raise PrerequisiteMissing(
            f"Không tìm thấy Java, cần để chạy Kafka. / Java was not found; Kafka needs it.\n{fix}"
        )
    out = subprocess.run(
        [candidate, "-version"], capture_output=True, text=True, check=False
    ).stderr
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    major = int(match.group(1)) if match else 0
    if major == 1 and match and match.group(2):  # "1.8.0" style
        major = int(match.group(2))
    if major < MIN_JAVA:
        raise PrerequisiteMissing(
            f"Kafka {KAFKA_VERSION} cần Java {MIN_JAVA}+, nhưng {candidate} là Java {major}. / "
            f"Kafka {KAFKA_VERSION} needs Java {MIN_JAVA}+, but {candidate} is Java {major}.\n{fix}"
        )
    return candidate


@dataclass(frozen=True)
class KafkaDistribution:
    """The broker's jars for one pinned version, cached under ``cache_dir``."""

    cache_dir: Path
    version: str = KAFKA_VERSION

    @property
    def libs_dir(self) -> Path:
        """Directory holding every runtime jar of the broker and its tools."""
        return self.cache_dir / "kafka" / self.version / "libs"

    @property
    def classpath(self) -> str:
        """A Java classpath wildcard over :attr:`libs_dir`."""
        return str(self.libs_dir / "*")

    def is_ready(self) -> bool:
        """True once a complete download sits in the cache."""
        return (self.libs_dir / ".complete").exists()

    def ensure(self, progress: Progress = _quiet) -> None:
        """Resolve the jars from Maven Central unless they are cached already."""
        if self.is_ready():
            return
        mvn = shutil.which("mvn")
        if mvn is None:
            raise PrerequisiteMissing(
                "Không tìm thấy Maven (mvn), cần để tải Kafka từ Maven Central. / "
                "Maven (mvn) was not found; it fetches Kafka from Maven Central.\n"
                "Cài / Install: sudo apt-get install -y maven"
            )
        progress(
            f"Đang tải Apache Kafka {self.version} từ Maven Central vào {self.libs_dir} ... / "
            f"Fetching Apache Kafka {self.version} from Maven Central ..."
        )
        staging = self.libs_dir.with_name(f"libs.partial-{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        staging.parent.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [
                mvn, "-B", "-q", "-f", str(DEPLOY_DIR / "pom.xml"),
                "dependency:copy-dependencies",
                "-DincludeScope=runtime",
                f"-Dkafka.version={self.version}",
                f"-DoutputDirectory={staging}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )  # fmt: skip
        if result.returncode != 0 or not any(staging.glob("kafka_2.13-*.jar")):
            shutil.rmtree(staging, ignore_errors=True)
            tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
            raise ServiceStartError(
                f"Không tải được Kafka {self.version} từ Maven Central. / "
                f"Could not fetch Kafka {self.version} from Maven Central.\n{tail}"
            )
        (staging / ".complete").write_text(self.version)
        shutil.rmtree(self.libs_dir, ignore_errors=True)
        staging.rename(self.libs_dir)


@dataclass(frozen=True)
class KafkaStatus:
    """What ``ioc kafka status`` reports."""

    running: bool
    bootstrap: str
    pid: int | None
    data_dir: Path
    log_file: Path


@dataclass(frozen=True)
class StartResult:
    """Outcome of :meth:`LocalKafka.start`."""

    bootstrap: str
    already_running: bool
    seconds: float


def _random_cluster_id() -> str:
    # Kafka's own Uuid.randomUuid() never yields an id starting with "-" (it reads as a flag).
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cid.startswith("-"):
            return cid


def _read_properties(path: Path) -> dict[str, str]:
    props: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", "!")):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ValueError(f"not a key=value line: {raw!r}")
        props[key.strip()] = value.strip()
    return props


class LocalKafka:
    """One local single-node KRaft broker, described entirely by :class:`Settings`."""

    def __init__(self, settings: Settings, distribution: KafkaDistribution | None = None) -> None:
        self.settings = settings
        self.distribution = distribution or KafkaDistribution(settings.cache_dir)
        self.home = settings.kafka_data_dir
        self.log_dirs = self.home / "data"
        self.properties_file = self.home / "server.properties"
        self.log_file = self.home / "broker.log"
        self.record_file = self.home / "broker.json"
        # Written when storage is formatted with the admin's SCRAM credential.
        self.scram_marker = self.home / "scram-admin"
        # Kept while this object lives, so the broker we started is reaped when it stops.
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """The address clients use for this broker."""
        return f"{self.settings.kafka_host}:{self.settings.kafka_port}"

    @property
    def secured(self) -> bool:
        """SASL/SCRAM logins and ACLs (``IOC_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT``)."""
        return self.settings.kafka_security_protocol == "SASL_PLAINTEXT"

    @property
    def _marker(self) -> str:
        # The properties path is on the broker's command line and unique to this broker.
        return str(self.properties_file)

    # --- status ---------------------------------------------------------------------------
    def _running_record(self) -> ServiceRecord | None:
        record = ServiceRecord.read(self.record_file)
        if record is None:
            return None
        if pid_alive(record.pid, self._marker):
            return record
        self.record_file.unlink(missing_ok=True)  # stale: the broker died or the host rebooted
        return None

    def status(self) -> KafkaStatus:
        """Whether this broker runs, and where."""
        record = self._running_record()
        return KafkaStatus(
            running=record is not None,
            bootstrap=record.address if record else self.bootstrap,
            pid=record.pid if record else None,
            data_dir=self.home,
            log_file=self.log_file,
        )

    # --- start ----------------------------------------------------------------------------
    def start(self, progress: Progress = _quiet) -> StartResult:
        """Start the broker unless it runs already; return once it accepts clients.

        Raises :class:`PrerequisiteMissing`, :class:`PortInUseError`,
        :class:`CorruptDataDirError` or :class:`ServiceStartError`, each saying how to fix it.
        """
        began = time.monotonic()
        record = self._running_record()
        if record is not None:
            return StartResult(record.address, already_running=True, seconds=0.0)

        java = find_java()
        ensure_ports_free(
            "Kafka",
            self.settings.kafka_host,
            {
                "IOC_KAFKA_PORT": self.settings.kafka_port,
                "IOC_KAFKA_CONTROLLER_PORT": self.settings.kafka_controller_port,
            },
        )
        self.distribution.ensure(progress)
        self._prepare_home()
        self._check_storage()
        if not (self.log_dirs / "meta.properties").exists():
            self._format(java)

        self.log_file.write_text("")
        with self.log_file.open("ab") as log:
            proc = subprocess.Popen(
                [
                    java,
                    f"-Xmx{self.settings.kafka_heap}",
                    f"-Xms{self.settings.kafka_heap}",
                    "-XX:+UseG1GC",
                    *JIT_OPTIONS[self.settings.kafka_jit],
                    "-Djava.awt.headless=true",
                    f"-Dlog4j2.configurationFile={DEPLOY_DIR / 'log4j2.properties'}",
                    "-cp", self.distribution.classpath,
                    "kafka.Kafka", str(self.properties_file),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C on the starting command must not reach it
                cwd=self.home,
            )  # fmt: skip

        ready = wait_until(
            self._log_says_ready,
            self.settings.kafka_start_timeout,
            interval=0.1,
            abort=lambda: proc.poll() is not None,
        )
        if not ready:
            exited = proc.poll() is not None
            if not exited:
                terminate(proc.pid, 10.0)
            proc.wait()
            raise self._diagnose_failure(exited)
        self._process = proc
        ServiceRecord(proc.pid, self.bootstrap, str(self.log_file), time.time()).write(
            self.record_file
        )
        return StartResult(self.bootstrap, already_running=False, seconds=time.monotonic() - began)

    def _prepare_home(self) -> None:
        if self.home.exists() and not self.home.is_dir():
            raise CorruptDataDirError(
                f"{self.home} không phải là thư mục. Hãy xoá nó hoặc đặt IOC_KAFKA_DATA_DIR "
                f"sang chỗ khác. / {self.home} is not a directory. Remove it or point "
                "IOC_KAFKA_DATA_DIR elsewhere."
            )
        self.home.mkdir(parents=True, exist_ok=True)
        props = _read_properties(DEPLOY_DIR / "server.properties")
        host, port = self.settings.kafka_host, self.settings.kafka_port
        cport = self.settings.kafka_controller_port
        listener = self.settings.kafka_security_protocol
        props.update(
            {
                "node.id": str(NODE_ID),
                "controller.quorum.voters": f"{NODE_ID}@{host}:{cport}",
                "listeners": f"{listener}://{host}:{port},CONTROLLER://{host}:{cport}",
                "advertised.listeners": f"{listener}://{host}:{port}",
                "log.dirs": str(self.log_dirs),
                "num.partitions": str(self.settings.partitions),
            }
        )
        if self.secured:
            props.update(self._secured_properties())
        lines = ["# Written by `ioc kafka start` from deploy/kafka/server.properties."]
        lines += [f"{key}={value}" for key, value in props.items()]
        # The secured broker's file holds the admin password: only its owner may read it.
        self.properties_file.unlink(missing_ok=True)
        fd = os.open(self.properties_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write("\n".join(lines) + "\n")

    def _secured_properties(self) -> dict[str, str]:
        """deploy/kafka/secured.properties, with this broker's admin user and password."""
        props = _read_properties(DEPLOY_DIR / "secured.properties")
        admin = self.settings.kafka_admin_username
        password = admin_password(self.settings, create=True).get_secret_value()
        props["super.users"] = f"User:{admin};User:ANONYMOUS"
        # The broker's own login on its SASL listener (inter-broker traffic); the server side
        # of SCRAM needs a JAAS entry too, and this one serves both.
        props["listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config"] = (
            "org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{admin}" password="{password}";'
        )
        return props

    def _corrupt(self, what: str, what_en: str) -> CorruptDataDirError:
        return CorruptDataDirError(
            f"Thư mục dữ liệu Kafka {self.log_dirs} bị hỏng: {what}. "
            "Chạy `ioc kafka reset` để xoá và tạo lại (mất dữ liệu trong broker), "
            "hoặc đặt IOC_KAFKA_DATA_DIR sang thư mục khác.\n"
            f"The Kafka data directory {self.log_dirs} is corrupt: {what_en}. "
            "Run `ioc kafka reset` to wipe and re-create it (the broker's data is lost), "
            "or point IOC_KAFKA_DATA_DIR at another directory."
        )

    def _check_storage(self) -> None:
        """Refuse storage the broker would choke on, before a JVM is spent on it."""
        if self.log_dirs.exists() and not self.log_dirs.is_dir():
            raise self._corrupt("không phải thư mục", "it is not a directory")
        meta = self.log_dirs / "meta.properties"
        if not meta.exists():
            if self.log_dirs.exists() and any(self.log_dirs.iterdir()):
                raise self._corrupt(
                    "có dữ liệu nhưng thiếu meta.properties",
                    "it holds data but no meta.properties",
                )
            return
        try:
            props = _read_properties(meta)
        except (ValueError, UnicodeDecodeError, OSError) as exc:
            raise self._corrupt(
                f"không đọc được meta.properties ({exc})", f"meta.properties is unreadable ({exc})"
            ) from None
        missing = [key for key in ("cluster.id", "node.id", "version") if not props.get(key)]
        if missing:
            raise self._corrupt(
                f"meta.properties thiếu {', '.join(missing)}",
                f"meta.properties lacks {', '.join(missing)}",
            )
        if props["node.id"] != str(NODE_ID):
            raise self._corrupt(
                f"node.id là {props['node.id']}, cần {NODE_ID}",
                f"node.id is {props['node.id']}, expected {NODE_ID}",
            )
        if self.secured and not self._formatted_with_admin():
            raise self._corrupt(
                "được định dạng khi chưa bảo mật, không có người dùng quản trị "
                f"{self.settings.kafka_admin_username}",
                "it was formatted unsecured, without the admin user "
                f"{self.settings.kafka_admin_username}",
            )

    def _formatted_with_admin(self) -> bool:
        try:
            return self.scram_marker.read_text().strip() == self.settings.kafka_admin_username
        except OSError:
            return False

    def _format(self, java: str) -> None:
        scram: list[str] = []
        if self.secured:
            # The admin's SCRAM credential is in the metadata log from the start, salted.
            admin = self.settings.kafka_admin_username
            scram = ["--add-scram", scram_argument(admin, admin_password(self.settings))]
        result = subprocess.run(
            [
                java, "-cp", self.distribution.classpath,
                f"-Dlog4j2.configurationFile={DEPLOY_DIR / 'log4j2.properties'}",
                "kafka.tools.StorageTool", "format",
                "-t", _random_cluster_id(), "-c", str(self.properties_file), *scram,
            ],
            capture_output=True,
            text=True,
            check=False,
        )  # fmt: skip
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-10:])
            raise self._corrupt(
                f"không định dạng được ổ lưu trữ KRaft:\n{tail}",
                "formatting KRaft storage failed (see above)",
            )
        if self.secured:
            self.scram_marker.write_text(self.settings.kafka_admin_username + "\n")

    def _log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def _log_says_ready(self) -> bool:
        try:
            with self.log_file.open("rb") as log:
                return READY_LINE.encode() in log.read()
        except OSError:
            return False

    def _diagnose_failure(self, exited: bool) -> LocalServiceError:
        tail = self._log_tail()
        log = self.log_file.read_text(errors="replace") if self.log_file.exists() else ""
        if "Address already in use" in log:
            return PortInUseError(
                f"Kafka không mở được cổng (đã bị chiếm). / Kafka could not bind its ports.\n"
                f"Đặt IOC_KAFKA_PORT / IOC_KAFKA_CONTROLLER_PORT khác. / "
                f"Set another IOC_KAFKA_PORT / IOC_KAFKA_CONTROLLER_PORT.\n{tail}"
            )
        corrupt_signs = ("meta.properties", "InconsistentClusterId", "CorruptRecord", "cluster.id")
        if any(sign in log for sign in corrupt_signs):
            return self._corrupt(f"broker từ chối dữ liệu:\n{tail}", "the broker rejected it")
        state = "đã thoát / exited" if exited else "không sẵn sàng kịp / was not ready in time"
        return ServiceStartError(
            f"Kafka {state} (giới hạn / limit {self.settings.kafka_start_timeout:.0f} s). "
            f"Xem nhật ký / see the log: {self.log_file}\n{tail}"
        )

    # --- stop / reset ---------------------------------------------------------------------
    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the broker cleanly (SIGTERM, then SIGKILL after ``timeout``).

        Returns False when no broker was running; that is not an error.
        """
        record = self._running_record()
        if record is None:
            if self._process is not None and self._process.poll() is not None:
                self._process = None  # ours, and it died (a crash, the OOM killer): now reaped
            return False
        terminate(record.pid, timeout, self._marker)
        if self._process is not None and self._process.pid == record.pid:
            self._process.wait()
            self._process = None
        self.record_file.unlink(missing_ok=True)
        return True

    def reset(self) -> None:
        """Delete the broker's data so the next start formats fresh storage."""
        if self._running_record() is not None:
            raise LocalServiceError(
                "Broker đang chạy; hãy `ioc kafka stop` trước. / "
                "The broker is running; run `ioc kafka stop` first."
            )
        shutil.rmtree(self.log_dirs, ignore_errors=True)
        if self.log_dirs.exists():
            self.log_dirs.unlink()
        self.scram_marker.unlink(missing_ok=True)

    def accepts_connections(self) -> bool:
        """True when the client port accepts a TCP connection."""
        try:
            with socket.create_connection(
                (self.settings.kafka_host, self.settings.kafka_port), timeout=1
            ):
                return True
        except OSError:
            return False
