"""Pure thread rules: state across replies and marks, the 24-hour calendar deadline, urgency, IDs."""

from __future__ import annotations

from datetime import timedelta

import pytest

from unified_messages.domain import Urgency, buyer_message_id, check_mark, check_reply, thread_status, urgency
from unified_shared.catalog import ApiRegion
from unified_shared.errors import DomainError
from unified_shared.problems import status_of
from unified_shared.scope import check_marketplace
from unified_shared.thread_timeline import Entry, mark_entry_id

from .support import DE, FR, UK, US, at


def test_awaiting_from_the_first_unanswered_message_until_a_reply() -> None:
    friday = at("2026-09-04T18:00:00Z")
    entries = [Entry("m1", "buyer", friday), Entry("m2", "buyer", friday + timedelta(hours=3))]
    status = thread_status(entries)
    assert status.state == "awaiting_reply"
    assert status.awaiting_since == friday
    # 24 hours of calendar time: the weekend counts, so Saturday 18:00.
    assert status.reply_deadline == at("2026-09-05T18:00:00Z")
    replied = thread_status([*entries, Entry("r1", "reply", friday + timedelta(hours=5))])
    assert (replied.state, replied.awaiting_since, replied.reply_deadline) == ("replied", None, None)
    again = thread_status(
        [*entries, Entry("r1", "reply", friday + timedelta(hours=5)), Entry("m3", "buyer", at("2026-09-06T09:00:00Z"))]
    )
    assert (again.state, again.reply_deadline) == ("awaiting_reply", at("2026-09-07T09:00:00Z"))


def test_state_does_not_depend_on_the_order_of_recording() -> None:
    t0 = at("2026-09-01T10:00:00Z")
    entries = [
        Entry("m3", "buyer", t0 + timedelta(hours=10)),
        Entry("r1", "reply", t0 + timedelta(hours=2)),
        Entry("m1", "buyer", t0),
    ]
    assert thread_status(entries).awaiting_since == t0 + timedelta(hours=10)
    assert thread_status(list(reversed(entries))) == thread_status(entries)
    # A reply stamped with the same instant as the message answers it.
    assert thread_status([Entry("r", "reply", t0), Entry("m", "buyer", t0)]).state == "replied"


def test_mark_closes_the_wait_and_only_the_wait() -> None:
    t0 = at("2026-09-01T10:00:00Z")
    marked = thread_status([Entry("m1", "buyer", t0), Entry(mark_entry_id("t", t0), "mark", t0 + timedelta(hours=1))])
    assert (marked.state, marked.reply_deadline) == ("no_response_needed", None)
    with pytest.raises(DomainError) as not_waiting:
        check_mark(marked, t0 + timedelta(hours=2))
    assert status_of(not_waiting.value) == 409
    waiting = thread_status([Entry("m1", "buyer", t0)])
    with pytest.raises(DomainError) as too_early:
        check_mark(waiting, t0 - timedelta(minutes=1))
    assert too_early.value.field == "at"
    with pytest.raises(DomainError) as reply_early:
        check_reply(waiting, t0 - timedelta(minutes=1))
    assert reply_early.value.field == "replied_at"


def test_urgency() -> None:
    deadline = at("2026-09-05T18:00:00Z")
    assert urgency(deadline, deadline - timedelta(hours=5)) == Urgency(False, False)
    assert urgency(deadline, deadline - timedelta(hours=4)).due_within_4h
    assert urgency(deadline, deadline) == Urgency(False, True)
    late = urgency(deadline, deadline + timedelta(seconds=1))
    assert (late.is_overdue, late.due_within_4h) == (True, False)
    assert urgency(None, deadline) == Urgency(False, False)


def test_derived_message_id_is_stable_and_content_bound() -> None:
    t = at("2026-09-01T10:00:00Z")
    assert buyer_message_id("t1", t, "s", "b") == buyer_message_id("t1", t.astimezone(), "s", "b")
    assert buyer_message_id("t1", t, "s", "b") != buyer_message_id("t1", t, "s", "b2")


def test_marketplace_region_and_scope() -> None:
    assert check_marketplace(DE, ApiRegion.EU, "*", "marketplace_id").code == "DE"
    with pytest.raises(DomainError) as info:
        check_marketplace(US, ApiRegion.EU, "*", "marketplace_id")
    assert (status_of(info.value), info.value.extra["region"]) == (422, "NA")
    with pytest.raises(DomainError) as scoped:
        check_marketplace(UK, ApiRegion.EU, frozenset({DE, FR}), "marketplace_id")
    assert status_of(scoped.value) == 403
