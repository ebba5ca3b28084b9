"""Fast unit tier: the thread handlers over the fake unit of work and a fixed clock (no broker, no database).

Each command takes its thread's lock, appends one event at the thread's version and wakes the relay once;
a repeat publishes nothing; a refusal leaves nothing; "now" is the injected clock.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from unified_messages.handlers import BuyerMessage, MessagesHandlers, Reply
from unified_messages.store import stream_id
from unified_shared.auth import Principal
from unified_shared.catalog import ApiRegion
from unified_shared.clock import FixedClock
from unified_shared.contracts.messages import BuyerMessageReceived, MarkedNoResponseNeeded, SellerReplied
from unified_shared.errors import Conflict, Forbidden, Invalid, NotFound
from unified_shared.uow import FakeUnits

from .fakes import FakeMessagesStore
from .support import DE, UK, at


def principal(marketplaces: Any = "*", account: UUID | None = None) -> Principal:
    return Principal(uuid4(), account or uuid4(), "owner", frozenset(), marketplaces, "t")


def service(now: str = "2026-09-04T12:00:00Z") -> tuple[MessagesHandlers, FakeUnits[FakeMessagesStore], FixedClock]:
    clock = FixedClock(now)
    units = FakeUnits(FakeMessagesStore())
    return MessagesHandlers(units, ApiRegion.EU, clock), units, clock


def buyer(thread: str = "t-1", received: str = "2026-09-04T10:00:00Z", body: str = "Where is it?") -> BuyerMessage:
    return BuyerMessage(thread, DE, "Delivery", body, at(received), message_id=None)


async def test_a_buyer_message_opens_a_wait_once() -> None:
    h, units, _ = service()
    who = principal()
    first = await h.receive(who, buyer())
    again = await h.receive(who, buyer())
    assert (first.outcome, again.outcome) == ("received", "unchanged")
    assert first.thread.state == "awaiting_reply" and first.thread.reply_deadline == at("2026-09-05T10:00:00Z")
    [event] = units.events
    assert isinstance(event.event, BuyerMessageReceived) and event.event.thread_state == "awaiting_reply"
    assert (event.stream_id, event.version, units.notified) == (stream_id(who.account_id, "t-1"), 1, 1)


async def test_a_reply_without_a_time_is_stamped_by_the_clock() -> None:
    h, units, clock = service()
    who = principal()
    await h.receive(who, buyer())
    clock.advance(timedelta(hours=3))
    replied = await h.reply(who, Reply("t-1", "On its way"))
    assert replied.thread.state == "replied" and replied.thread.replies == 1
    event = units.events[-1]
    assert isinstance(event.event, SellerReplied) and event.event.replied_at == clock() and event.version == 2


async def test_marking_a_replied_thread_is_a_conflict_and_leaves_nothing() -> None:
    h, units, _ = service()
    who = principal()
    await h.receive(who, buyer())
    await h.reply(who, Reply("t-1", "On its way"))
    before = (len(units.events), len(units.store.entries))
    with pytest.raises(Conflict) as refused:
        await h.mark_no_response_needed(who, "t-1", None)
    assert refused.value.field == "thread_id"
    assert (len(units.events), len(units.store.entries)) == before  # the inserted mark was rolled back


async def test_a_mark_closes_the_wait_at_the_clocks_time() -> None:
    h, units, clock = service()
    who = principal()
    await h.receive(who, buyer())
    marked = await h.mark_no_response_needed(who, "t-1", None)
    assert marked.thread.state == "no_response_needed"
    event = units.events[-1].event
    assert isinstance(event, MarkedNoResponseNeeded) and event.at == clock()


async def test_a_reused_message_id_with_other_content_is_a_conflict() -> None:
    h, units, _ = service()
    who = principal()
    await h.receive(who, BuyerMessage("t-1", DE, "Delivery", "one", at("2026-09-04T10:00:00Z"), message_id="m-1"))
    with pytest.raises(Conflict) as clash:
        await h.receive(who, BuyerMessage("t-1", DE, "Delivery", "two", at("2026-09-04T10:00:00Z"), message_id="m-1"))
    assert clash.value.field == "message_id" and len(units.events) == 1


async def test_scope_thread_and_text_rules() -> None:
    h, units, _ = service()
    with pytest.raises(Forbidden):
        await h.receive(principal(frozenset({DE})), BuyerMessage("t-2", UK, "s", "b", at("2026-09-04T10:00:00Z")))
    with pytest.raises(Invalid) as empty:
        await h.receive(principal(), buyer(body="   "))
    with pytest.raises(NotFound):
        await h.reply(principal(), Reply("nobody", "hello"))
    assert empty.value.field == "body" and units.events == []


async def test_threads_page_by_deadline() -> None:
    h, _, _ = service()
    who = principal()
    for n, hour in enumerate((9, 7, 8)):
        await h.receive(who, buyer(thread=f"t-{n}", received=f"2026-09-04T0{hour}:00:00Z"))
    first, token = await h.list_threads(who, state="awaiting_reply", marketplace_id=None, limit=2, next_token=None)
    rest, last = await h.list_threads(who, state=None, marketplace_id=None, limit=None, next_token=token)
    assert [t.thread_id for t in first + rest] == ["t-1", "t-2", "t-0"] and last is None
