"""The indicator catalogue: the shipped data, its lookups, and every way a broken file fails."""

from __future__ import annotations

import re
import shutil
import unicodedata
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import TypeAdapter, ValidationError

import streams.catalogue
from ioc.errors import CatalogueError
from streams.catalogue import (
    DATA_DIR,
    Catalogue,
    Deadline,
    Ratio,
    default_catalogue,
    load_catalogue,
)
from streams.catalogue import models as catalogue_models
from streams.periods import Period

ICT = timezone(timedelta(hours=7))
BEFORE_REFORM = date(2025, 6, 30)
AFTER_REFORM = date(2025, 7, 1)


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A private copy of the shipped data, for a test to break."""
    return Path(shutil.copytree(DATA_DIR, tmp_path / "data"))


Mutation = Callable[[list[dict[str, Any]]], None]


def edit(data_dir: Path, file: str, mutate: Mutation) -> None:
    """Load one data file, let ``mutate`` change its entries, write it back."""
    path = data_dir / file
    document = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
    (entries,) = document.values()
    mutate(entries)
    text = yaml.dump(document, Dumper=yaml.CSafeDumper, allow_unicode=True, sort_keys=False)
    path.write_text(text, "utf-8")


def entry(entries: list[dict[str, Any]], code: str) -> dict[str, Any]:
    return next(item for item in entries if item["code"] == code)


def load_error(data_dir: Path) -> str:
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(data_dir)
    assert caught.value.exit_code == 3
    return str(caught.value)


def assert_names(message: str, file: str, code: str, field: str) -> None:
    """The message names the file (with a line), the entry and the field."""
    assert re.search(rf"{re.escape(file)}:\d+", message), message
    assert f"entry '{code}'" in message, message
    assert f"field '{field}'" in message, message
    assert "cần / expected" in message
    assert "nhận được / received" in message


# --- the public surface ----------------------------------------------------------------------


def test_public_names_are_pinned() -> None:
    assert len(set(streams.catalogue.__all__)) == len(streams.catalogue.__all__)
    assert set(streams.catalogue.__all__) == {
        "DATA_DIR",
        "EXPECTED_SOURCE_COUNT",
        "EXPECTED_VERTICALS",
        "HEADLINE_INDICATORS",
        "LEVELS",
        "REQUIRED_SOURCES",
        "SUMMABLE_UNITS",
        "AdminUnit",
        "Benchmark",
        "Catalogue",
        "DailyDeadline",
        "Deadline",
        "HierarchyAggregation",
        "HistoryPoint",
        "Indicator",
        "Level",
        "MonthlyDeadline",
        "ParentLink",
        "QuarterlyDeadline",
        "Ratio",
        "Rule",
        "Severity",
        "Source",
        "SourceKind",
        "Target",
        "TimeAggregation",
        "Unit",
        "ValidRange",
        "WeeklyDeadline",
        "YearlyDeadline",
        "default_catalogue",
        "load_catalogue",
    }


def test_default_catalogue_is_loaded_once() -> None:
    assert default_catalogue() is default_catalogue()


def test_mappings_and_models_are_read_only(catalogue: Catalogue) -> None:
    with pytest.raises(TypeError):
        catalogue.sources["new"] = catalogue.sources["tax"]  # type: ignore[index]
    with pytest.raises(ValidationError):
        catalogue.indicators["cpi"].owner = "ict"  # type: ignore[misc]


# --- sources ---------------------------------------------------------------------------------


def test_41_sources_38_provincial_and_3_vertical(catalogue: Catalogue) -> None:
    assert len(catalogue.sources) == 41
    vertical = {code for code, s in catalogue.sources.items() if s.kind == "vertical"}
    assert vertical == {"tax", "statistics", "sbv"}
    assert len(catalogue.sources) - len(vertical) == 38


def test_vertical_agencies_carry_their_seed_names(catalogue: Catalogue) -> None:
    assert catalogue.sources["tax"].name_vi == "Cục Thuế tỉnh"
    assert catalogue.sources["statistics"].name_vi == "Cục Thống kê tỉnh"
    assert catalogue.sources["sbv"].name_vi == "Ngân hàng Nhà nước chi nhánh tỉnh Sơn La"


def test_required_sources(catalogue: Catalogue) -> None:
    expected = {
        "tax": "vertical",
        "statistics": "vertical",
        "sbv": "vertical",
        "ict": "department",
        "police": "force",
        "health": "department",
        "education": "department",
        "finance": "department",
        "planning": "department",
        "office": "department",
    }
    assert {code: catalogue.sources[code].kind for code in expected} == expected
    assert catalogue.sources["ict"].name_vi == "Sở Thông tin và Truyền thông"
    assert catalogue.sources["planning"].name_vi == "Sở Kế hoạch và Đầu tư"
    assert catalogue.sources["office"].name_vi == "Văn phòng Ủy ban nhân dân tỉnh"
    assert catalogue.sources["police"].name_vi == "Công an tỉnh"


def test_every_source_owns_at_least_two_indicators(catalogue: Catalogue) -> None:
    counts = {code: len(catalogue.indicators_of(code)) for code in catalogue.sources}
    assert min(counts.values()) >= 2, counts
    assert sum(counts.values()) == len(catalogue.indicators)


def test_indicators_of(catalogue: Catalogue) -> None:
    codes = {indicator.code for indicator in catalogue.indicators_of("sbv")}
    assert {"bank_deposits", "credit_outstanding", "non_cash_payment_rate"} <= codes
    assert all(indicator.owner == "sbv" for indicator in catalogue.indicators_of("sbv"))
    with pytest.raises(KeyError, match="unknown source 'nobody'"):
        catalogue.indicators_of("nobody")


def test_all_text_is_nfc(catalogue: Catalogue) -> None:
    names = [s.name_vi for s in catalogue.sources.values()]
    names += [a.name_vi for a in catalogue.areas.values()]
    names += [i.name_vi for i in catalogue.indicators.values()]
    names += [r.summary_vi for r in catalogue.rules.values()]
    assert all(unicodedata.is_normalized("NFC", name) for name in names)


def test_decomposed_text_is_normalised_to_nfc_on_load(data_dir: Path) -> None:
    path = data_dir / "sources.yaml"
    text = path.read_text(encoding="utf-8")
    decomposed = unicodedata.normalize("NFD", "Sở Tư pháp")
    assert decomposed != "Sở Tư pháp"
    path.write_text(text.replace("Sở Tư pháp", decomposed), encoding="utf-8")
    assert decomposed in path.read_text(encoding="utf-8")
    loaded = load_catalogue(data_dir)
    assert loaded.sources["justice"].name_vi == "Sở Tư pháp"


# --- indicators and seed figures -------------------------------------------------------------

# (indicator, area, period, value, seed document): every Sơn La figure of the seeds.
SEED_HISTORY = {
    ("online_application_rate", "son-la", "2023", 69.46, "001"),
    ("dvc_on_national_portal", "son-la", "2023", 500, "001"),
    ("dvc_online_total", "son-la", "2024-Q3", 1886, "000"),
    ("dvc_online_partial", "son-la", "2024-Q3", 312, "000"),
    ("dvc_online_full", "son-la", "2024-Q3", 1554, "000"),
    ("dvc_online_total", "son-la", "2025-Q1", 2001, "004"),
    ("dvc_online_partial", "son-la", "2025-Q1", 322, "004"),
    ("dvc_online_full", "son-la", "2025-Q1", 1679, "004"),
    ("dt_community_teams", "son-la", "2024", 2448, "000"),
    ("dt_community_members", "son-la", "2024", 15101, "000"),
    ("eid_activated", "son-la", "2024-Q3", 539304, "000"),
    ("smartphone_household_rate", "son-la", "2024", 96.36, "000"),
    ("tthc_population_db_linked_rate", "son-la", "2023", 100, "001"),
    ("communes_fibre_4g_rate", "son-la", "2023", 100, "001"),
    ("dt_community_teams", "tp-son-la", "2024", 792, "004"),
    ("dt_school_teams", "tp-son-la", "2024", 52, "004"),
    ("dt_market_teams", "tp-son-la", "2024", 2, "004"),
    ("dt_contest_entries", "son-la", "2024-08-30", 307, "000"),
    ("dt_contest_valid_entries", "son-la", "2024-08-30", 298, "000"),
    ("dt_contest_awards", "son-la", "2024-08-30", 21, "000"),
}

# (indicator, peer province, period, value, qualifier, level, seed document)
SEED_BENCHMARKS = {
    ("online_work_records_rate", "dak-lak", "2023", 95, "more_than", "province", "003"),
    ("online_work_records_rate", "dak-lak", "2023", 75, "exact", "district", "003"),
    ("online_work_records_rate", "dak-lak", "2023", 40, "exact", "commune", "003"),
    ("adult_account_rate", "dak-lak", "2023", 70, "at_least", None, "003"),
    ("essential_dvc_online", "dak-lak", "2024", 53, "exact", None, "003"),
    ("online_contest_participants", "bac-kan", "2024-09", 27002, "exact", None, "002"),
    ("online_contest_citizens", "bac-kan", "2024-09", 6660, "exact", None, "002"),
    ("online_contest_officials", "bac-kan", "2024-09", 20342, "exact", None, "002"),
}


def test_history_is_exactly_the_seed_figures(catalogue: Catalogue) -> None:
    history = {
        (i.code, p.area, str(p.period), p.value, p.source_doc)
        for i in catalogue.indicators.values()
        for p in i.history
    }
    assert history == SEED_HISTORY


def test_peer_figures_are_benchmarks_not_history(catalogue: Catalogue) -> None:
    benchmarks = {
        (i.code, b.province, str(b.period), b.value, b.qualifier, b.level, b.source_doc)
        for i in catalogue.indicators.values()
        for b in i.benchmarks
    }
    assert benchmarks == SEED_BENCHMARKS
    peers = {"dak-lak", "bac-kan"}
    assert not any(p.area in peers for i in catalogue.indicators.values() for p in i.history)


def test_required_indicators(catalogue: Catalogue) -> None:
    expected = {
        "online_application_rate": ("percent", "ict"),
        "dvc_online_total": ("count", "ict"),
        "dvc_online_full": ("count", "ict"),
        "dvc_online_partial": ("count", "ict"),
        "eid_activated": ("count", "police"),
        "smartphone_household_rate": ("percent", "ict"),
        "dt_community_teams": ("count", "ict"),
        "dt_community_members": ("people", "ict"),
        "tax_revenue": ("billion_vnd", "tax"),
        "cpi": ("index", "statistics"),
        "grdp_growth": ("percent_change", "statistics"),
        "non_cash_payment_rate": ("percent", "sbv"),
    }
    actual = {
        code: (catalogue.indicators[code].unit, catalogue.indicators[code].owner)
        for code in expected
    }
    assert actual == expected
    tax = catalogue.indicators["tax_revenue"]
    assert (tax.period_type, tax.time_aggregation, tax.hierarchy_aggregation) == (
        "month",
        "sum",
        "sum",
    )
    cpi = catalogue.indicators["cpi"]
    assert (cpi.period_type, cpi.time_aggregation, cpi.hierarchy_aggregation) == (
        "month",
        "last",
        "none",
    )
    assert catalogue.indicators["grdp_growth"].period_type == "quarter"


def test_the_catalogue_mixes_what_the_monitor_must_handle(catalogue: Catalogue) -> None:
    indicators = list(catalogue.indicators.values())
    assert {i.period_type for i in indicators} == {"day", "week", "month", "quarter", "year"}
    recomputed = [i for i in indicators if i.hierarchy_aggregation == "recompute"]
    assert len(recomputed) >= 2
    commune_sums = [
        i for i in indicators if "commune" in i.levels and i.hierarchy_aggregation == "sum"
    ]
    assert len(commune_sums) >= 5


def test_percent_indicators_stay_within_0_and_100(catalogue: Catalogue) -> None:
    for indicator in catalogue.indicators.values():
        if indicator.unit == "percent":
            assert indicator.valid_range.min >= 0
            assert indicator.valid_range.max is not None
            assert indicator.valid_range.max <= 100


def test_rates_recompute_from_their_components(catalogue: Catalogue) -> None:
    rate = catalogue.indicators["non_cash_payment_rate"]
    assert rate.ratio == Ratio(
        numerator="non_cash_transactions", denominator="payment_transactions", factor=100
    )
    assert rate.ratio.compute(30, 120) == 25
    assert rate.ratio.compute(5, 0) is None
    online = catalogue.indicators["online_application_rate"]
    assert online.ratio is not None
    assert online.ratio.numerator == "applications_online"
    # daily components summed into the yearly rate
    assert catalogue.indicators[online.ratio.numerator].period_type == "day"


def test_targets_name_their_policy_basis(catalogue: Catalogue) -> None:
    bases = {(t.basis_vi, t.basis_en) for i in catalogue.indicators.values() for t in i.targets}
    assert bases == {
        ("Nghị quyết 17-NQ/TU", "Resolution 17-NQ/TU"),
        ("Quyết định 811/QĐ-UBND", "Decision 811/QĐ-UBND"),
        ("Đề án 06", "Project 06"),
    }
    (target,) = catalogue.indicators["online_application_rate"].targets
    assert target.is_met(80)
    assert not target.is_met(69.46)


# --- rules -----------------------------------------------------------------------------------


def _seed_values(catalogue: Catalogue, period: str) -> dict[str, float]:
    return {
        i.code: p.value
        for i in catalogue.indicators.values()
        for p in i.history
        if str(p.period) == period and p.area == "son-la"
    }


def test_published_q3_2024_online_services_break_the_parts_rule(catalogue: Catalogue) -> None:
    rule = catalogue.rules["dvc_online_parts_sum"]
    values = _seed_values(catalogue, "2024-Q3")
    assert rule.gap(values) == 312 + 1554 - 1886 == -20
    assert not rule.holds(values)


def test_early_2025_online_services_satisfy_the_parts_rule(catalogue: Catalogue) -> None:
    assert catalogue.rules["dvc_online_parts_sum"].holds(_seed_values(catalogue, "2025-Q1"))


def test_contest_seed_figures_satisfy_their_rules(catalogue: Catalogue) -> None:
    values = _seed_values(catalogue, "2024-08-30")
    assert catalogue.rules["dt_contest_valid_le_entries"].holds(values)
    assert catalogue.rules["dt_contest_awards_le_valid"].holds(values)
    assert not catalogue.rules["dt_contest_valid_le_entries"].holds(
        {**values, "dt_contest_valid_entries": 308}
    )


def test_rule_tolerance(catalogue: Catalogue) -> None:
    rule = catalogue.rules["traffic_deaths_plausible"]
    assert rule.tolerance == 20
    assert rule.holds({"traffic_accident_deaths": 25, "traffic_accidents": 5})
    assert not rule.holds({"traffic_accident_deaths": 26, "traffic_accidents": 5})
    with pytest.raises(KeyError):
        rule.holds({"traffic_accidents": 5})


def test_rules_for_indicator(catalogue: Catalogue) -> None:
    assert [r.code for r in catalogue.rules_for("dvc_online_total")] == ["dvc_online_parts_sum"]
    assert catalogue.rules_for("cpi") == ()


# --- deadlines -------------------------------------------------------------------------------

deadline_adapter: TypeAdapter[Any] = TypeAdapter(Deadline)


@pytest.mark.parametrize(
    ("deadline", "period", "period_type", "due"),
    [
        ({"kind": "daily", "at": "17:00"}, "2024-09-15", "day", datetime(2024, 9, 15, 17)),
        (
            {"kind": "daily", "days_after": 1, "at": "08:00"},
            "2024-12-31",
            "day",
            datetime(2025, 1, 1, 8),
        ),
        (
            {"kind": "weekly", "weekday": "monday", "at": "12:00"},
            "2024-W37",
            "week",
            datetime(2024, 9, 16, 12),
        ),
        (
            {"kind": "weekly", "weekday": "monday", "at": "12:00"},
            "2024-W52",
            "week",
            datetime(2024, 12, 30, 12),
        ),
        (
            {"kind": "weekly", "weekday": "friday", "at": "16:30"},
            "2020-W53",
            "week",
            datetime(2021, 1, 8, 16, 30),
        ),
        (
            {"kind": "monthly", "day": 5, "at": "17:00"},
            "2024-12",
            "month",
            datetime(2025, 1, 5, 17),
        ),
        (
            {"kind": "monthly", "day": 28, "at": "09:15"},
            "2024-01",
            "month",
            datetime(2024, 2, 28, 9, 15),
        ),
        (
            {"kind": "quarterly", "day": 10, "at": "17:00"},
            "2024-Q4",
            "quarter",
            datetime(2025, 1, 10, 17),
        ),
        (
            {"kind": "quarterly", "day": 10, "at": "17:00"},
            "2024-Q1",
            "quarter",
            datetime(2024, 4, 10, 17),
        ),
        (
            {"kind": "yearly", "month": 1, "day": 31, "at": "17:00"},
            "2024",
            "year",
            datetime(2025, 1, 31, 17),
        ),
        (
            {"kind": "yearly", "month": 3, "day": 31, "at": "23:59"},
            "2024",
            "year",
            datetime(2025, 3, 31, 23, 59),
        ),
    ],
)
def test_deadline_due_at(
    deadline: dict[str, Any], period: str, period_type: Any, due: datetime
) -> None:
    model = deadline_adapter.validate_python(deadline)
    result = model.due_at(Period.parse(period, period_type))
    assert result == due.replace(tzinfo=ICT)
    assert result.utcoffset() == timedelta(hours=7)


def test_deadline_refuses_a_period_of_another_type() -> None:
    monthly = deadline_adapter.validate_python({"kind": "monthly", "day": 5, "at": "17:00"})
    with pytest.raises(ValueError, match="applies to month periods"):
        monthly.due_at(Period.parse("2024-Q3", "quarter"))


@pytest.mark.parametrize(
    ("deadline", "message"),
    [
        ({"kind": "yearly", "month": 2, "day": 29, "at": "17:00"}, "no such day"),
        ({"kind": "monthly", "day": 31, "at": "17:00"}, "less than or equal to 28"),
        ({"kind": "daily", "at": "24:00"}, "HH:MM"),
        ({"kind": "daily", "at": "7:00"}, "HH:MM"),
        ({"kind": "daily", "at": 1020}, "quoted"),
        ({"kind": "weekly", "weekday": "funday", "at": "12:00"}, "monday"),
        ({"kind": "hourly", "at": "12:00"}, "daily"),
    ],
)
def test_invalid_deadlines(deadline: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        deadline_adapter.validate_python(deadline)


def test_catalogue_deadlines(catalogue: Catalogue) -> None:
    indicators = catalogue.indicators
    assert indicators["tax_revenue"].due_at(Period.parse("2024-12", "month")) == datetime(
        2025, 1, 10, 17, tzinfo=ICT
    )
    assert indicators["infectious_disease_cases"].due_at(
        Period.parse("2024-W37", "week")
    ) == datetime(2024, 9, 16, 12, tzinfo=ICT)
    assert indicators["dt_contest_entries"].due_at(Period.parse("2024-08-30", "day")) == (
        datetime(2024, 8, 30, 17, tzinfo=ICT)
    )
    # every deadline falls after the period has started, and within four months of its end
    for indicator in indicators.values():
        period = Period.containing(date(2024, 6, 15), indicator.period_type)
        due = indicator.due_at(period)
        assert period.start < due < period.end + timedelta(days=366 // 3), indicator.code


# --- the administrative hierarchy ------------------------------------------------------------

DISTRICTS = {
    "tp-son-la": "116",
    "quynh-nhai": "118",
    "thuan-chau": "119",
    "muong-la": "120",
    "bac-yen": "121",
    "phu-yen": "122",
    "moc-chau": "123",
    "yen-chau": "124",
    "mai-son": "125",
    "song-ma": "126",
    "sop-cop": "127",
    "van-ho": "128",
}


def test_province_and_twelve_districts(catalogue: Catalogue) -> None:
    assert catalogue.level_of("son-la") == "province"
    assert catalogue.areas["son-la"].official_code == "14"
    assert catalogue.children_of("son-la", date(2024, 1, 1)) == sorted(DISTRICTS)
    assert {code: catalogue.areas[code].official_code for code in DISTRICTS} == DISTRICTS
    assert catalogue.areas_on(date(2024, 1, 1), "district") == sorted(DISTRICTS)


def test_every_district_has_communes_in_the_three_tier_system(catalogue: Catalogue) -> None:
    for district in DISTRICTS:
        communes = catalogue.children_of(district, BEFORE_REFORM)
        assert len(communes) >= 3, district
        assert all(catalogue.level_of(code) == "commune" for code in communes)


def test_before_the_reform_a_ward_sits_under_the_city(catalogue: Catalogue) -> None:
    for day in (date(2024, 9, 15), BEFORE_REFORM):
        assert catalogue.parent_of("tp-son-la.chieng-le", day) == "tp-son-la"
        assert catalogue.ancestors("tp-son-la.chieng-le", day) == ["tp-son-la", "son-la"]
    assert catalogue.level_of("tp-son-la.chieng-le") == "commune"


def test_on_1_july_2025_districts_and_merged_communes_are_gone(catalogue: Catalogue) -> None:
    assert not catalogue.area_exists("tp-son-la", AFTER_REFORM)
    assert not catalogue.area_exists("tp-son-la.chieng-le", AFTER_REFORM)
    assert catalogue.parent_of("tp-son-la.chieng-le", AFTER_REFORM) is None
    assert catalogue.ancestors("tp-son-la.chieng-le", AFTER_REFORM) == []
    assert catalogue.children_of("tp-son-la", AFTER_REFORM) == []
    assert catalogue.areas_on(AFTER_REFORM, "district") == []


def test_after_the_reform_communes_sit_directly_under_the_province(catalogue: Catalogue) -> None:
    units = catalogue.children_of("son-la", AFTER_REFORM)
    assert len(units) == 75
    assert all(catalogue.level_of(code) == "commune" for code in units)
    wards = [code for code in units if catalogue.areas[code].name_vi.startswith("Phường ")]
    assert len(wards) == 8
    assert catalogue.descendants_of("son-la", AFTER_REFORM) == units
    codes = [catalogue.areas[code].official_code for code in units]
    assert len(set(codes)) == 75
    assert catalogue.ancestors("son-la.to-hieu", AFTER_REFORM) == ["son-la"]
    assert not catalogue.area_exists("son-la.to-hieu", BEFORE_REFORM)


def test_communes_kept_whole_are_re_parented(catalogue: Catalogue) -> None:
    kept = {
        "moc-chau.tan-yen": "moc-chau",
        "thuan-chau.muong-bam": "thuan-chau",
        "muong-la.ngoc-chien": "muong-la",
        "phu-yen.suoi-to": "phu-yen",
        "yen-chau.phieng-khoai": "yen-chau",
        "sop-cop.muong-lan": "sop-cop",
        "sop-cop.muong-leo": "sop-cop",
    }
    for code, district in kept.items():
        assert catalogue.parent_of(code, BEFORE_REFORM) == district
        assert catalogue.parent_of(code, AFTER_REFORM) == "son-la"
        assert catalogue.ancestors(code, AFTER_REFORM) == ["son-la"]
        assert catalogue.successor_of(code) is None
        assert code in catalogue.children_of("son-la", AFTER_REFORM)


def test_merged_communes_name_their_successor(catalogue: Catalogue) -> None:
    assert catalogue.successor_of("tp-son-la.quyet-thang") == "son-la.to-hieu"
    assert catalogue.predecessors_of("son-la.to-hieu") == (
        "tp-son-la.chieng-le",
        "tp-son-la.quyet-tam",
        "tp-son-la.quyet-thang",
        "tp-son-la.to-hieu",
    )
    # a merger across former districts: Chiềng Xuân (Vân Hồ) + Chiềng Sơn (Mộc Châu)
    assert catalogue.predecessors_of("son-la.chieng-son") == (
        "moc-chau.chieng-son",
        "van-ho.chieng-xuan",
    )


def test_official_codes_are_reused_across_the_reform(catalogue: Catalogue) -> None:
    old, new = catalogue.areas["tp-son-la.chieng-le"], catalogue.areas["son-la.to-hieu"]
    assert old.official_code == new.official_code == "03646"
    assert not old.exists_on(AFTER_REFORM)
    assert not new.exists_on(BEFORE_REFORM)


def test_van_ho_communes_belonged_to_moc_chau_until_june_2013(catalogue: Catalogue) -> None:
    assert not catalogue.area_exists("van-ho", date(2013, 6, 9))
    assert catalogue.area_exists("van-ho", date(2013, 6, 10))
    assert catalogue.parent_of("van-ho.long-luong", date(2013, 6, 9)) == "moc-chau"
    assert catalogue.parent_of("van-ho.long-luong", date(2013, 6, 10)) == "van-ho"
    assert catalogue.ancestors("van-ho.long-luong", date(2010, 1, 1)) == ["moc-chau", "son-la"]
    assert "van-ho.long-luong" in catalogue.descendants_of("moc-chau", date(2010, 1, 1))
    assert "van-ho.long-luong" not in catalogue.descendants_of("moc-chau", date(2020, 1, 1))


def test_datetimes_are_read_in_local_time(catalogue: Catalogue) -> None:
    # 17:00 UTC on 30 June 2025 is already 1 July in Sơn La.
    moment = datetime(2025, 6, 30, 17, tzinfo=UTC)
    assert catalogue.parent_of("sop-cop.muong-lan", moment) == "son-la"
    assert catalogue.parent_of("sop-cop.muong-lan", moment - timedelta(seconds=1)) == "sop-cop"


def test_descendants_by_level(catalogue: Catalogue) -> None:
    communes = catalogue.descendants_of("son-la", date(2024, 1, 1), level="commune")
    assert "tp-son-la.chieng-le" in communes
    assert not any(code.startswith("son-la.") for code in communes)
    assert catalogue.descendants_of("son-la", date(2024, 1, 1), level="district") == sorted(
        DISTRICTS
    )


def test_unknown_area(catalogue: Catalogue) -> None:
    with pytest.raises(KeyError, match="unknown area 'atlantis'"):
        catalogue.parent_of("atlantis", AFTER_REFORM)
    with pytest.raises(KeyError):
        catalogue.children_of("atlantis", AFTER_REFORM)


# --- broken files: every problem names the file, the entry and the field ---------------------


def test_the_shipped_data_loads(data_dir: Path) -> None:
    assert len(load_catalogue(data_dir).indicators) == len(load_catalogue().indicators)


def test_duplicate_code(data_dir: Path) -> None:
    edit(data_dir, "sources.yaml", lambda e: e.append({**entry(e, "tax"), "name_en": "Again"}))
    message = load_error(data_dir)
    assert_names(message, "sources.yaml", "tax", "code")
    assert "duplicate code" in message
    assert "mã bị trùng" in message


def test_unknown_owner(data_dir: Path) -> None:
    edit(data_dir, "indicators.yaml", lambda e: entry(e, "cpi").update(owner="statistic"))
    message = load_error(data_dir)
    assert_names(message, "indicators.yaml", "cpi", "owner")
    assert "'statistic'" in message
    assert "the owner is not a source" in message


def test_every_problem_of_a_file_is_reported_together(data_dir: Path) -> None:
    def break_three(entries: list[dict[str, Any]]) -> None:
        entry(entries, "cpi").update(period_type="fortnight")
        entry(entries, "tax_revenue").update(levels=[])
        entry(entries, "grdp_growth").update(unit="furlongs")

    edit(data_dir, "indicators.yaml", break_three)
    message = load_error(data_dir)
    assert "(3 problems)" in message
    assert_names(message, "indicators.yaml", "cpi", "period_type")
    assert_names(message, "indicators.yaml", "tax_revenue", "levels")
    assert_names(message, "indicators.yaml", "grdp_growth", "unit")


def test_every_broken_reference_is_reported_together(data_dir: Path) -> None:
    def break_two(entries: list[dict[str, Any]]) -> None:
        entry(entries, "cpi").update(owner="nobody")
        entry(entries, "tax_revenue").update(owner="nobody")

    edit(data_dir, "indicators.yaml", break_two)
    message = load_error(data_dir)
    assert "(2 problems)" in message
    assert_names(message, "indicators.yaml", "cpi", "owner")
    assert_names(message, "indicators.yaml", "tax_revenue", "owner")


def test_references_are_checked_once_every_file_is_well_formed(data_dir: Path) -> None:
    """A malformed entry would make its references look broken: report it alone first."""

    def mutate(entries: list[dict[str, Any]]) -> None:
        entry(entries, "cpi").update(owner="nobody", unit="furlongs")

    edit(data_dir, "indicators.yaml", mutate)
    message = load_error(data_dir)
    assert "(1 problem)" in message
    assert "field 'unit'" in message


def test_unknown_ratio_component(data_dir: Path) -> None:
    def mutate(entries: list[dict[str, Any]]) -> None:
        entry(entries, "poverty_rate")["ratio"]["numerator"] = "poor_people"

    edit(data_dir, "indicators.yaml", mutate)
    message = load_error(data_dir)
    assert_names(message, "indicators.yaml", "poverty_rate", "ratio.numerator")
    assert "'poor_people'" in message


def test_ratio_component_that_cannot_be_summed(data_dir: Path) -> None:
    def mutate(entries: list[dict[str, Any]]) -> None:
        entry(entries, "poverty_rate")["ratio"]["denominator"] = "cpi"

    edit(data_dir, "indicators.yaml", mutate)
    message = load_error(data_dir)
    assert_names(message, "indicators.yaml", "poverty_rate", "ratio.denominator")
    assert "cpi (index, none)" in message
    assert "cpi (month, last)" in message  # nor does a month add up to a year when not summed


def test_recompute_without_ratio(data_dir: Path) -> None:
    edit(data_dir, "indicators.yaml", lambda e: entry(e, "poverty_rate").pop("ratio"))
    message = load_error(data_dir)
    assert_names(message, "indicators.yaml", "poverty_rate", "ratio")
    assert "'recompute' needs a ratio" in message


def test_summing_a_percent_is_refused(data_dir: Path) -> None:
    edit(
        data_dir,
        "indicators.yaml",
        lambda e: entry(e, "smartphone_household_rate").update(hierarchy_aggregation="sum"),
    )
    message = load_error(data_dir)
    assert_names(message, "indicators.yaml", "smartphone_household_rate", "hierarchy_aggregation")
    assert "values in 'percent' cannot be added" in message


def test_percent_range_beyond_100(data_dir: Path) -> None:
    edit(
        data_dir,
        "indicators.yaml",
        lambda e: entry(e, "cpi").update(unit="percent", valid_range={"min": 0, "max": 200}),
    )
    message = load_error(data_dir)
    assert_names(message, "indicators.yaml", "cpi", "valid_range")
    assert "0..200" in message


def test_unknown_rule_indicator(data_dir: Path) -> None:
    edit(
        data_dir,
        "rules.yaml",
        lambda e: entry(e, "dvc_online_parts_sum").update(right=["dvc_online_all"]),
    )
    message = load_error(data_dir)
    assert_names(message, "rules.yaml", "dvc_online_parts_sum", "right[0]")
    assert "'dvc_online_all'" in message


def test_rule_mixing_period_types(data_dir: Path) -> None:
    edit(data_dir, "rules.yaml", lambda e: entry(e, "non_cash_le_payments").update(right=["cpi"]))
    message = load_error(data_dir)
    assert_names(message, "rules.yaml", "non_cash_le_payments", "left")
    assert "cpi: month/index" in message


def test_unknown_parent_area(data_dir: Path) -> None:
    def mutate(entries: list[dict[str, Any]]) -> None:
        entry(entries, "sop-cop.muong-lan")["parents"][0]["parent"] = "sop-kop"

    edit(data_dir, "areas.yaml", mutate)
    message = load_error(data_dir)
    assert_names(message, "areas.yaml", "sop-cop.muong-lan", "parents[0].parent")
    assert "'sop-kop'" in message


def test_parent_of_a_lower_level(data_dir: Path) -> None:
    def mutate(entries: list[dict[str, Any]]) -> None:
        entry(entries, "quynh-nhai")["parents"][0]["parent"] = "tp-son-la.chieng-le"

    edit(data_dir, "areas.yaml", mutate)
    message = load_error(data_dir)
    assert_names(message, "areas.yaml", "quynh-nhai", "parents[0].parent")
    assert "tp-son-la.chieng-le (commune)" in message


def test_parent_cycle(data_dir: Path) -> None:
    def mutate(entries: list[dict[str, Any]]) -> None:
        entry(entries, "quynh-nhai")["parents"][0]["parent"] = "muong-la"
        entry(entries, "muong-la")["parents"][0]["parent"] = "quynh-nhai"

    edit(data_dir, "areas.yaml", mutate)
    message = load_error(data_dir)
    assert "the parent links form a cycle" in message
    assert "muong-la → quynh-nhai → muong-la" in message
    assert "field 'parents'" in message


def test_gap_between_parent_links(data_dir: Path) -> None:
    def mutate(entries: list[dict[str, Any]]) -> None:
        entry(entries, "sop-cop.muong-lan")["parents"][1]["valid_from"] = date(2025, 7, 2)

    edit(data_dir, "areas.yaml", mutate)
    message = load_error(data_dir)
    assert_names(message, "areas.yaml", "sop-cop.muong-lan", "parents[1].valid_from")
    assert "2025-07-01" in message
    assert "2025-07-02" in message


def test_parent_that_did_not_exist_yet(data_dir: Path) -> None:
    def mutate(entries: list[dict[str, Any]]) -> None:
        entry(entries, "van-ho.long-luong")["parents"] = [
            {"parent": "van-ho", "valid_to": date(2025, 6, 30)}
        ]

    edit(data_dir, "areas.yaml", mutate)
    message = load_error(data_dir)
    assert_names(message, "areas.yaml", "van-ho.long-luong", "parents[0]")
    assert "the parent does not exist for the whole link" in message


def test_history_period_of_the_wrong_type(data_dir: Path) -> None:
    def mutate(entries: list[dict[str, Any]]) -> None:
        entry(entries, "smartphone_household_rate")["history"][0]["period"] = "2024-09"

    edit(data_dir, "indicators.yaml", mutate)
    message = load_error(data_dir)
    assert_names(message, "indicators.yaml", "smartphone_household_rate", "history[0].period")
    assert "the period is not a year" in message


def test_history_value_outside_the_valid_range(data_dir: Path) -> None:
    def mutate(entries: list[dict[str, Any]]) -> None:
        entry(entries, "online_application_rate")["history"][0]["value"] = 169.46

    edit(data_dir, "indicators.yaml", mutate)
    message = load_error(data_dir)
    assert_names(message, "indicators.yaml", "online_application_rate", "history[0].value")
    assert "expected: 0..100; nhận được / received: 169.46" in message


def test_history_area_unknown(data_dir: Path) -> None:
    def mutate(entries: list[dict[str, Any]]) -> None:
        entry(entries, "eid_activated")["history"][0]["area"] = "dien-bien"

    edit(data_dir, "indicators.yaml", mutate)
    message = load_error(data_dir)
    assert_names(message, "indicators.yaml", "eid_activated", "history[0].area")
    assert "'dien-bien'" in message


def test_history_area_at_a_level_the_indicator_does_not_report(data_dir: Path) -> None:
    def mutate(entries: list[dict[str, Any]]) -> None:
        entry(entries, "dt_school_teams")["history"][0]["area"] = "tp-son-la.chieng-le"

    edit(data_dir, "indicators.yaml", mutate)
    message = load_error(data_dir)
    assert_names(message, "indicators.yaml", "dt_school_teams", "history[0].area")
    assert "tp-son-la.chieng-le (commune)" in message


def test_history_area_that_did_not_exist_in_the_period(data_dir: Path) -> None:
    def mutate(entries: list[dict[str, Any]]) -> None:
        entry(entries, "dt_community_teams")["history"][1]["area"] = "son-la.to-hieu"

    edit(data_dir, "indicators.yaml", mutate)
    message = load_error(data_dir)
    assert_names(message, "indicators.yaml", "dt_community_teams", "history[1].area")
    assert "the area did not exist during the period" in message


def test_deadline_for_another_period_type(data_dir: Path) -> None:
    def mutate(entries: list[dict[str, Any]]) -> None:
        entry(entries, "cpi")["deadline"] = {"kind": "quarterly", "day": 6, "at": "17:00"}

    edit(data_dir, "indicators.yaml", mutate)
    message = load_error(data_dir)
    assert_names(message, "indicators.yaml", "cpi", "deadline.kind")
    assert "expected: monthly; nhận được / received: quarterly" in message


def test_unquoted_time_is_explained(data_dir: Path) -> None:
    path = data_dir / "indicators.yaml"
    header, key, body = path.read_text(encoding="utf-8").partition("\nindicators:\n")
    path.write_text(header + key + body.replace('at: "17:00"', "at: 17:00", 1), "utf-8")
    message = load_error(data_dir)
    assert "online_application_rate" in message
    assert "field 'deadline.yearly.at'" in message
    assert 'quoted "HH:MM"' in message


def test_unknown_field(data_dir: Path) -> None:
    edit(data_dir, "sources.yaml", lambda e: entry(e, "ict").update(email="stttt@sonla.gov.vn"))
    message = load_error(data_dir)
    assert_names(message, "sources.yaml", "ict", "email")
    assert "trường không có trong lược đồ" in message


def test_missing_field(data_dir: Path) -> None:
    edit(data_dir, "sources.yaml", lambda e: entry(e, "ict").pop("kind"))
    message = load_error(data_dir)
    assert_names(message, "sources.yaml", "ict", "kind")
    assert "thiếu trường bắt buộc" in message


def test_forty_sources_break_the_contract(data_dir: Path) -> None:
    def drop_owned(entries: list[dict[str, Any]]) -> None:
        entries[:] = [item for item in entries if item["owner"] != "study_promotion"]

    edit(data_dir, "sources.yaml", lambda e: e.remove(entry(e, "study_promotion")))
    edit(data_dir, "indicators.yaml", drop_owned)
    message = load_error(data_dir)
    assert "(1 problem)" in message
    assert "sources.yaml: mục / entry '(file)', trường / field 'sources'" in message
    assert "expected: 41; nhận được / received: 40" in message


def test_a_fourth_vertical_agency_breaks_the_contract(data_dir: Path) -> None:
    edit(data_dir, "sources.yaml", lambda e: entry(e, "finance").update(kind="vertical"))
    message = load_error(data_dir)
    assert_names(message, "sources.yaml", "finance", "kind")
    assert "only tax, statistics and sbv are vertical agencies" in message


def test_a_vertical_agency_made_provincial_breaks_the_contract(data_dir: Path) -> None:
    edit(data_dir, "sources.yaml", lambda e: entry(e, "sbv").update(kind="department"))
    message = load_error(data_dir)
    assert_names(message, "sources.yaml", "sbv", "kind")


def test_yaml_syntax_error_names_the_line(data_dir: Path) -> None:
    path = data_dir / "rules.yaml"
    lines = path.read_text(encoding="utf-8").splitlines()
    index = lines.index("  - code: dt_contest_valid_le_entries")
    lines[index] += ": oops"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    message = load_error(data_dir)
    assert f"rules.yaml:{index + 1}:" in message
    assert "YAML syntax error" in message
    assert f"line {index + 1}, cột / column" in message


def test_duplicate_key_names_the_line(data_dir: Path) -> None:
    path = data_dir / "rules.yaml"
    lines = path.read_text(encoding="utf-8").splitlines()
    index = lines.index("    severity: critical")
    lines.insert(index + 1, "    severity: info")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    message = load_error(data_dir)
    assert f"rules.yaml:{index + 2}:" in message
    assert "found the key 'severity' twice" in message


def test_missing_file(data_dir: Path) -> None:
    (data_dir / "rules.yaml").unlink()
    message = load_error(data_dir)
    assert "rules.yaml: mục / entry '(file)'" in message
    assert "file not found" in message


def test_wrong_top_level_key(data_dir: Path) -> None:
    path = data_dir / "rules.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("rules:", "checks:"), "utf-8")
    message = load_error(data_dir)
    assert "rules.yaml:1" in message
    assert "a mapping with the single key 'rules'" in message
    assert "['checks']" in message


def test_problems_in_several_files_are_reported_together(data_dir: Path) -> None:
    edit(data_dir, "sources.yaml", lambda e: entry(e, "ict").update(kind="ministry"))
    edit(data_dir, "rules.yaml", lambda e: entry(e, "non_cash_le_payments").update(op="!="))
    message = load_error(data_dir)
    assert "(2 problems)" in message
    assert_names(message, "sources.yaml", "ict", "kind")
    assert_names(message, "rules.yaml", "non_cash_le_payments", "op")


def test_the_format_takes_more_communes_unchanged(data_dir: Path) -> None:
    """A new commune of the three-tier system, re-parented like the brief's example."""

    def mutate(entries: list[dict[str, Any]]) -> None:
        entries.append(
            {
                "code": "moc-chau.phieng-luong",
                "name_vi": "Xã Phiêng Luông",
                "name_en": "Phieng Luong Commune",
                "level": "commune",
                "official_code": "04033",
                "valid_to": date(2025, 6, 30),
                "parents": [{"parent": "moc-chau", "valid_to": date(2025, 6, 30)}],
                "successor": "son-la.van-son",
            }
        )

    edit(data_dir, "areas.yaml", mutate)
    loaded = load_catalogue(data_dir)
    assert loaded.parent_of("moc-chau.phieng-luong", date(2024, 1, 1)) == "moc-chau"
    assert loaded.predecessors_of("son-la.van-son") == ("moc-chau.phieng-luong",)


