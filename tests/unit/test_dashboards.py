"""The Grafana dashboards as code, and ``ioc dashboards build|push``.

The committed JSON must be what the code builds; every dashboard and panel speaks Vietnamese to
operators (title) and English to engineers (description); the wall refreshes like a kiosk; every
query goes to the provisioned datasource; colour always carries a meaning (thresholds or value
mappings); and pushing to a Grafana that is away, or that wants a token, fails with a message
that names the URL and the setting, never a traceback or the token.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from agents.alerts import PROMETHEUS_ALERTS
from dashboards.build import JSON_DIR, build_all, expand, panel_queries, render, write
from dashboards.common import ALERT_NAMES, DATASOURCE_UID, alert_threshold
from ioc.cli.dashboards import FOLDER_TITLE, FOLDER_UID, app
from ioc.errors import ConfigurationError, LocalServiceError, PrerequisiteMissing
from ioc.local.process import free_port
from ioc.local.prometheus import PROMETHEUS_DEPLOY_DIR, PROMTOOL_BINARIES, find_binary

UIDS = ["ioc-overview", "ioc-source", "ioc-area", "ioc-pipeline"]
#: A letter only Vietnamese uses: đ, or a vowel with a tone mark or a hat.
VIETNAMESE_LETTER = re.compile(
    "[ăâđêôơưáàảãạấầẩẫậắằẳẵặéèẻẽẹếềểễệíìỉĩịóòỏõọốồổỗộớờởỡợúùủũụứừửữựýỳỷỹỵ]", re.IGNORECASE
)
#: What a variable is replaced with when a query is checked (the integration test uses data).
EXAMPLE_VALUES = {
    "source": "ict",
    "district": "mai-son",
    "indicator": "applications_received",
    "__rate_interval": "1m",
    "__interval": "15s",
    "__range": "1h",
}
#: Panel types whose colour is their message.
COLOURED_TYPES = {"stat", "bargauge", "gauge", "state-timeline", "status-history"}
runner = CliRunner()


@pytest.fixture(scope="module")
def built() -> dict[str, dict[str, Any]]:
    return build_all()


def panels(data: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in data["panels"]:
        yield panel
        yield from panel.get("panels") or []


def all_panels(built: dict[str, dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for uid, data in built.items():
        for panel in panels(data):
            yield uid, panel


# --- the committed JSON ------------------------------------------------------------------------
def test_committed_json_is_a_fresh_build(built: dict[str, dict[str, Any]]) -> None:
    stale = [
        uid
        for uid, data in built.items()
        if not (JSON_DIR / f"{uid}.json").exists()
        or (JSON_DIR / f"{uid}.json").read_text(encoding="utf-8") != render(data)
    ]
    extra = sorted({p.stem for p in JSON_DIR.glob("*.json")} - set(built))
    hint = "Run `ioc dashboards build` (or `python -m dashboards.build`) and commit the JSON."
    assert not stale, f"dashboards/json/ is stale: {stale} differ from a fresh build. {hint}"
    assert not extra, f"dashboards/json/ holds dashboards no longer built: {extra}. {hint}"


def test_building_twice_gives_identical_bytes(tmp_path: Path) -> None:
    first = {p.name: p.read_bytes() for p in write(tmp_path / "a")}
    second = {p.name: p.read_bytes() for p in write(tmp_path / "b")}

    assert first == second
    text = next(iter(first.values())).decode("utf-8")
    assert text.endswith("}\n")
    assert text.startswith('{\n  "annotations"')  # sorted keys, two-space indent


def test_write_removes_dashboards_no_longer_built(tmp_path: Path) -> None:
    (tmp_path / "ioc-retired.json").write_text("{}\n", encoding="utf-8")
    (tmp_path / "someone-elses.json").write_text("{}\n", encoding="utf-8")

    write(tmp_path)

    assert sorted(p.name for p in tmp_path.glob("*.json")) == sorted(
        [f"{uid}.json" for uid in UIDS] + ["someone-elses.json"]
    )


def test_uids_are_stable_and_unique(built: dict[str, dict[str, Any]]) -> None:
    assert list(built) == UIDS
    assert [data["uid"] for data in built.values()] == UIDS
    for data in built.values():
        ids = [panel["id"] for panel in panels(data)]
        assert ids == list(range(1, len(ids) + 1)), data["uid"]


# --- what people read ------------------------------------------------------------------------
def test_titles_are_vietnamese_and_descriptions_english(built: dict[str, dict[str, Any]]) -> None:
    items = [(uid, data) for uid, data in built.items()]
    items += [(f"{uid} panel {panel['id']}", panel) for uid, panel in all_panels(built)]
    for where, item in items:
        assert VIETNAMESE_LETTER.search(item["title"]), f"{where}: {item['title']!r}"
        description = item.get("description", "")
        assert len(description) >= 40, f"{where} ({item['title']}) has no description"
        assert not VIETNAMESE_LETTER.search(description), f"{where}: {description!r}"


def test_the_wall_is_kiosk_friendly(built: dict[str, dict[str, Any]]) -> None:
    for uid, data in built.items():
        assert data["refresh"] in ("5s", "10s"), uid
        assert data["time"] == {"from": "now-1h", "to": "now"}, uid
        assert data["timezone"] == "Asia/Ho_Chi_Minh", uid
        assert data["editable"] is False, uid
        assert "ioc" in data["tags"], uid
        for panel in panels(data):
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24, f"{uid}: {panel['title']} overflows the grid"


def test_overview_has_one_tile_per_source_and_the_headline_panels(
    built: dict[str, dict[str, Any]],
) -> None:
    overview = {panel["title"]: panel for panel in panels(built["ioc-overview"])}
    tiles = overview["Tình trạng báo cáo của 41 nguồn"]
    [target] = tiles["targets"]
    assert target["legendFormat"] == "{{source}}"
    assert "ioc_source_overdue" in target["expr"]
    assert tiles["options"]["textMode"] == "value_and_name"
    [link] = tiles["fieldConfig"]["defaults"]["links"]
    assert "var-source=${__field.labels.source}" in link["url"]
    exprs = " ".join(t["expr"] for panel in overview.values() for t in panel["targets"])
    for metric in (
        "ioc_indicator_value",
        "ioc_indicator_target",
        "ioc_indicator_status",
        "ioc_indicator_progress_ratio",
        "ioc_alert_active",
        "source:ioc_events_received:increase1m",
        "ioc_source_last_report_age_seconds",
    ):
        assert metric in exprs, metric


# --- queries ----------------------------------------------------------------------------------
def test_every_panel_and_query_uses_the_ioc_datasource(built: dict[str, dict[str, Any]]) -> None:
    for uid, panel in all_panels(built):
        where = f"{uid}: {panel['title']}"
        assert panel["datasource"] == {"type": "prometheus", "uid": DATASOURCE_UID}, where
        assert panel["targets"], f"{where} has no query"
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(set(ref_ids)) == len(ref_ids), where
        assert all(ref_ids), where
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == DATASOURCE_UID, where
            assert target["expr"].strip(), where
    for uid, data in built.items():
        for variable in data["templating"]["list"]:
            assert variable["datasource"]["uid"] == DATASOURCE_UID, uid


def test_every_query_is_valid_promql(built: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    try:
        promtool = find_binary(PROMTOOL_BINARIES)
    except PrerequisiteMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    queries = [q for data in built.values() for q in panel_queries(data)]
    rules = [
        {"record": f"dashboard_query_{index}", "expr": expand(q.expr, EXAMPLE_VALUES)}
        for index, q in enumerate(queries)
    ]
    rule_file = tmp_path / "dashboard-queries.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))

    result = subprocess.run(
        [promtool, "check", "rules", str(rule_file)], capture_output=True, text=True, check=False
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_recording_rules_used_by_panels_exist(built: dict[str, dict[str, Any]]) -> None:
    recorded = {
        rule["record"]
        for path in (PROMETHEUS_DEPLOY_DIR / "rules").glob("*.yml")
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
        for rule in group["rules"]
        if "record" in rule
    }
    used = {
        name
        for data in built.values()
        for q in panel_queries(data)
        for name in re.findall(r"\b[a-z_]+:[a-z0-9_]+:[a-z0-9_]+\b", q.expr)
    }
    assert used, "the panels should reuse the recording rules"
    assert used <= recorded, f"not recorded in deploy/prometheus/rules/: {sorted(used - recorded)}"


def test_variables_are_defined_where_used(built: dict[str, dict[str, Any]]) -> None:
    variables = {
        uid: {v["name"]: v for v in data["templating"]["list"]} for uid, data in built.items()
    }
    assert set(variables["ioc-source"]) == {"source"}
    assert "label_values(" in variables["ioc-source"]["source"]["query"]
    assert ", source)" in variables["ioc-source"]["source"]["query"]
    assert set(variables["ioc-area"]) == {"district", "indicator"}
    assert ", area)" in variables["ioc-area"]["district"]["query"]
    for uid, data in built.items():
        defined = set(variables[uid]) | {"__rate_interval", "__interval", "__range"}
        for q in panel_queries(data):
            used = {
                next(g for g in m.groups() if g)
                for m in re.finditer(r"\$\{(\w+)\}|\$(\w+)|\[\[(\w+)\]\]", q.expr)
            }
            assert used <= defined, f"{q}: undefined {sorted(used - defined)}"
    drill_down = " ".join(q.expr for q in panel_queries(built["ioc-source"]))
    assert drill_down.count('source="$source"') >= 10


# --- colour -----------------------------------------------------------------------------------
def _meaningful_thresholds(config: dict[str, Any]) -> bool:
    return len(config.get("thresholds", {}).get("steps", [])) >= 2


def test_colour_carries_meaning(built: dict[str, dict[str, Any]]) -> None:
    for uid, panel in all_panels(built):
        where = f"{uid}: {panel['title']}"
        defaults = panel["fieldConfig"]["defaults"]
        if panel["type"] in COLOURED_TYPES:
            fixed = defaults.get("color", {}).get("mode") == "fixed"  # a neutral colour
            assert fixed or _meaningful_thresholds(defaults) or defaults.get("mappings"), where
        for override in panel["fieldConfig"]["overrides"]:
            props = {p["id"]: p["value"] for p in override["properties"]}
            if "custom.cellOptions" in props:
                assert props.get("mappings") or props.get("thresholds"), where


def _mapping(panel: dict[str, Any], *, override: str | None = None) -> dict[str, Any]:
    if override is None:
        mappings = panel["fieldConfig"]["defaults"]["mappings"]
    else:
        [props] = [
            o["properties"]
            for o in panel["fieldConfig"]["overrides"]
            if o["matcher"]["options"] == override
        ]
        [mappings] = [p["value"] for p in props if p["id"] == "mappings"]
    options: dict[str, Any] = mappings[0]["options"]
    return options


def test_overdue_and_status_read_in_both_languages_and_colours(
    built: dict[str, dict[str, Any]],
) -> None:
    overview = {panel["title"]: panel for panel in panels(built["ioc-overview"])}
    overdue = _mapping(overview["Tình trạng báo cáo của 41 nguồn"])
    assert overdue["1"] == {"text": "QUÁ HẠN / OVERDUE", "color": "red", "index": 1}
    assert overdue["0"]["color"] == "green"
    assert overdue["0"]["text"] == "ĐÚNG HẠN / ON TIME"

    status = _mapping(overview["Chỉ tiêu so với mục tiêu"], override="Đánh giá / Standing")
    assert [status[code]["color"] for code in ("0", "1", "2")] == ["green", "orange", "red"]
    for entry in status.values():
        vi, _, en = entry["text"].partition(" / ")
        assert VIETNAMESE_LETTER.search(vi), entry
        assert en, entry
        assert en.isascii(), entry

    source = {panel["title"]: panel for panel in panels(built["ioc-source"])}
    history = source["Lịch sử đúng hạn"]
    assert history["type"] == "state-timeline"
    assert _mapping(history)["1"]["color"] == "red"


def test_thresholds_are_the_alert_rules(built: dict[str, dict[str, Any]]) -> None:
    assert alert_threshold("dead_letter_ratio") == 0.05
    assert alert_threshold("consumer_lag_messages") == 1000
    pipeline = {panel["title"]: panel for panel in panels(built["ioc-pipeline"])}
    steps = pipeline["Bản tin chờ xử lý"]["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert steps[-1] == {"color": "red", "value": 1000}
    steps = pipeline["Tỷ lệ bản tin bị từ chối theo nguồn (15 phút)"]["fieldConfig"]["defaults"][
        "thresholds"
    ]["steps"]
    assert steps[-1] == {"color": "red", "value": 0.05}


def test_every_agent_alert_has_a_vietnamese_name() -> None:
    assert set(ALERT_NAMES) == set(PROMETHEUS_ALERTS)


# --- ioc dashboards build ---------------------------------------------------------------------
def test_build_command_writes_the_dashboards(tmp_path: Path) -> None:
    result = runner.invoke(app, ["build", "--out", str(tmp_path)])

    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{uid}.json" for uid in UIDS)
    assert "Wrote 4 dashboards" in result.output
    assert json.loads((tmp_path / "ioc-overview.json").read_text("utf-8"))["title"] == "Tổng quan"


# --- ioc dashboards push ----------------------------------------------------------------------
SECRET = "glsa_not-a-real-token-0123456789"


def closed_port_url() -> str:
    return f"http://127.0.0.1:{free_port()}"  # nothing listens there


def test_push_to_an_unreachable_grafana_names_the_url_and_the_setting() -> None:
    url = closed_port_url()

    result = runner.invoke(app, ["push"], env={"IOC_GRAFANA_URL": url, "IOC_GRAFANA_TOKEN": SECRET})

    assert result.exit_code != 0
    assert isinstance(result.exception, LocalServiceError), result.exception
    message = str(result.exception)
    assert f"Không kết nối được Grafana tại {url}" in message
    assert f"Could not reach Grafana at {url}" in message
    assert "connection refused" in message
    assert "IOC_GRAFANA_URL" in message
    assert SECRET not in message + result.output


def test_ioc_dashboards_push_exits_non_zero_without_a_traceback() -> None:
    url = closed_port_url()
    env = os.environ | {"IOC_GRAFANA_URL": url, "IOC_GRAFANA_TOKEN": SECRET}

    result = subprocess.run(
        [sys.executable, "-m", "ioc", "dashboards", "push"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )

    assert result.returncode == LocalServiceError.exit_code, result.stderr
    assert "Traceback" not in result.stderr
    assert f"Không kết nối được Grafana tại {url}" in result.stderr
    assert f"Could not reach Grafana at {url}" in result.stderr
    assert "IOC_GRAFANA_URL" in result.stderr
    assert SECRET not in result.stdout + result.stderr


def test_an_invalid_url_names_the_setting() -> None:
    result = runner.invoke(app, ["push"], env={"IOC_GRAFANA_URL": "grafana.example:3000"})

    assert isinstance(result.exception, ConfigurationError), result.exception
    assert "IOC_GRAFANA_URL" in str(result.exception)


class FakeGrafana:
    """Enough of Grafana's HTTP API for a push: folders and dashboards, with optional auth."""

    def __init__(self, token: str | None) -> None:
        self.token = token
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                fake.requests.append((method, self.path, dict(self.headers), body))
                if fake.token is not None and self.headers.get("Authorization") != (
                    f"Bearer {fake.token}"
                ):
                    self._answer(401, {"message": "Unauthorized"})
                elif (method, self.path) == ("GET", "/api/folders"):
                    self._answer(200, [{"id": 7, "uid": "other", "title": "Other"}])
                elif (method, self.path) == ("POST", "/api/folders"):
                    self._answer(200, {"id": 8, "uid": body["uid"], "title": body["title"]})
                elif (method, self.path) == ("POST", "/api/dashboards/db"):
                    uid = body["dashboard"]["uid"]
                    url = f"/d/{uid}/x"
                    self._answer(200, {"status": "success", "uid": uid, "version": 1, "url": url})
                else:
                    self._answer(404, {"message": "Not found"})

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeGrafana:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._thread.join()
        self._server.server_close()


