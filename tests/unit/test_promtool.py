"""The on-call path's configuration, checked by Prometheus' and Alertmanager's own tools.

promtool and amtool are prerequisites like Java: when they are missing these tests fail with
the command that installs them, they never skip. The rest holds the rule files to the habits
of kubernetes-mixin: every alert has a severity, a summary, a description and a runbook, and
a promtool test that fires it and one that keeps it quiet.
"""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from agents.alerts import PROMETHEUS_ALERTS, runbook_url
from ioc.errors import ConfigurationError, PrerequisiteMissing
from ioc.local.prometheus import (
    ALERTMANAGER_DEPLOY_DIR,
    AMTOOL_BINARIES,
    INSTALL_COMMAND,
    PROMETHEUS_DEPLOY_DIR,
    PROMTOOL_BINARIES,
    AlertmanagerOverrides,
    PrometheusOverrides,
    find_binary,
    prometheus_available,
    render_alertmanager,
    render_prometheus,
)
from ioc.settings import PROJECT_ROOT

RULES_DIR = PROMETHEUS_DEPLOY_DIR / "rules"
RULE_TESTS_DIR = PROMETHEUS_DEPLOY_DIR / "tests"
ALERTMANAGER_CONFIG = ALERTMANAGER_DEPLOY_DIR / "alertmanager.yml"

#: The alertnames of the metrics contract's ioc_alert_active, and the rule forwarding each.
AGENT_ALERTS = PROMETHEUS_ALERTS
#: A letter only Vietnamese uses: đ, or a vowel with a tone mark or a hat.
VIETNAMESE_LETTER = re.compile(
    "[ăâđêôơưáàảãạấầẩẫậắằẳẵặéèẻẽẹếềểễệíìỉĩịóòỏõọốồổỗộớờởỡợúùủũụứừửữựýỳỷỹỵ]"
)
PIPELINE_ALERTS = {"IOCWorkerDown", "IOCConsumerLagGrowing", "IOCDeadLetterRateHigh"}
SOURCE_ALERTS = {"IOCSourceSilent"}


def tool(candidates: Sequence[str]) -> str:
    try:
        return find_binary(candidates)
    except PrerequisiteMissing as exc:
        pytest.fail(str(exc), pytrace=False)


