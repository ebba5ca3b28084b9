"""Handlers of the buyer-message events: threads, messages and marks, and the reply-wait cycles they decide
(by the thread timeline, or by arrival order in a generation built before ``thread_marks`` existed)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import datetime
from uuid import UUID

import asyncpg

from unified_seller_view import messages_store, reply_wait_rules
from unified_shared.contracts import messages
from unified_shared.thread_timeline import mark_entry_id


async def apply_buyer_message(conn: asyncpg.Connection, event: messages.BuyerMessageReceived, timeline: bool) -> None:
    await messages_store.upsert_thread(
        conn,
        event.account_id,
        event.thread_id,
        marketplace_id=event.marketplace_id,
        region=event.region,
        amazon_order_id=event.amazon_order_id,
        subject=event.subject,
        at=event.received_at,
    )
    legacy = None if timeline else functools.partial(_legacy_open_wait, conn, event)
    await _add_message(conn, event, kind="buyer", at=event.received_at, subject=event.subject, legacy=legacy)


async def apply_reply(conn: asyncpg.Connection, event: messages.SellerReplied, timeline: bool) -> None:
    legacy = None if timeline else functools.partial(_legacy_close_wait, conn, event, event.replied_at, "reply")
    await _add_message(conn, event, kind="seller", at=event.replied_at, subject=None, legacy=legacy)


async def _add_message(
    conn: asyncpg.Connection,
    event: messages.BuyerMessageReceived | messages.SellerReplied,
    *,
    kind: str,
    at: datetime,
    subject: str | None,
    legacy: Callable[[], Awaitable[None]] | None,
) -> None:
    """Store a message of the thread once (a redelivery adds nothing), then the waits it changes: from the
    timeline, or by the ``legacy`` arrival-order step of a generation built before thread_marks."""
    new = await messages_store.insert_message(
        conn,
        event.account_id,
        event.thread_id,
        kind=kind,
        message_id=event.message_id,
        at=at,
        subject=subject,
        body=event.body,
    )
    if not new:
        return
    if legacy is None:
        await _recompute_waits(conn, event.account_id, event.thread_id)
    else:
        await legacy()


async def apply_mark(conn: asyncpg.Connection, event: messages.MarkedNoResponseNeeded, timeline: bool) -> None:
    if not timeline:
        await _legacy_close_wait(conn, event, event.at, "no_response")
        return
    new = await messages_store.insert_mark(
        conn,
        event.account_id,
        event.thread_id,
        mark_id=mark_entry_id(event.thread_id, event.at),
        at=event.at,
    )
    if new:
        await _recompute_waits(conn, event.account_id, event.thread_id)


async def _recompute_waits(conn: asyncpg.Connection, account_id: UUID, thread_id: str) -> None:
    """The thread's waits from its whole timeline, as the messages service computes its state: an entry
    dated before others (a late buyer message, a backdated reply or mark) lands in place."""
    marketplace_id = await messages_store.thread_marketplace(conn, account_id, thread_id)
    if marketplace_id is None:
        return  # a reply or mark before the thread's first buyer message: kept, counted when the thread arrives
    entries = await messages_store.thread_timeline(conn, account_id, thread_id)
    await messages_store.replace_cycles(
        conn, account_id, thread_id, marketplace_id=marketplace_id, waits=reply_wait_rules.reply_waits(entries)
    )


# Arrival-order waits of generations built before thread_marks existed (see ``apply_event``).


async def _legacy_open_wait(conn: asyncpg.Connection, event: messages.BuyerMessageReceived) -> None:
    if await messages_store.open_cycle(conn, event.account_id, event.thread_id) is not None:
        return  # the thread already waits: its clock runs from the first unanswered message
    await messages_store.start_cycle(
        conn,
        event.account_id,
        event.thread_id,
        opened_by=event.message_id,
        marketplace_id=event.marketplace_id,
        started_at=event.received_at,
        deadline=reply_wait_rules.deadline_for(event.received_at),
    )


async def _legacy_close_wait(
    conn: asyncpg.Connection, event: messages.SellerReplied | messages.MarkedNoResponseNeeded, at: datetime, how: str
) -> None:
    wait = await messages_store.open_cycle(conn, event.account_id, event.thread_id)
    if wait is None:
        return  # nothing awaited a reply (a follow-up, or a mark on an answered thread)
    await messages_store.close_cycle(
        conn,
        event.account_id,
        event.thread_id,
        opened_by=wait["opened_by"],
        closed_at=max(at, wait["started_at"]),
        closed_by=how,
    )
