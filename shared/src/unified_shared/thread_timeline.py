"""The rules of a buyer-message thread's timeline that the messages service and the seller view must share,
so that the view's reply waits agree with the thread state the service computes: what an entry of the
timeline is, how a "no response needed" mark is identified (its event carries no ID), the order in which
entries count, and Amazon's reply window."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

REPLY_WINDOW = timedelta(hours=24)  # calendar time: weekends and holidays count (Amazon)
DUE_SOON = timedelta(hours=4)

EntryKind = Literal["buyer", "reply", "mark"]
# At the same instant a buyer message comes first (a reply stamped with the same time answers it); a reply and
# a mark at the same instant are ordered by their IDs.
_KIND_ORDER: dict[str, int] = {"buyer": 0, "reply": 1, "mark": 1}


@dataclass(frozen=True, slots=True)
class Entry:
    """One point of a thread's timeline: a buyer message, a seller reply or a "no response needed" mark."""

    entry_id: str
    kind: EntryKind
    at: datetime


def mark_entry_id(thread_id: str, at: datetime) -> str:
    """A mark's ID (its event carries none): a mark of the same thread at the same instant is the same mark, so
    recording or applying it twice counts it once."""
    return f"mark:{thread_id}:{at.astimezone(UTC).isoformat()}"


def in_time_order(entries: Iterable[Entry]) -> list[Entry]:
    """The timeline in the order it counts, whatever order its entries were recorded or arrived in: by time;
    at the same instant a buyer message first, then by ID."""
    return sorted(entries, key=lambda e: (e.at, _KIND_ORDER[e.kind], e.entry_id))
