"""Events checked against the catalogue: each breach has its own reason and names the field."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from streams.catalogue import default_catalogue
from streams.events import IndicatorEvent
from streams.validation import REJECTION_REASONS, check_against_catalogue

NOW = datetime(2025, 9, 1, 3, 0, tzinfo=UTC)


def event(**changes: Any) -> IndicatorEvent:
    fields: dict[str, Any] = {
        "event_id": uuid.uuid4(),
        "source": "ict",
        "indicator": "online_application_rate",
        "area": "son-la",
        "period": "2023",
        "value": 69.46,
        "observed_at": NOW - timedelta(days=200),
        "sent_at": NOW - timedelta(days=199),
    }
    return IndicatorEvent(**(fields | changes))


def test_seed_figure_keeps_the_contract() -> None:
    assert check_against_catalogue(event(), default_catalogue(), NOW) is None


@pytest.mark.parametrize(
    ("changes", "reason", "field"),
    [
        ({"indicator": "no_such_indicator"}, "unknown_indicator", "indicator"),
        ({"source": "tax"}, "not_owner", "indicator"),
        ({"period": "2023-Q1"}, "wrong_period", "period"),
        ({"period": "2026"}, "future_period", "period"),
        ({"area": "atlantis"}, "unknown_area", "area"),
        ({"value": 100.5}, "out_of_range", "value"),
        ({"value": -0.1}, "out_of_range", "value"),
        ({"sent_at": NOW + timedelta(hours=1)}, "future_timestamp", "sent_at"),
        ({"observed_at": datetime(1999, 12, 31, tzinfo=UTC)}, "stale_timestamp", "observed_at"),
        ({"numerator": 50.0, "denominator": 100.0}, "ratio_mismatch", "value"),
        ({"numerator": 50.0}, "missing_field", "denominator"),
        ({"numerator": 5.0, "denominator": 0.0}, "out_of_range", "denominator"),
    ],
)
def test_breach_has_a_reason_naming_the_field(
    changes: dict[str, Any], reason: str, field: str
) -> None:
    rejection = check_against_catalogue(event(**changes), default_catalogue(), NOW)

    assert rejection is not None
    assert (rejection.reason, rejection.field) == (reason, field)
    assert reason in REJECTION_REASONS
    assert f"'{field}'" in rejection.message_vi
    assert f"'{field}'" in rejection.message_en
    assert "expected" in rejection.message_en
    assert "received" in rejection.message_en


def test_rate_with_matching_components_is_accepted() -> None:
    ok = event(value=69.46, numerator=6946.0, denominator=10000.0)

    assert check_against_catalogue(ok, default_catalogue(), NOW) is None


def test_components_on_a_plain_count_are_refused() -> None:
    count = event(
        source="police", indicator="eid_activated", period="2024-Q3", value=5.0, numerator=5.0
    )
    rejection = check_against_catalogue(count, default_catalogue(), NOW)

    assert rejection is not None
    assert rejection.reason == "unexpected_components"


def test_wrong_level_is_refused() -> None:
    # dvc_online_total is reported for the province only; Mộc Châu is a district in 2024.
    district = event(indicator="dvc_online_total", area="moc-chau", period="2024-Q3", value=90.0)

    rejection = check_against_catalogue(district, default_catalogue(), NOW)

    assert rejection is not None
    assert (rejection.reason, rejection.field) == ("wrong_level", "area")


def test_district_after_the_2025_reform_does_not_exist() -> None:
    after = event(
        source="police", indicator="eid_activated", area="moc-chau", period="2025-Q3", value=1.0
    )
    before = event(
        source="police", indicator="eid_activated", area="moc-chau", period="2024-Q3", value=1.0
    )
    later = datetime(2025, 10, 1, tzinfo=UTC)

    assert check_against_catalogue(before, default_catalogue(), later) is None
    rejection = check_against_catalogue(after, default_catalogue(), later)
    assert rejection is not None
    assert rejection.reason == "unknown_area"


def test_a_period_begins_at_midnight_in_the_province() -> None:
    # 2026 begins at 00:00 on 1 January in Sơn La (UTC+07:00): 17:00 UTC the day before.
    midnight = datetime(2025, 12, 31, 17, 0, tzinfo=UTC)
    early = event(period="2026", observed_at=midnight - timedelta(hours=1), sent_at=midnight)

    before = check_against_catalogue(early, default_catalogue(), midnight - timedelta(seconds=1))
    at = check_against_catalogue(early, default_catalogue(), midnight)

    assert before is not None
    assert before.reason == "future_period"
    assert at is None
