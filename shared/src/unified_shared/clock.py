"""One clock for every service: "now" is injected, never read from the system inside domain or handlers.

Services take a ``Clock`` in their ``bootstrap``; production passes ``system_clock``, tests a ``FixedClock``
they move by hand, so deadlines, defaults and "overdue" are decided without waiting.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Anything that answers the current instant (timezone-aware, UTC)."""

    def __call__(self) -> datetime: ...


def system_clock() -> datetime:
    """The machine's time, in UTC."""
    return datetime.now(UTC)


# The name services used before the shared clock existed.
utc_now = system_clock


class FixedClock:
    """A clock for tests: it says ``at`` until moved with ``advance`` or ``set``."""

    def __init__(self, at: datetime | None = None) -> None:
        self.at = (at or datetime(2026, 9, 1, tzinfo=UTC)).astimezone(UTC)

    def __call__(self) -> datetime:
        return self.at

    def advance(self, by: timedelta) -> datetime:
        self.at += by
        return self.at

    def set(self, at: datetime) -> datetime:
        self.at = at.astimezone(UTC)
        return self.at
