"""The monitor's clock: real time, or a scaled simulated time shared by every process.

Deadlines are hours or days apart; a demo or a test cannot wait for them. With
``IOC_CLOCK_SPEED`` > 1, every process (worker, simulator, demo) computes the same simulated
time from the same three settings, so a daily deadline passes in seconds everywhere at once:

    simulated now = IOC_CLOCK_START + (wall now - IOC_CLOCK_EPOCH) * IOC_CLOCK_SPEED
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from ioc.settings import Settings


class Clock(Protocol):
    """Something that tells the time (aware datetimes)."""

    def now(self) -> datetime:
        """The current time."""
        ...

    def wall_seconds_until(self, moment: datetime) -> float:
        """Real seconds until this clock shows ``moment`` (0 when already past)."""
        ...


class SystemClock:
    """Real time."""

    def now(self) -> datetime:
        """The current time, UTC."""
        return datetime.now(UTC)

    def wall_seconds_until(self, moment: datetime) -> float:
        """Real seconds until ``moment``."""
        return max(0.0, (moment - self.now()).total_seconds())


@dataclass(frozen=True)
class ScaledClock:
    """Simulated time running ``speed`` times faster than the wall clock from ``start``."""

    start: datetime
    wall_epoch: float
    speed: float = 1.0

    def now(self) -> datetime:
        """Simulated now."""
        return self.start + timedelta(seconds=(time.time() - self.wall_epoch) * self.speed)

    def wall_seconds_until(self, moment: datetime) -> float:
        """Real seconds until simulated time reaches ``moment``."""
        return max(0.0, (moment - self.now()).total_seconds() / self.speed)


def clock_from_settings(settings: Settings) -> Clock:
    """The clock the settings describe: scaled when IOC_CLOCK_START is set, else real time."""
    if settings.clock_start is None:
        return SystemClock()
    epoch = settings.clock_epoch if settings.clock_epoch is not None else time.time()
    return ScaledClock(settings.clock_start, epoch, settings.clock_speed)
