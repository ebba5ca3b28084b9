"""Pure rules of the buyer messages: no I/O. Reply-wait cycles, reply deadlines and late-response rates."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Literal

from unified_shared.thread_timeline import DUE_SOON, REPLY_WINDOW, Entry, in_time_order

LATE_RATE_WINDOWS_DAYS = (7, 30, 90)

# -- buyer messages ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cycle:
    """One wait for a reply in one thread."""

    thread_id: str
    marketplace_id: str
    started_at: datetime
    deadline: datetime
    closed_at: datetime | None
    closed_by: str | None


def deadline_for(first_unanswered_at: datetime) -> datetime:
    return first_unanswered_at + REPLY_WINDOW


@dataclass(frozen=True, slots=True)
class Wait:
    """One wait for a reply as the timeline gives it: opened by a buyer message, closed (or not yet)."""

    opened_by: str
    started_at: datetime
    deadline: datetime
    closed_at: datetime | None
    closed_by: Literal["reply", "no_response"] | None


def reply_waits(entries: Iterable[Entry]) -> list[Wait]:
    """The thread's waits from its whole timeline in the messages service's order (``in_time_order``), so the
    result does not depend on the order the entries arrived in: a wait starts at the first unanswered buyer
    message and ends at the first reply or mark at or after it; a mark with nothing waiting changes nothing."""
    waits: list[Wait] = []
    opened: Entry | None = None
    for entry in in_time_order(entries):
        if entry.kind == "buyer":
            if opened is None:
                opened = entry
        elif opened is not None:
            closed_by: Literal["reply", "no_response"] = "reply" if entry.kind == "reply" else "no_response"
            waits.append(Wait(opened.entry_id, opened.at, deadline_for(opened.at), entry.at, closed_by))
            opened = None
    if opened is not None:
        waits.append(Wait(opened.entry_id, opened.at, deadline_for(opened.at), None, None))
    return waits


def awaiting_at(cycle: Cycle, as_of: datetime) -> bool:
    return cycle.started_at <= as_of and (cycle.closed_at is None or cycle.closed_at > as_of)


def classify(cycle: Cycle, as_of: datetime) -> str:
    """For a thread awaiting a reply at ``as_of``: overdue (more than 24 h since its first unanswered
    buyer message), due_soon (deadline within the next 4 h, deadline included) or on_track."""
    if as_of > cycle.deadline:
        return "overdue"
    if cycle.deadline - as_of <= DUE_SOON:
        return "due_soon"
    return "on_track"


def is_late(cycle: Cycle) -> bool:
    """Answered (reply or "no response needed") after its deadline, or never answered."""
    return cycle.closed_at is None or cycle.closed_at > cycle.deadline


@dataclass(frozen=True, slots=True)
class LateRate:
    days: int
    window_start: datetime
    window_end: datetime
    due: int
    late: int

    @property
    def rate(self) -> Decimal | None:
        if self.due == 0:
            return None
        return (Decimal(self.late) / Decimal(self.due)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_EVEN)

    def to_json(self) -> dict[str, Any]:
        rate = self.rate
        return {
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "threads_due": self.due,
            "late": self.late,
            "rate": format(rate, "f") if rate is not None else None,
        }


def late_response_rate(cycles: Iterable[Cycle], as_of: datetime, days: int) -> LateRate:
    """Over waits whose deadline fell in (as_of - days, as_of]: the share answered after the deadline or
    still unanswered. A wait answered after ``as_of`` counts as it stood at ``as_of``: unanswered, so late."""
    start = as_of - timedelta(days=days)
    due = late = 0
    for c in cycles:
        if start < c.deadline <= as_of:
            due += 1
            if c.closed_at is None or c.closed_at > c.deadline:
                late += 1
    return LateRate(days, start, as_of, due, late)
