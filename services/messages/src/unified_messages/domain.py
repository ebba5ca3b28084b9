"""Pure rules of buyer-message threads: validation, idempotency IDs, thread state and reply deadline.

The thread state is computed from the thread's whole timeline (buyer messages, seller replies and "no
response needed" marks, in time order), so it comes out the same whatever order they were recorded in.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from unified_shared.errors import Conflict, Invalid
from unified_shared.thread_timeline import DUE_SOON, REPLY_WINDOW, Entry, in_time_order

BODY_LIMIT = 10_000  # characters (Unicode code points) of a message body; longer is refused with 422
SUBJECT_LIMIT = 250
THREAD_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
ORDER_ID_RE = re.compile(r"^\d{3}-\d{7}-\d{7}$")

ThreadState = Literal["awaiting_reply", "replied", "no_response_needed"]
THREAD_STATES: tuple[str, ...] = ("awaiting_reply", "replied", "no_response_needed")


def check_thread_id(thread_id: str) -> None:
    if not THREAD_ID_RE.match(thread_id):
        raise Invalid("thread_id", "thread_id must be 1-128 characters of letters, digits, '.', '_', ':', '-'")


def check_order_id(amazon_order_id: str | None) -> None:
    if amazon_order_id is not None and not ORDER_ID_RE.match(amazon_order_id):
        raise Invalid("amazon_order_id", f"amazon_order_id must look like 111-1234567-1234567, got {amazon_order_id!r}")


def check_text(value: str, field: str, limit: int, *, required: bool) -> None:
    """Plain text of at most ``limit`` characters; never parsed, only stored and returned as it came."""
    if required and not value.strip():
        raise Invalid(field, f"{field} must not be empty")
    if len(value) > limit:
        raise Invalid(field, f"{field} is {len(value)} characters long; the limit is {limit}", limit=limit)


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def buyer_message_id(thread_id: str, received_at: datetime, subject: str, body: str) -> str:
    """ID of a buyer message sent without one: the same message (thread, time, text) gets the same ID."""
    return "m-" + _digest(thread_id, received_at.astimezone(UTC).isoformat(), subject, body)


def reply_message_id(thread_id: str, replied_at: datetime, body: str) -> str:
    return "r-" + _digest(thread_id, replied_at.astimezone(UTC).isoformat(), body)


@dataclass(frozen=True, slots=True)
class ThreadStatus:
    """A thread's state computed from its whole timeline, whatever order its entries were recorded in."""

    state: ThreadState
    awaiting_since: datetime | None  # received_at of the first unanswered buyer message
    first_at: datetime  # the thread's first buyer message
    last_at: datetime  # its latest point in time

    @property
    def reply_deadline(self) -> datetime | None:
        return self.awaiting_since + REPLY_WINDOW if self.awaiting_since is not None else None


def thread_status(entries: Iterable[Entry]) -> ThreadStatus:
    """Awaiting a reply from the first unanswered buyer message until a reply or a mark; a buyer message
    after that starts a new wait (and a new 24-hour deadline)."""
    timeline = in_time_order(entries)
    buyers = [e for e in timeline if e.kind == "buyer"]
    if not buyers:
        raise ValueError("a thread starts with a buyer message")
    state: ThreadState = "awaiting_reply"
    awaiting_since: datetime | None = None
    for entry in timeline:
        if entry.kind == "buyer":
            if awaiting_since is None:
                awaiting_since = entry.at
            state = "awaiting_reply"
        elif entry.kind == "reply":
            awaiting_since, state = None, "replied"
        elif awaiting_since is not None:  # a mark only answers what is waiting
            awaiting_since, state = None, "no_response_needed"
    return ThreadStatus(state, awaiting_since, buyers[0].at, timeline[-1].at)


@dataclass(frozen=True, slots=True)
class Urgency:
    """How urgent a reply is at a given instant (the list's ``is_overdue`` and ``due_within_4h``)."""

    is_overdue: bool
    due_within_4h: bool


def urgency(reply_deadline: datetime | None, now: datetime) -> Urgency:
    """Against ``now`` (an injectable clock or the caller's as_of): past the deadline, or less than 4 h left."""
    if reply_deadline is None:
        return Urgency(False, False)
    overdue = now > reply_deadline
    return Urgency(overdue, not overdue and reply_deadline - now <= DUE_SOON)


def check_reply(status: ThreadStatus, replied_at: datetime) -> None:
    if replied_at < status.first_at:
        raise Invalid("replied_at", "replied_at is earlier than the thread's first buyer message")


def check_mark(status: ThreadStatus, at: datetime) -> None:
    """A mark closes a wait: the thread must be awaiting a reply, and the mark must not predate the wait."""
    if status.state != "awaiting_reply" or status.awaiting_since is None:
        raise Conflict("thread_id", f"the thread is not awaiting a reply (it is {status.state})")
    if at < status.awaiting_since:
        raise Invalid("at", "at is earlier than the buyer message awaiting a reply")
