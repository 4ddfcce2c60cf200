"""The operations-room wall: ``GET /wall`` and the JSON documents it polls.

Three documents, read from the worker's Faust tables at request time (as the metrics
collectors read them), never stored::

    GET /api/v1/sources      the 41 sources and their reporting standing
    GET /api/v1/indicators   the headline indicators of the province against their targets
    GET /api/v1/alerts       the alerts firing now, critical first, newest first

Each is an envelope ``{generated_at, clock, simulated, clock_speed, partitions, count,
items}`` (see ``docs/api.md``). The builders below are pure functions of a Monitor-like
object (tables, catalogue, clock, settings), so they are unit-tested on plain dicts;
:func:`register_wall` adds the routes and the self-contained page ``agents/static/wall.html``.

A worker's tables hold only the partitions it owns (no standby replicas): with several
workers, each answers for its share. ``partitions`` in every envelope says how many of the
partitions behind a document this worker holds, and the page warns when that is not all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

import orjson

from agents.alerts import runbook_url
from agents.metrics import ALERT_TABLES
from agents.quality import assess_target, target_for
from ioc.clock import Clock
from ioc.settings import Settings
from streams.catalogue import HEADLINE_INDICATORS, Catalogue
from streams.periods import LOCAL_TZ

if TYPE_CHECKING:
    from agents.app import Monitor

#: The province: headline indicators are shown at this level.
PROVINCE: Final = "son-la"

#: Customary short Vietnamese names of the agencies, for the tiles (a full name such as "Sở
#: Lao động - Thương binh và Xã hội" does not fit a tile read from across the room). A source
#: missing here is shown by its full name.
SHORT_NAMES_VI: Final[Mapping[str, str]] = {
    "office": "VP UBND tỉnh",
    "council_office": "VP ĐĐBQH & HĐND",
    "home_affairs": "Sở Nội vụ",
    "justice": "Sở Tư pháp",
    "planning": "Sở KH&ĐT",
    "finance": "Sở Tài chính",
    "industry_trade": "Sở Công Thương",
    "agriculture": "Sở NN&PTNT",
    "transport": "Sở GTVT",
    "construction": "Sở Xây dựng",
    "environment": "Sở TN&MT",
    "ict": "Sở TT&TT",
    "labour": "Sở LĐ-TB&XH",
    "culture": "Sở VH,TT&DL",
    "science": "Sở KH&CN",
    "education": "Sở GD&ĐT",
    "health": "Sở Y tế",
    "foreign_affairs": "Sở Ngoại vụ",
    "inspectorate": "Thanh tra tỉnh",
    "ethnic_affairs": "Ban Dân tộc",
    "industrial_zones": "Ban QL các KCN",
    "police": "Công an tỉnh",
    "military": "Bộ CHQS tỉnh",
    "border_guard": "Bộ CH BĐBP tỉnh",
    "public_service_centre": "TT Phục vụ HCC",
    "broadcasting": "Đài PT-TH tỉnh",
    "newspaper": "Báo Sơn La",
    "college": "CĐ Sơn La",
    "fatherland_front": "UB MTTQ tỉnh",
    "youth_union": "Tỉnh Đoàn",
    "women_union": "Hội LHPN tỉnh",
    "farmers_union": "Hội Nông dân",
    "veterans": "Hội Cựu chiến binh",
    "labour_federation": "LĐLĐ tỉnh",
    "cooperative_alliance": "Liên minh HTX",
    "red_cross": "Hội Chữ thập đỏ",
    "science_associations": "Liên hiệp Hội KH&KT",
    "study_promotion": "Hội Khuyến học",
    "tax": "Cục Thuế",
    "statistics": "Cục Thống kê",
    "sbv": "NHNN CN Sơn La",
}

#: How each catalogue unit is written after a value: Vietnamese, English.
UNIT_LABELS: Final[Mapping[str, tuple[str, str]]] = {
    "count": ("", ""),
    "people": ("người", "people"),
    "percent": ("%", "%"),
    "percent_change": ("%", "%"),
    "index": ("", ""),
    "vnd": ("đồng", "VND"),
    "billion_vnd": ("tỷ đồng", "billion VND"),
    "hectare": ("ha", "ha"),
    "tonne": ("tấn", "tonnes"),
}

#: Titles of the agent alerts: Vietnamese, English.
ALERT_TITLES: Final[Mapping[str, tuple[str, str]]] = {
    "target_off_track": ("Chỉ tiêu chệch mục tiêu", "Indicator off track"),
    "value_out_of_range": ("Giá trị ngoài khoảng hợp lệ", "Value out of range"),
    "outlier": ("Giá trị bất thường", "Outlier"),
    "sudden_change": ("Thay đổi đột ngột", "Sudden change"),
    "validation_rule": ("Vi phạm quy tắc kiểm tra", "Validation rule violated"),
    "source_overdue": ("Nguồn chậm báo cáo", "Source overdue"),
}

SourceStatus = Literal["ok", "overdue", "waiting"]
#: Alerts are listed most severe first.
SEVERITY_RANK: Final[Mapping[str, int]] = {"critical": 0, "warning": 1, "info": 2}

#: The page, shipped next to this module (one self-contained file: no external assets).
WALL_PAGE: Final = "static/wall.html"
#: The page may load nothing from elsewhere, and talk only to the worker that served it.
WALL_CSP: Final = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src data:; connect-src 'self'; base-uri 'none'; form-action 'none'"
)


class WallMonitor(Protocol):
    """What the builders read: a :class:`agents.app.Monitor`, or a stand-in in tests."""

    @property
    def tables(self) -> Mapping[str, Any]:
        """Faust tables (or dicts) by name."""
        ...

    @property
    def catalogue(self) -> Catalogue:
        """The catalogue."""
        ...

    @property
    def clock(self) -> Clock:
        """The shared (possibly simulated) clock."""
        ...

    @property
    def settings(self) -> Settings:
        """The worker's settings."""
        ...