def check(*command: str | Path) -> str:
    result = subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{' '.join(map(str, command))} failed:\n{output}"
    return output


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def alert_rules() -> list[dict[str, Any]]:
    return [
        rule
        for path in sorted(RULES_DIR.glob("*.yml"))
        for group in load(path)["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


def relative(paths: Sequence[Path]) -> list[str]:
    return [str(path.relative_to(PROJECT_ROOT)) for path in paths]


# --- Prometheus ---------------------------------------------------------------------------------
def test_rules_pass_promtool_check() -> None:
    rule_files = sorted(RULES_DIR.glob("*.yml"))
    assert rule_files, "deploy/prometheus/rules/ holds no rule file"
    check(tool(PROMTOOL_BINARIES), "check", "rules", *relative(rule_files))


def test_rule_unit_tests_pass() -> None:
    test_files = sorted(RULE_TESTS_DIR.glob("*.yml"))
    assert test_files, "deploy/prometheus/tests/ holds no promtool test"
    output = check(tool(PROMTOOL_BINARIES), "test", "rules", *relative(test_files))
    assert "FAILED" not in output


def test_rendered_config_passes_promtool_check(tmp_path: Path) -> None:
    config = render_prometheus(
        tmp_path,
        worker_targets=["127.0.0.1:6066", "127.0.0.1:6067"],
        alertmanager_targets=["127.0.0.1:9093"],
        overrides=PrometheusOverrides(
            scrape_interval="1s", evaluation_interval="1s", alert_for={"IOCWorkerDown": "2s"}
        ),
    )
    output = check(tool(PROMTOOL_BINARIES), "check", "config", config)
    assert f"SUCCESS: {len(list(RULES_DIR.glob('*.yml')))} rule files found" in output

    rendered = load(config)
    assert rendered["global"]["scrape_interval"] == "1s"
    assert rendered["global"]["evaluation_interval"] == "1s"
    assert rendered["rule_files"] == ["rules/*.yml"]
    workers = yaml.safe_load((tmp_path / "targets" / "worker.json").read_text())
    assert workers == [
        {"targets": ["127.0.0.1:6066", "127.0.0.1:6067"], "labels": {"service": "ioc-worker"}}
    ]
    alerts = {
        rule["alert"]: rule
        for group in load(tmp_path / "rules" / "ioc-alerts.yml")["groups"]
        for rule in group["rules"]
    }
    assert alerts["IOCWorkerDown"]["for"] == "2s"
    assert alerts["IOCSourceSilent"]["for"] == "1m", "only the named alert changes"


def test_compose_layout_passes_promtool_check(tmp_path: Path) -> None:
    """The shipped config as docker-compose mounts it: targets/ is targets/compose/."""
    shutil.copy(PROMETHEUS_DEPLOY_DIR / "prometheus.yml", tmp_path)
    shutil.copytree(PROMETHEUS_DEPLOY_DIR / "targets" / "compose", tmp_path / "targets")
    shutil.copytree(RULES_DIR, tmp_path / "rules")
    check(tool(PROMTOOL_BINARIES), "check", "config", tmp_path / "prometheus.yml")


def test_alert_for_must_name_an_existing_alert(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="IOCNoSuchAlert"):
        render_prometheus(
            tmp_path,
            worker_targets=["127.0.0.1:6066"],
            alertmanager_targets=["127.0.0.1:9093"],
            overrides=PrometheusOverrides(alert_for={"IOCNoSuchAlert": "1s"}),
        )


# --- Alertmanager -------------------------------------------------------------------------------
def test_alertmanager_config_passes_amtool_check() -> None:
    output = check(tool(AMTOOL_BINARIES), "check-config", relative([ALERTMANAGER_CONFIG])[0])
    assert "SUCCESS" in output


def test_rendered_alertmanager_config_changes_only_the_overrides(tmp_path: Path) -> None:
    overrides = AlertmanagerOverrides(
        webhook_url="http://127.0.0.1:1234/alerts",
        group_wait="1s",
        group_interval="1s",
        repeat_interval="1h",
        resolve_timeout="10s",
    )
    config = render_alertmanager(tmp_path, overrides)
    check(tool(AMTOOL_BINARIES), "check-config", config)

    expected = copy.deepcopy(load(ALERTMANAGER_CONFIG))
    expected["global"]["resolve_timeout"] = "10s"
    routes = [expected["route"], *expected["route"]["routes"]]
    for route in routes:
        for key in ("group_wait", "group_interval", "repeat_interval"):
            if key in route:
                route[key] = getattr(overrides, key)
    for receiver in expected["receivers"]:
        for webhook in receiver["webhook_configs"]:
            webhook["url"] = overrides.webhook_url
    assert load(config) == expected
    assert "group_wait" not in load(config)["route"]["routes"][1], "no key is added"


def test_alertmanager_groups_and_inhibits_by_source() -> None:
    config = load(ALERTMANAGER_CONFIG)
    assert config["route"]["group_by"] == ["alertname", "source"]
    critical = [r for r in config["route"]["routes"] if r["matchers"] == ['severity="critical"']]
    assert critical, "critical alerts need their own route"
    assert _seconds(critical[0]["repeat_interval"]) < _seconds(config["route"]["repeat_interval"])
    silencing = [
        rule
        for rule in config["inhibit_rules"]
        if rule["target_matchers"] == ['category="indicator"']
    ]
    assert len(silencing) == 1
    assert silencing[0]["equal"] == ["source"]
    source_pattern = re.fullmatch(r'alertname=~"(.+)"', silencing[0]["source_matchers"][0])
    assert source_pattern is not None
    assert set(source_pattern.group(1).split("|")) == {"IOCSourceSilent", "IOCSourceOverdue"}
    receivers = {receiver["name"] for receiver in config["receivers"]}
    assert receivers == {"on-call"}
    assert config["receivers"][0]["webhook_configs"][0]["send_resolved"] is True


def _seconds(duration: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([smhd])", duration))


# --- the rules' own habits ----------------------------------------------------------------------
@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: rule["alert"])
def test_every_alert_is_documented_and_classified(rule: dict[str, Any]) -> None:
    name = rule["alert"]
    labels = rule.get("labels", {})
    forwards_severity = "ioc_alert_active" in rule["expr"]
    assert forwards_severity or labels.get("severity") in {"info", "warning", "critical"}
    if forwards_severity:
        assert "severity" not in labels, f"{name} must keep the agent's severity"
    assert labels.get("category") in {"indicator", "source", "pipeline"}
    annotations = rule["annotations"]
    assert set(annotations) == {"summary", "description", "runbook_url"}
    assert annotations["runbook_url"] == f"docs/runbooks.md#{name.lower()}"
    # Vietnamese first, then English: "VI / EN" in the summary, a line each in the description.
    vietnamese, _, english = annotations["summary"].partition(" / ")
    assert english, f"{name}: summary is not 'Vietnamese / English'"
    description = annotations["description"].splitlines()
    assert len(description) == 2, f"{name}: description is not 'Vietnamese\\nEnglish'"
    for text in (vietnamese, description[0]):
        assert VIETNAMESE_LETTER.search(text), f"{name}: not Vietnamese: {text!r}"
    for text in (english, description[1]):
        assert not VIETNAMESE_LETTER.search(text), f"{name}: not English: {text!r}"


def test_every_agent_alert_and_pipeline_check_has_a_rule() -> None:
    rules = {rule["alert"]: rule for rule in alert_rules()}
    assert set(rules) == set(AGENT_ALERTS.values()) | PIPELINE_ALERTS | SOURCE_ALERTS
    for agent_name, rule_name in AGENT_ALERTS.items():
        assert f'ioc_alert_active{{alertname="{agent_name}"}}' in rules[rule_name]["expr"]
        assert rules[rule_name]["for"] == "0s", "the agents debounce already"


def test_every_alert_has_a_firing_and_a_quiet_promtool_case() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in RULE_TESTS_DIR.glob("*.yml"):
        for group in load(path)["tests"]:
            for case in group.get("alert_rule_test", []):
                (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
    names = {rule["alert"] for rule in alert_rules()}
    assert names - firing == set(), "alerts no promtool test fires"
    assert names - quiet == set(), "alerts no promtool test keeps quiet"


def test_every_threshold_an_alert_uses_is_recorded() -> None:
    recorded = {
        rule["record"]
        for group in load(RULES_DIR / "ioc-thresholds.yml")["groups"]
        for rule in group["rules"]
    }
    used = {
        name
        for rule in alert_rules()
        for name in re.findall(r"ioc:alert_threshold:[a-z_]+", rule["expr"])
    }
    assert used, "alerts should compare against the thresholds of ioc-thresholds.yml"
    assert used <= recorded
    assert recorded <= used, "a threshold no alert uses"


# --- prerequisites ------------------------------------------------------------------------------
def test_missing_binaries_say_how_to_install_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))

    assert not prometheus_available()
    with pytest.raises(PrerequisiteMissing) as caught:
        find_binary(PROMTOOL_BINARIES)
    message = str(caught.value)
    assert INSTALL_COMMAND in message
    assert message.index("Không tìm thấy") < message.index("was not found"), "Vietnamese first"


def test_binaries_are_installed() -> None:
    assert prometheus_available(), f"Install Prometheus and Alertmanager: {INSTALL_COMMAND}"


def test_every_runbook_link_has_its_section() -> None:
    runbooks = (PROJECT_ROOT / "docs" / "runbooks.md").read_text(encoding="utf-8")
    anchors = {
        line.removeprefix("## ").strip().lower()
        for line in runbooks.splitlines()
        if line.startswith("## ")
    }
    links = {
        rule["annotations"]["runbook_url"].partition("#")[2]
        for path in sorted((PROJECT_ROOT / "deploy/prometheus/rules").glob("*.yml"))
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    links |= {runbook_url(name).partition("#")[2] for name in PROMETHEUS_ALERTS}
    assert links
    assert links <= anchors, f"runbook sections missing: {sorted(links - anchors)}"
