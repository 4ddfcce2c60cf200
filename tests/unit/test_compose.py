"""docker-compose.yml cannot run here, so it is held to the local runner by reading it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

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