@dataclass(frozen=True)
class Coverage:
    """How many of the partitions behind a document this worker holds (actively)."""

    held: int
    total: int

    def as_json(self) -> dict[str, Any]:
        """The ``partitions`` member of an envelope."""
        return {"held": self.held, "total": self.total, "complete": self.held >= self.total}


def _local(moment: datetime | str | None) -> str | None:
    """An ISO timestamp in province local time (+07:00), or None."""
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.astimezone(LOCAL_TZ).isoformat()


def _envelope(
    monitor: WallMonitor, items: list[dict[str, Any]], coverage: Coverage | None
) -> dict[str, Any]:
    settings = monitor.settings
    simulated = settings.clock_start is not None
    return {
        "generated_at": _local(datetime.now(LOCAL_TZ)),
        "clock": _local(monitor.clock.now()),
        "simulated": simulated,
        "clock_speed": settings.clock_speed if simulated else 1.0,
        "partitions": coverage.as_json() if coverage is not None else None,
        "count": len(items),
        "items": items,
    }


# --- sources ---------------------------------------------------------------------------------


def source_status(state: Mapping[str, Any] | None) -> SourceStatus:
    """``overdue`` when an indicator misses its latest due report; ``waiting`` when nothing is
    due yet (or the source was never judged); else ``ok``."""
    if not state:
        return "waiting"
    if state.get("overdue"):
        return "overdue"
    if state.get("reporting_rate") is None:
        return "waiting"
    return "ok"


def build_sources(monitor: WallMonitor, coverage: Coverage | None = None) -> dict[str, Any]:
    """``GET /api/v1/sources``: every catalogue source, in catalogue order, with its standing."""
    catalogue = monitor.catalogue
    reporting = monitor.tables["reporting"]
    items: list[dict[str, Any]] = []
    counts: dict[SourceStatus, int] = {"ok": 0, "overdue": 0, "waiting": 0}
    for code, source in catalogue.sources.items():
        state = reporting.get(code)
        status = source_status(state)
        counts[status] += 1
        state = state or {}
        overdue = []
        for indicator_code in state.get("overdue", ()):
            indicator = catalogue.indicators.get(indicator_code)
            overdue.append(
                {
                    "code": indicator_code,
                    "name_vi": indicator.name_vi if indicator else indicator_code,
                    "name_en": indicator.name_en if indicator else indicator_code,
                }
            )
        items.append(
            {
                "code": code,
                "name_vi": source.name_vi,
                "name_en": source.name_en,
                "short_vi": SHORT_NAMES_VI.get(code, source.name_vi),
                "kind": source.kind,
                "status": status,
                "overdue": overdue,
                "last_report": _local(state.get("last_report")),
                "watch_since": _local(state.get("watch_since")),
                "reporting_rate": state.get("reporting_rate"),
                "on_time_rate": state.get("on_time_rate"),
            }
        )
    return _envelope(monitor, items, coverage) | {"summary": counts}