def test_push_saves_every_dashboard_into_the_ioc_folder(built: dict[str, dict[str, Any]]) -> None:
    with FakeGrafana(token=SECRET) as grafana:
        result = runner.invoke(
            app, ["push"], env={"IOC_GRAFANA_URL": grafana.url, "IOC_GRAFANA_TOKEN": SECRET}
        )

    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    assert SECRET not in result.output
    calls = [(method, path) for method, path, _, _ in grafana.requests]
    assert calls == [("GET", "/api/folders"), ("POST", "/api/folders")] + [
        ("POST", "/api/dashboards/db")
    ] * len(UIDS)
    assert grafana.requests[1][3] == {"title": FOLDER_TITLE, "uid": FOLDER_UID}
    saved = [body for method, path, _, body in grafana.requests if path == "/api/dashboards/db"]
    assert [body["dashboard"]["uid"] for body in saved] == UIDS
    assert all(body["overwrite"] is True and body["folderUid"] == FOLDER_UID for body in saved)
    assert saved[0]["dashboard"] == built["ioc-overview"]
    assert f"{grafana.url}/d/ioc-overview/x" in result.output


def test_push_without_a_token_to_a_grafana_that_wants_one_says_to_set_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("IOC_GRAFANA_TOKEN", raising=False)
    with FakeGrafana(token=SECRET) as grafana:
        result = runner.invoke(app, ["push"], env={"IOC_GRAFANA_URL": grafana.url})

    assert isinstance(result.exception, ConfigurationError), result.exception
    message = str(result.exception)
    assert "IOC_GRAFANA_TOKEN" in message
    assert grafana.url in message
    assert "yêu cầu xác thực" in message
    assert "requires authentication" in message


def test_a_rejected_token_is_named_but_never_shown() -> None:
    with FakeGrafana(token="the-right-one") as grafana:
        result = runner.invoke(
            app, ["push"], env={"IOC_GRAFANA_URL": grafana.url, "IOC_GRAFANA_TOKEN": SECRET}
        )

    assert isinstance(result.exception, ConfigurationError), result.exception
    message = str(result.exception)
    assert "IOC_GRAFANA_TOKEN" in message
    assert "401" in message
    assert SECRET not in message + result.output
