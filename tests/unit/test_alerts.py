"""The alert lifecycle: transitions only, for-durations, state that survives a restart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from agents.alerts import AlertBook, fingerprint
from bench.agents import InProcessAgents, message_of
from ioc.settings import Settings
from streams.catalogue import default_catalogue
from streams.events import IndicatorEvent
from streams.topics import Topics


class ManualClock:
    def __init__(self) -> None:
        self.at = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.at

    def wall_seconds_until(self, moment: datetime) -> float:
        return max(0.0, (moment - self.at).total_seconds())


def assess(book: AlertBook, active: bool, **extra: Any) -> Any:
    return book.assess(
        "outlier",
        active=active,
        source="ict",
        indicator="online_application_rate",
        area="son-la",
        summary_vi="bất thường",
        summary_en="outlier",
        **extra,
    )


def test_fires_once_then_resolves_once() -> None:
    state: dict[str, Any] = {}
    book = AlertBook(state, ManualClock())

    fired = assess(book, True)
    again = assess(book, True)
    resolved = assess(book, False)
    quiet = assess(book, False)

    assert fired is not None
    assert fired.status == "firing"
    assert fired.fingerprint == fingerprint("outlier", "ict", "online_application_rate", "son-la")
    assert fired.runbook_url == "docs/runbooks.md#iocoutlier"
    assert again is None
    assert resolved is not None
    assert resolved.status == "resolved"
    assert resolved.ends_at == book.clock.now()
    assert quiet is None
    assert state == {}


def test_for_duration_holds_back_a_flapping_condition() -> None:
    clock = ManualClock()
    book = AlertBook({}, clock)

    assert assess(book, True, for_seconds=60) is None  # pending
    clock.at += timedelta(seconds=30)
    assert assess(book, False, for_seconds=60) is None  # cleared before firing: no page
    assert assess(book, True, for_seconds=60) is None  # pending again, from now
    clock.at += timedelta(seconds=59)
    assert assess(book, True, for_seconds=60) is None
    clock.at += timedelta(seconds=1)
    fired = assess(book, True, for_seconds=60)
    assert fired is not None
    assert fired.status == "firing"


def test_state_survives_a_restart_and_does_not_page_again() -> None:
    state: dict[str, Any] = {}
    assert assess(AlertBook(state, ManualClock()), True) is not None

    restarted = AlertBook(dict(state), ManualClock())  # the table, recovered from its changelog

    assert assess(restarted, True) is None
    assert [entry["alertname"] for entry in restarted.firing()] == ["outlier"]


def test_unchanged_state_is_not_rewritten() -> None:
    writes: list[str] = []

    class Recording(dict[str, Any]):
        def __setitem__(self, key: str, value: Any) -> None:
            writes.append(key)
            super().__setitem__(key, value)

    book = AlertBook(Recording(), ManualClock())
    assess(book, True)
    assess(book, True)
    assess(book, True)

    assert len(writes) == 1


async def target_transitions(values: list[tuple[str, float]]) -> list[list[str]]:
    """The target alert's transitions after each report of the province's online application
    rate (target: 80 % in 2025, at risk within 10 %), each in a batch of its own, through the
    ingest agent's own code."""
    agents = InProcessAgents(Settings(), default_catalogue())
    topics = Topics()
    seen = []
    for offset, (period, value) in enumerate(values):
        event = IndicatorEvent.new(
            source="ict", indicator="online_application_rate", area="son-la",
            period=period, value=value,
        )  # fmt: skip
        message = message_of(topics.feed("ict"), 0, offset, event.key, event.to_json(), None)
        await agents.feed("ingest", [message])
        records = [orjson.loads(r.value) for r in agents.take(topics.alerts) if r.value]
        seen.append([r["status"] for r in records if r["alertname"] == "target_off_track"])
    return seen


async def test_a_target_alert_holds_while_at_risk_and_resolves_back_on_track() -> None:
    # Off track (69.46 < 72) fires; at risk (75) holds it; on track (85) resolves it.
    held = await target_transitions([("2023", 69.46), ("2024", 75.0), ("2025", 85.0)])
    # At risk without an alert firing raises none.
    quiet = await target_transitions([("2024", 75.0)])

    assert held == [["firing"], [], ["resolved"]]
    assert quiet == [[]]