# --- headline indicators ---------------------------------------------------------------------


def _latest(periods: Mapping[str, list[Any]] | None) -> tuple[str, list[Any]] | None:
    if not periods:
        return None
    latest = max(periods)
    return latest, periods[latest]


def build_indicator(monitor: WallMonitor, code: str, area: str = PROVINCE) -> dict[str, Any]:
    """One headline indicator at ``area``: latest value, target and standing.

    The value shown is the newest period of the area's own report or of the rollup of its
    children; for the same period the report wins (it is the published figure).
    """
    indicator = monitor.catalogue.indicators[code]
    key = f"{code}|{area}"
    series = monitor.tables["series"].get(key)
    rollup = monitor.tables["rollups"].get(key)
    reported = _latest(series["periods"] if series else None)
    rolled = _latest(rollup["values"] if rollup else None)
    candidates: list[tuple[str, int, float, str]] = []
    if reported:
        candidates.append((reported[0], 1, reported[1][0], "reported"))
    if rolled:
        candidates.append((rolled[0], 0, rolled[1][0], "rollup"))
    # The newest period; for the same period the report (rank 1) wins over the rollup.
    newest = max(candidates) if candidates else None
    period, value, basis = (newest[0], newest[2], newest[3]) if newest else (None, None, None)
    year = int(period[:4]) if period else monitor.clock.now().astimezone(LOCAL_TZ).year
    goal = target_for(indicator, area, year)
    standing = (
        assess_target(value, goal, monitor.settings.target_margin)
        if goal is not None and value is not None
        else None
    )
    unit_vi, unit_en = UNIT_LABELS.get(indicator.unit, ("", ""))
    owner = monitor.catalogue.sources[indicator.owner]
    return {
        "code": code,
        "source": indicator.owner,
        "source_name_vi": owner.name_vi,
        "source_short_vi": SHORT_NAMES_VI.get(owner.code, owner.name_vi),
        "name_vi": indicator.name_vi,
        "name_en": indicator.name_en,
        "unit": indicator.unit,
        "unit_vi": unit_vi,
        "unit_en": unit_en,
        "area": area,
        "period": period,
        "value": value,
        "basis": basis,
        "reported": (
            {"period": reported[0], "value": reported[1][0], "sent_at": _local(reported[1][3])}
            if reported
            else None
        ),
        "rollup": (
            {
                "period": rolled[0],
                "value": rolled[1][0],
                "children": len((rollup or {}).get("children", {}).get(rolled[0], {})),
            }
            if rolled
            else None
        ),
        "target": (
            {
                "value": goal.value,
                "year": goal.year,
                "direction": goal.direction,
                "basis_vi": goal.basis_vi,
                "basis_en": goal.basis_en,
            }
            if goal is not None
            else None
        ),
        "status": standing.status if standing else None,
        "progress": standing.progress if standing else None,
    }


def build_indicators(
    monitor: WallMonitor,
    coverage: Coverage | None = None,
    codes: Iterable[str] = HEADLINE_INDICATORS,
) -> dict[str, Any]:
    """``GET /api/v1/indicators``: the headline indicators at province level, in order."""
    items = [build_indicator(monitor, code) for code in codes]
    return _envelope(monitor, items, coverage)


# --- alerts ----------------------------------------------------------------------------------


