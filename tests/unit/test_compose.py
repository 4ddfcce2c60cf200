"""docker-compose.yml cannot run here, so it is held to the local runner by reading it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from ioc.security import worker_user
from ioc.settings import KAFKA_VERSION, PROJECT_ROOT, Settings

COMPOSE = PROJECT_ROOT / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


@pytest.fixture(scope="module")
def defaults() -> Settings:
    return Settings(_env_file=None)  # type: ignore[call-arg]


def published(service: dict[str, Any]) -> set[int]:
    return {int(str(mapping).split(":")[-1]) for mapping in service.get("ports", [])}


def test_every_image_is_pinned(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if "build" in service:
            continue
        image = service["image"]
        tag = image.rpartition(":")[2]
        assert ":" in image, f"{name}: {image} has no tag"
        assert tag != "latest", f"{name}: {image} floats"
        assert re.fullmatch(r"v?\d+\.\d+\.\d+", tag), f"{name}: {image} is not an exact version"


def test_kafka_image_is_the_runner_version(compose: dict[str, Any]) -> None:
    assert compose["services"]["kafka"]["image"] == f"apache/kafka:{KAFKA_VERSION}"


def test_grafana_matches_the_dashboard_sdk(compose: dict[str, Any]) -> None:
    pyproject = (PROJECT_ROOT / "pyproject.toml").read_text()
    sdk = re.search(r"grafana-foundation-sdk==\d+!(\d+\.\d+\.\d+)", pyproject)
    assert sdk, "pyproject.toml must pin grafana-foundation-sdk to a Grafana line"
    assert compose["services"]["grafana"]["image"] == f"grafana/grafana:{sdk.group(1)}"


def test_ports_agree_with_settings(compose: dict[str, Any], defaults: Settings) -> None:
    services = compose["services"]
    assert defaults.kafka_port in published(services["kafka"])
    assert defaults.worker_port in published(services["worker"])
    assert defaults.prometheus_port in published(services["prometheus"])
    assert defaults.alertmanager_port in published(services["alertmanager"])
    assert defaults.grafana_port in published(services["grafana"])
    env = services["kafka"]["environment"]
    assert f":{defaults.kafka_controller_port}" in env["KAFKA_CONTROLLER_QUORUM_VOTERS"]
    assert f"HOST://:{defaults.kafka_port}" in env["KAFKA_LISTENERS"]
    assert services["worker"]["environment"]["IOC_WORKER_PORT"] == str(defaults.worker_port)
    targets = (PROJECT_ROOT / "deploy/prometheus/targets/compose/worker.json").read_text()
    assert f"worker:{defaults.worker_port}" in targets


def test_every_mounted_file_exists(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":")[0]
            if source.startswith("."):
                assert (PROJECT_ROOT / source).exists(), f"{name} mounts missing {source}"
        if "build" in service:
            assert (PROJECT_ROOT / service["build"] / "Dockerfile").exists()


def test_config_files_referenced_inside_mounts_exist() -> None:
    prometheus = yaml.safe_load((PROJECT_ROOT / "deploy/prometheus/prometheus.yml").read_text())
    compose_targets = PROJECT_ROOT / "deploy/prometheus/targets/compose"
    referenced = [
        Path(f).name
        for job in prometheus["scrape_configs"]
        for sd in job.get("file_sd_configs", [])
        for f in sd["files"]
    ] + [
        Path(f).name
        for am in prometheus["alerting"]["alertmanagers"]
        for sd in am.get("file_sd_configs", [])
        for f in sd["files"]
    ]
    for name in referenced:
        assert (compose_targets / name).exists(), f"targets/compose/{name} is missing"


def test_shared_kafka_properties_are_the_runners(compose: dict[str, Any]) -> None:
    mounts = compose["services"]["kafka"]["volumes"]
    assert any(str(m).startswith("./deploy/kafka/server.properties:") for m in mounts)


def test_prometheus_gets_its_rules_and_alertmanager_pages_the_worker(
    compose: dict[str, Any], defaults: Settings
) -> None:
    mounts = [str(m) for m in compose["services"]["prometheus"]["volumes"]]
    assert "./deploy/prometheus/rules:/etc/prometheus/rules:ro" in mounts
    alertmanager = yaml.safe_load(
        (PROJECT_ROOT / "deploy/alertmanager/alertmanager.yml").read_text()
    )
    urls = [
        hook["url"]
        for receiver in alertmanager["receivers"]
        for hook in receiver.get("webhook_configs", [])
    ]
    assert urls == [f"http://worker:{defaults.worker_port}/api/v1/oncall"]


# --- docker-compose.secured.yml: the same stack with SASL/SCRAM logins and ACLs ---------------
SECURED = PROJECT_ROOT / "docker-compose.secured.yml"


@pytest.fixture(scope="module")
def secured() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(SECURED.read_text())
    return data


def protocols(environment: dict[str, str]) -> dict[str, str]:
    """Listener name -> security protocol, from KAFKA_LISTENER_SECURITY_PROTOCOL_MAP."""
    pairs = environment["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    return dict(pair.split(":") for pair in pairs)


def test_the_secured_variant_overrides_services_of_the_stack(
    compose: dict[str, Any], secured: dict[str, Any]
) -> None:
    assert secured["name"] == compose["name"]
    assert set(secured["services"]) - set(compose["services"]) == {"provision"}


def test_every_listener_but_the_controllers_needs_a_login(
    compose: dict[str, Any], secured: dict[str, Any]
) -> None:
    env = compose["services"]["kafka"]["environment"] | secured["services"]["kafka"]["environment"]
    listeners = [item.split("://")[0] for item in env["KAFKA_LISTENERS"].split(",")]
    mapping = protocols(env)
    assert {name: mapping[name] for name in listeners} == {
        "SASL_PLAINTEXT": "SASL_PLAINTEXT",
        "HOST": "SASL_PLAINTEXT",
        "CONTROLLER": "PLAINTEXT",
    }
    advertised = [item.split("://")[0] for item in env["KAFKA_ADVERTISED_LISTENERS"].split(",")]
    assert "CONTROLLER" not in advertised
    # Only the HOST listener is published; the controller's stays on the compose network.
    assert published(compose["services"]["kafka"]) == {9092}
    assert "ports" not in secured["services"]["kafka"]


def test_the_secured_broker_gets_the_shared_settings_and_its_entrypoint(
    secured: dict[str, Any],
) -> None:
    kafka = secured["services"]["kafka"]
    mounts = {str(m).split(":")[1]: str(m).split(":")[0] for m in kafka["volumes"]}
    script = mounts[kafka["entrypoint"][-1]]
    assert script == "./deploy/kafka/secured-entrypoint.sh"
    assert mounts["/mnt/shared/config/secured.properties"] == "./deploy/kafka/secured.properties"
    for source in mounts.values():
        assert (PROJECT_ROOT / source).exists(), source
    entrypoint = (PROJECT_ROOT / script).read_text()
    assert "/mnt/shared/config" in entrypoint  # where docker-compose.yml mounts server.properties
    assert "/run/secrets/kafka_admin_password" in entrypoint
    assert kafka["secrets"] == ["kafka_admin_password"]
    health = " ".join(kafka["healthcheck"]["test"])
    assert "--command-config /tmp/ioc-kafka/admin-client.properties" in health
    assert "admin-client.properties" in entrypoint


def test_secrets_come_from_files_never_from_the_environment(secured: dict[str, Any]) -> None:
    assert secured["secrets"] == {
        "kafka_admin_password": {"file": "./secrets/kafka-admin.password"}
    }
    for name, service in secured["services"].items():
        for key in service.get("environment", {}):
            assert "PASSWORD" not in key or key.endswith("_PASSWORD_FILE"), f"{name}: {key}"
    assert "/secrets/" in (PROJECT_ROOT / ".gitignore").read_text().splitlines()


def test_the_worker_logs_in_with_the_password_provision_writes(
    compose: dict[str, Any], secured: dict[str, Any]
) -> None:
    provision, worker = secured["services"]["provision"], secured["services"]["worker"]
    assert provision["command"] == ["ioc", "sources", "provision"]
    assert provision["depends_on"] == {"kafka": {"condition": "service_healthy"}}
    assert worker["depends_on"] == {"provision": {"condition": "service_completed_successfully"}}
    assert (
        provision["environment"]["IOC_KAFKA_BOOTSTRAP"]
        == (compose["services"]["worker"]["environment"]["IOC_KAFKA_BOOTSTRAP"])
    )
    assert provision["environment"]["IOC_KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"
    assert worker["environment"]["IOC_KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"
    assert worker["environment"]["IOC_KAFKA_SASL_USERNAME"] == worker_user("")

    # The same volume, mounted at different places: map the worker's path to provision's.
    def volume_mount(service: dict[str, Any]) -> tuple[str, str]:
        [mount] = [str(m) for m in service["volumes"] if str(m).startswith("credentials:")]
        return mount.split(":")[1], mount

    provision_root, _ = volume_mount(provision)
    worker_root, worker_mount = volume_mount(worker)
    assert worker_mount.endswith(":ro")
    password_file = worker["environment"]["IOC_KAFKA_SASL_PASSWORD_FILE"]
    written_at = provision_root + password_file.removeprefix(worker_root)
    expected = f"{provision['environment']['IOC_CREDENTIALS_DIR']}/{worker_user('')}.password"
    assert written_at == expected
