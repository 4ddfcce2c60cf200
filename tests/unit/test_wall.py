"""The wall's JSON documents are built from the tables at request time; the page is offline."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from agents.metrics import ALERT_TABLES
from agents.wall import (
    SHORT_NAMES_VI,
    UNIT_LABELS,
    Coverage,
    build_alerts,
    build_indicators,
    build_sources,
    load_wall_page,
    source_status,
)
from ioc.settings import Settings
from streams.catalogue import HEADLINE_INDICATORS, default_catalogue
from streams.periods import LOCAL_TZ

NOW = datetime(2025, 3, 4, 8, 30, tzinfo=LOCAL_TZ)


@dataclass(frozen=True)
class FixedClock:
    moment: datetime

    def now(self) -> datetime:
        return self.moment

    def wall_seconds_until(self, moment: datetime) -> float:
        return max(0.0, (moment - self.moment).total_seconds())


def fake_monitor(**settings: Any) -> Any:
    tables: dict[str, dict[str, Any]] = {
        name: {} for name in ("series", "rollups", "reporting", *ALERT_TABLES)
    }
    return SimpleNamespace(
        tables=tables,
        catalogue=default_catalogue(),
        clock=FixedClock(NOW),
        settings=Settings(**settings),
    )


def by_code(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["code"]: item for item in document["items"]}


def reporting_state(**fields: Any) -> dict[str, Any]:
    return {"watch_since": "2025-03-04T06:30:00+07:00", "periods": {}} | fields


# --- sources ---------------------------------------------------------------------------------


def test_every_catalogue_source_is_listed_even_before_anything_is_seen() -> None:
    monitor = fake_monitor()
    document = build_sources(monitor)

    assert document["count"] == len(document["items"]) == 41
    assert [item["code"] for item in document["items"]] == list(monitor.catalogue.sources)
    assert {item["status"] for item in document["items"]} == {"waiting"}
    assert document["summary"] == {"ok": 0, "overdue": 0, "waiting": 41}
    tax = by_code(document)["tax"]
    assert tax["name_vi"] == "Cục Thuế tỉnh"
    assert tax["short_vi"] == "Cục Thuế"
    assert tax["kind"] == "vertical"
    assert tax["last_report"] is None
    assert tax["reporting_rate"] is None


def test_source_status_follows_the_reporting_state() -> None:
    monitor = fake_monitor()
    reporting = monitor.tables["reporting"]
    reporting["tax"] = reporting_state(
        overdue=["e_invoices_issued"], reporting_rate=0.0, on_time_rate=None
    )
    reporting["police"] = reporting_state(
        last_report="2025-03-03T23:30:00+00:00", overdue=[], reporting_rate=0.5, on_time_rate=1.0
    )
    reporting["ict"] = reporting_state(overdue=[], reporting_rate=None, on_time_rate=None)

    document = build_sources(monitor)
    items = by_code(document)

    assert items["tax"]["status"] == "overdue"
    assert items["tax"]["overdue"] == [
        {
            "code": "e_invoices_issued",
            "name_vi": "Số hóa đơn điện tử có mã của cơ quan thuế",
            "name_en": "E-invoices issued with a tax authority code",
        }
    ]
    assert items["police"]["status"] == "ok"
    assert items["police"]["last_report"] == "2025-03-04T06:30:00+07:00"  # shown in local time
    assert items["police"]["reporting_rate"] == 0.5
    assert items["police"]["on_time_rate"] == 1.0
    assert items["ict"]["status"] == "waiting"  # judged, but nothing due yet
    assert document["summary"] == {"ok": 1, "overdue": 1, "waiting": 39}


@pytest.mark.parametrize(
    ("state", "status"),
    [
        (None, "waiting"),
        ({}, "waiting"),
        ({"overdue": [], "reporting_rate": None}, "waiting"),
        ({"overdue": [], "reporting_rate": 1.0}, "ok"),
        ({"overdue": ["x"], "reporting_rate": 0.9}, "overdue"),
    ],
)
def test_source_status(state: dict[str, Any] | None, status: str) -> None:
    assert source_status(state) == status


def test_every_source_has_a_short_name_for_its_tile() -> None:
    catalogue = default_catalogue()
    assert set(SHORT_NAMES_VI) == set(catalogue.sources)
    assert all(len(name) <= 20 for name in SHORT_NAMES_VI.values())


def test_the_envelope_tells_the_clock_and_the_partitions_held() -> None:
    monitor = fake_monitor(clock_start=NOW - timedelta(hours=1), clock_epoch=1.0, clock_speed=200.0)
    document = build_sources(monitor, Coverage(held=1, total=2))

    assert document["clock"] == "2025-03-04T08:30:00+07:00"
    assert document["simulated"] is True
    assert document["clock_speed"] == 200.0
    assert document["partitions"] == {"held": 1, "total": 2, "complete": False}
    assert datetime.fromisoformat(document["generated_at"]).utcoffset() == timedelta(hours=7)

    real = build_sources(fake_monitor())
    assert real["simulated"] is False
    assert real["clock_speed"] == 1.0
    assert real["partitions"] is None


# --- headline indicators ---------------------------------------------------------------------


def series_row(source: str, indicator: str, periods: dict[str, float]) -> dict[str, Any]:
    return {
        "source": source,
        "indicator": indicator,
        "area": "son-la",
        "level": "province",
        "periods": {p: [v, None, None, "2025-03-04T06:00:00+07:00"] for p, v in periods.items()},
    }


def test_headline_indicators_stand_against_their_targets() -> None:
    monitor = fake_monitor(target_margin=0.1)
    series = monitor.tables["series"]
    series["online_application_rate|son-la"] = series_row(
        "ict", "online_application_rate", {"2023": 69.46, "2024": 85.0}
    )
    series["smartphone_household_rate|son-la"] = series_row(
        "ict", "smartphone_household_rate", {"2024": 96.36}
    )
    series["non_cash_payment_rate|son-la"] = series_row(
        "sbv", "non_cash_payment_rate", {"2025-01": 30.0}
    )
    series["tax_revenue|son-la"] = series_row("tax", "tax_revenue", {"2025-01": 812.5})

    document = build_indicators(monitor)
    items = by_code(document)

    assert [item["code"] for item in document["items"]] == list(HEADLINE_INDICATORS)
    rate = items["online_application_rate"]
    assert (rate["period"], rate["value"], rate["basis"]) == ("2024", 85.0, "reported")
    assert rate["target"] == {
        "value": 80.0,
        "year": 2025,
        "direction": "at_least",
        "basis_vi": "Nghị quyết 17-NQ/TU",
        "basis_en": "Resolution 17-NQ/TU",
    }
    assert rate["status"] == "on_track"
    assert rate["progress"] == pytest.approx(85 / 80)
    assert (rate["unit"], rate["unit_vi"]) == ("percent", "%")
    assert rate["name_vi"].startswith("Tỷ lệ hồ sơ")

    assert items["smartphone_household_rate"]["status"] == "at_risk"  # 96.36 within 10 % of 98
    assert items["non_cash_payment_rate"]["status"] == "off_track"  # 30 against 50
    revenue = items["tax_revenue"]
    assert revenue["value"] == 812.5
    assert revenue["target"] is None
    assert revenue["status"] is None
    assert revenue["unit_vi"] == "tỷ đồng"

    nothing = items["dvc_online_total"]
    assert (nothing["value"], nothing["period"], nothing["status"]) == (None, None, None)
    assert nothing["reported"] is None
    assert nothing["rollup"] is None


def test_the_province_rollup_is_shown_and_used_when_nothing_newer_is_reported() -> None:
    monitor = fake_monitor(target_margin=0.1)
    monitor.tables["rollups"]["eid_activated|son-la"] = {
        "source": "police",
        "indicator": "eid_activated",
        "area": "son-la",
        "level": "province",
        "children": {"2024-Q4": {"moc-chau": {"c": [600000, None, None]}, "mai-son": {}}},
        "values": {"2024-Q4": [780000.0, None, None]},
    }
    rolled_only = by_code(build_indicators(monitor))["eid_activated"]
    assert (rolled_only["period"], rolled_only["value"]) == ("2024-Q4", 780000.0)
    assert rolled_only["basis"] == "rollup"
    assert rolled_only["rollup"] == {"period": "2024-Q4", "value": 780000.0, "children": 2}
    assert rolled_only["status"] == "at_risk"  # Project 06: 800,000 by 2025

    # The province's own report of the same period is the published figure.
    monitor.tables["series"]["eid_activated|son-la"] = series_row(
        "police", "eid_activated", {"2024-Q3": 539304, "2024-Q4": 810000}
    )
    reported = by_code(build_indicators(monitor))["eid_activated"]
    assert (reported["value"], reported["basis"], reported["status"]) == (
        810000,
        "reported",
        "on_track",
    )
    assert reported["reported"]["period"] == "2024-Q4"
    assert reported["rollup"]["value"] == 780000.0


def test_every_headline_indicator_is_in_the_catalogue_with_a_unit_label() -> None:
    catalogue = default_catalogue()
    for code in HEADLINE_INDICATORS:
        assert catalogue.indicators[code].unit in UNIT_LABELS
    assert all(unit in UNIT_LABELS for unit in {i.unit for i in catalogue.indicators.values()})


# --- alerts ----------------------------------------------------------------------------------


def alert_entry(
    alertname: str, severity: str, source: str, since: datetime, status: str = "firing", **kw: str
) -> dict[str, Any]:
    return {
        "alertname": alertname,
        "severity": severity,
        "source": source,
        "indicator": kw.get("indicator", ""),
        "area": kw.get("area", ""),
        "summary_vi": kw.get("summary_vi", "tóm tắt"),
        "summary_en": kw.get("summary_en", "summary"),
        "status": status,
        "since": since.isoformat(),
    }


def test_alerts_are_the_firing_ones_of_every_table_critical_first_then_newest() -> None:
    monitor = fake_monitor()
    tables = monitor.tables
    early, late = NOW - timedelta(hours=2), NOW - timedelta(minutes=5)
    tables["alerts_sources"]["source_overdue|tax||"] = alert_entry(
        "source_overdue", "warning", "tax", early
    )
    tables["alerts_series"]["target_off_track|office|tthc_population_db_linked_rate|son-la"] = (
        alert_entry(
            "target_off_track",
            "warning",
            "office",
            late,
            indicator="tthc_population_db_linked_rate",
            area="son-la",
        )
    )
    tables["alerts_rules"]["validation_rule|ict|dvc_online_parts_sum|son-la"] = alert_entry(
        "validation_rule",
        "critical",
        "ict",
        early.astimezone(datetime.now().astimezone().tzinfo),
        indicator="dvc_online_parts_sum",
        area="son-la",
    )
    tables["alerts_series"]["outlier|ict|cyber_incidents|son-la"] = alert_entry(
        "outlier", "warning", "ict", NOW, status="pending", indicator="cyber_incidents"
    )
    tables["alerts_ingest"]["gone"] = None  # a deleted key reads as the table default

    document = build_alerts(monitor)

    assert [item["alertname"] for item in document["items"]] == [
        "validation_rule",
        "target_off_track",
        "source_overdue",
    ]
    assert document["count"] == 3
    assert document["summary"] == {"critical": 1, "warning": 2, "info": 0}
    rule, target, overdue = document["items"]
    assert rule["since"] == early.isoformat()  # +07:00 whatever it was stored in
    assert rule["indicator_name_vi"] == monitor.catalogue.rules["dvc_online_parts_sum"].summary_vi
    assert target == {
        "fingerprint": "target_off_track|office|tthc_population_db_linked_rate|son-la",
        "alertname": "target_off_track",
        "title_vi": "Chỉ tiêu chệch mục tiêu",
        "title_en": "Indicator off track",
        "severity": "warning",
        "source": "office",
        "source_name_vi": "Văn phòng Ủy ban nhân dân tỉnh",
        "source_short_vi": "VP UBND tỉnh",
        "indicator": "tthc_population_db_linked_rate",
        "indicator_name_vi": (
            "Tỷ lệ thủ tục hành chính kết nối với Cơ sở dữ liệu quốc gia về dân cư"
        ),
        "indicator_name_en": (
            "Share of administrative procedures linked to the national population database"
        ),
        "area": "son-la",
        "area_name_vi": monitor.catalogue.areas["son-la"].name_vi,
        "summary_vi": "tóm tắt",
        "summary_en": "summary",
        "since": late.isoformat(),
        "runbook_url": "docs/runbooks.md#ioctargetofftrack",
    }
    assert overdue["indicator"] is None
    assert overdue["area"] is None
    assert overdue["runbook_url"] == "docs/runbooks.md#iocsourceoverdue"


def test_no_alerts_is_an_empty_list() -> None:
    document = build_alerts(fake_monitor())
    assert document["items"] == []
    assert document["count"] == 0


# --- the page --------------------------------------------------------------------------------


def test_the_page_loads_nothing_from_elsewhere() -> None:
    page = load_wall_page()
    assert "http://" not in page
    assert "https://" not in page
    assert "//" not in " ".join(re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', page))
    assert not re.search(r"<(?:link|img|iframe|object|embed)\b", page)
    assert not re.search(r"<script[^>]*\bsrc=", page)
    assert not re.search(r"@import|url\(", page)


def test_the_page_has_the_test_ids_and_speaks_vietnamese_first() -> None:
    page = load_wall_page()
    for test_id in (
        "source-tile",
        "indicator",
        "alert",
        "clock",
        "connection",
        "connection-lost",
        "last-updated",
        "coverage",
    ):
        assert test_id in page
    for path in ("api/v1/sources", "api/v1/indicators", "api/v1/alerts"):
        assert path in page
    assert '<html lang="vi">' in page
    assert "mất kết nối" in page.lower()
    assert "connection lost" in page.lower()