def test_official_code_clash_between_units_of_the_same_time(data_dir: Path) -> None:
    edit(
        data_dir,
        "areas.yaml",
        lambda e: entry(e, "tp-son-la.quyet-tam").update(official_code="03646"),
    )
    message = load_error(data_dir)
    assert "official_code" in message
    assert "03646" in message


def test_nested_problems_point_at_their_own_line(data_dir: Path) -> None:
    path = data_dir / "indicators.yaml"
    lines = path.read_text(encoding="utf-8").splitlines()
    (index,) = [i for i, line in enumerate(lines) if "value: 69.46" in line]
    lines[index] = lines[index].replace("value: 69.46", "value: 169.46")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    message = load_error(data_dir)
    assert f"indicators.yaml:{index + 1}: mục / entry 'online_application_rate'" in message


def test_models_round_trip_through_json(catalogue: Catalogue) -> None:
    for indicator in catalogue.indicators.values():
        dumped = indicator.model_dump(mode="json")
        assert type(indicator).model_validate(dumped) == indicator
    assert catalogue.indicators["dvc_online_total"].model_dump(mode="json")["history"][0] == {
        "area": "son-la",
        "period": "2024-Q3",
        "value": 1886.0,
        "source_doc": "000",
        "note": None,
    }


def test_parents_remembered_agree_with_the_links_and_stay_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(catalogue_models, "PARENTS_KEPT", 50)
    catalogue = load_catalogue()
    unit = catalogue.areas["sop-cop.muong-lan"]
    days = [date(2025, 6, 1) + timedelta(days=n) for n in range(60)]  # across 1 July 2025
    for _ in range(2):  # the second time from what was remembered
        for day in days:
            assert catalogue.parent_of(unit.code, day) == unit.parent_on(day)
            assert len(catalogue._parents) <= 50
    assert {catalogue.parent_of(unit.code, day) for day in days} == {"sop-cop", "son-la"}
