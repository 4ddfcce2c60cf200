"""The alert lifecycle: pending, firing, resolved; transitions only, never a flood.

An alert is identified by a stable fingerprint ``alertname|source|indicator|area``. Its state
lives in a Faust table (changelog-backed), so a restarted worker knows what already fires and
does not page anyone again. :meth:`AlertBook.assess` is called each time a condition is
evaluated and returns a :class:`Transition` only when the alert starts or stops firing.
Flapping is held back two ways: a condition must hold for ``for_seconds`` before firing, and
the rules that call it use hysteresis (a target alert fires when off track and resolves only
when back on track, not merely at risk).
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from ioc.clock import Clock

Severity = Literal["info", "warning", "critical"]

#: Where each alert's runbook lives (relative to the repository root).
RUNBOOK = "docs/runbooks.md"
#: The Prometheus alert that forwards each agent alert (deploy/prometheus/rules); the runbook
#: section of both is named after it.
PROMETHEUS_ALERTS = {
    "target_off_track": "IOCTargetOffTrack",
    "value_out_of_range": "IOCValueOutOfRange",
    "outlier": "IOCOutlier",
    "sudden_change": "IOCSuddenChange",
    "validation_rule": "IOCValidationRuleViolated",
    "source_overdue": "IOCSourceOverdue",
}


def runbook_url(alertname: str) -> str:
    """The runbook section of an agent alert."""
    return f"{RUNBOOK}#{PROMETHEUS_ALERTS[alertname].lower()}"


def fingerprint(alertname: str, source: str, indicator: str = "", area: str = "") -> str:
    """The stable identity of an alert."""
    return f"{alertname}|{source}|{indicator}|{area}"


class Transition(BaseModel):
    """An alert starting or stopping: one record on ``ioc.alerts``."""

    model_config = ConfigDict(frozen=True)

    status: Literal["firing", "resolved"]
    fingerprint: str
    alertname: str
    severity: Severity
    source: str
    indicator: str
    area: str
    summary_vi: str
    summary_en: str
    runbook_url: str
    starts_at: datetime
    ends_at: datetime | None = None


class AlertBook:
    """Alert states of one agent, kept in ``state`` (a Faust table or, in tests, a dict)."""

    def __init__(self, state: MutableMapping[str, Any], clock: Clock) -> None:
        self.state = state
        self.clock = clock

    def assess(
        self,
        alertname: str,
        *,
        active: bool,
        source: str,
        indicator: str = "",
        area: str = "",
        severity: Severity = "warning",
        summary_vi: str = "",
        summary_en: str = "",
        for_seconds: float = 0.0,
    ) -> Transition | None:
        """Record whether the condition holds now; return the transition it causes, if any."""
        key = fingerprint(alertname, source, indicator, area)
        current = self.state.get(key)
        if not active:
            if current is None:
                return None  # the common case, several times per event: no clock read
            now = self.clock.now()
            del self.state[key]
            if current["status"] != "firing":
                return None  # pending only: it never fired, so nothing resolves
            return self._transition("resolved", key, current, ends_at=now)
        now = self.clock.now()
        entry = {
            "alertname": alertname,
            "severity": severity,
            "source": source,
            "indicator": indicator,
            "area": area,
            "summary_vi": summary_vi,
            "summary_en": summary_en,
            "status": "pending",
            "since": now.isoformat(),
        }
        if current is not None:
            entry["status"], entry["since"] = current["status"], current["since"]
        fire = (
            entry["status"] == "pending"
            and (now - datetime.fromisoformat(entry["since"])).total_seconds() >= for_seconds
        )
        if fire:
            entry["status"] = "firing"
            entry["since"] = now.isoformat()
        if current != entry:  # a table write only when something changed
            self.state[key] = entry
        return self._transition("firing", key, entry) if fire else None

    @staticmethod
    def _transition(
        status: Literal["firing", "resolved"],
        key: str,
        entry: dict[str, Any],
        ends_at: datetime | None = None,
    ) -> Transition:
        return Transition(
            status=status,
            fingerprint=key,
            alertname=entry["alertname"],
            severity=entry["severity"],
            source=entry["source"],
            indicator=entry["indicator"],
            area=entry["area"],
            summary_vi=entry["summary_vi"],
            summary_en=entry["summary_en"],
            runbook_url=runbook_url(entry["alertname"]),
            starts_at=datetime.fromisoformat(entry["since"]),
            ends_at=ends_at,
        )

    def firing(self) -> Iterator[dict[str, Any]]:
        """The entries of alerts firing now."""
        return (entry for entry in self.state.values() if entry and entry["status"] == "firing")