def _alert_item(monitor: WallMonitor, key: str, entry: Mapping[str, Any]) -> dict[str, Any]:
    catalogue = monitor.catalogue
    alertname = entry["alertname"]
    source = catalogue.sources.get(entry["source"])
    indicator = catalogue.indicators.get(entry["indicator"])
    rule = catalogue.rules.get(entry["indicator"])
    area = catalogue.areas.get(entry["area"])
    title_vi, title_en = ALERT_TITLES.get(alertname, (alertname, alertname))
    return {
        "fingerprint": key,
        "alertname": alertname,
        "title_vi": title_vi,
        "title_en": title_en,
        "severity": entry["severity"],
        "source": entry["source"],
        "source_name_vi": source.name_vi if source else None,
        "source_short_vi": SHORT_NAMES_VI.get(entry["source"], source.name_vi if source else None),
        "indicator": entry["indicator"] or None,
        "indicator_name_vi": (
            indicator.name_vi if indicator else rule.summary_vi if rule else None
        ),
        "indicator_name_en": (
            indicator.name_en if indicator else rule.summary_en if rule else None
        ),
        "area": entry["area"] or None,
        "area_name_vi": area.name_vi if area else None,
        "summary_vi": entry["summary_vi"],
        "summary_en": entry["summary_en"],
        "since": _local(entry["since"]),
        "runbook_url": runbook_url(alertname) if alertname in ALERT_TITLES else None,
    }


def build_alerts(monitor: WallMonitor, coverage: Coverage | None = None) -> dict[str, Any]:
    """``GET /api/v1/alerts``: firing alerts of every agent, critical first, then newest."""
    firing: list[tuple[str, Mapping[str, Any]]] = []
    for name in ALERT_TABLES:
        firing.extend(
            (key, entry)
            for key, entry in list(monitor.tables[name].items())
            if entry and entry.get("status") == "firing"
        )
    firing.sort(
        key=lambda item: (
            SEVERITY_RANK.get(item[1]["severity"], len(SEVERITY_RANK)),
            -datetime.fromisoformat(item[1]["since"]).timestamp(),
            item[0],
        )
    )
    items = [_alert_item(monitor, key, entry) for key, entry in firing]
    counts = {severity: 0 for severity in SEVERITY_RANK}
    for item in items:
        counts[item["severity"]] = counts.get(item["severity"], 0) + 1
    return _envelope(monitor, items, coverage) | {"summary": counts}


# --- the web server --------------------------------------------------------------------------

#: The tables each document reads (for ``partitions``).
SOURCES_TABLES: Final = ("reporting",)
INDICATOR_TABLES: Final = ("series", "rollups")


def coverage_of(monitor: Monitor, names: Iterable[str]) -> Coverage:
    """Partitions of the ``names`` tables' changelogs this worker holds, over all of them."""
    try:
        actives = monitor.app.assignor.assigned_actives()
    except AttributeError:  # not assigned yet: the consumer has not joined the group
        actives = set()
    held = total = 0
    for name in names:
        table = monitor.tables[name]
        topic = table.changelog_topic_name
        held += sum(1 for tp in actives if tp.topic == topic)
        total += table.partitions or monitor.settings.partitions
    return Coverage(held, total)


def load_wall_page() -> str:
    """The page's HTML, from the package (``agents/static/wall.html``)."""
    return resources.files("agents").joinpath(WALL_PAGE).read_text(encoding="utf-8")


def _json(web: Any, document: Mapping[str, Any]) -> Any:
    return web.bytes(
        orjson.dumps(document),
        content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


def register_wall(monitor: Monitor) -> None:
    """Add ``/wall`` and its three JSON documents to the worker's web server."""
    app = monitor.app
    page = load_wall_page()

    @app.page("/wall")
    async def wall(web: Any, request: Any) -> Any:
        return web.html(
            page,
            headers={"Cache-Control": "no-store", "Content-Security-Policy": WALL_CSP},
        )

    @app.page("/api/v1/sources")
    async def sources(web: Any, request: Any) -> Any:
        return _json(web, build_sources(monitor, coverage_of(monitor, SOURCES_TABLES)))

    @app.page("/api/v1/indicators")
    async def indicators(web: Any, request: Any) -> Any:
        return _json(web, build_indicators(monitor, coverage_of(monitor, INDICATOR_TABLES)))

    @app.page("/api/v1/alerts")
    async def alerts(web: Any, request: Any) -> Any:
        return _json(web, build_alerts(monitor, coverage_of(monitor, ALERT_TABLES)))
