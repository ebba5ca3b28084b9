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


def _instant(value: datetime | str) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError("a clock tells timezone-aware instants")
    return value.astimezone(UTC)


class FixedClock:
    """A clock for tests: it says ``at`` (a datetime or ISO 8601 text) until moved with ``advance`` or ``set``."""

    def __init__(self, at: datetime | str = "2026-09-01T00:00:00Z") -> None:
        self.at = _instant(at)

    def __call__(self) -> datetime:
        return self.at

    def advance(self, by: timedelta) -> datetime:
        self.at += by
        return self.at

    def set(self, at: datetime | str) -> datetime:
        self.at = _instant(at)
        return self.at
