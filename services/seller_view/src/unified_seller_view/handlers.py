"""Event handlers: each applies one event to the read model inside the consumer's batch transaction.

Handlers are idempotent on their own too (rows keyed by what the event names; a message or refund seen
before changes nothing), on top of the shared consumer's deduplication by event ID.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import asyncpg

from unified_seller_view import (
    accounts_store,
    billing_store,
    domain,
    fx_store,
    message_handlers,
    messages_store,
    offers_view,
    order_batches,
    order_handlers,
    order_history,
    summaries,
)
from unified_seller_view.generations import use_schema
from unified_shared.consumer import Apply, Handler, HandlerTable, ReceivedEvent
from unified_shared.contracts import billing, identity, messages, orders, regions
from unified_shared.events import Event

log = logging.getLogger(__name__)

_PARTICIPATION_TYPES = (
    regions.ParticipationOpened,
    regions.ParticipationSuspended,
    regions.ParticipationReinstated,
    regions.ParticipationClosed,
    regions.SubscriptionStarted,
    regions.SubscriptionEnded,
    regions.ListingsActivated,
    regions.ListingsDeactivated,
)


def _per_event(timeline: list[bool]) -> Apply:
    """A group applied event by event through ``apply_event``, in log order (the light event types)."""

    async def apply(conn: asyncpg.Connection, events: Sequence[ReceivedEvent]) -> None:
        for received in events:
            await apply_event(
                conn,
                received.event,
                event_id=received.event_id,
                sequence=received.envelope.sequence,
                timeline=timeline[0] if timeline else True,
            )

    return Apply(apply)


# Order events, set-based (order_batches). Other parts of the view register their own groups here:
# {event type: Apply}; types sharing one Apply keep their log order among themselves.
# The orders' status history (order_history.py) is recorded once per batch by the table (_SummarizedTable).
_PLACED = Apply(order_batches.apply_placed, key=order_batches.order_key)
_CHANGES = Apply(order_batches.apply_changes, key=order_batches.order_key)
SET_BASED: dict[type[Event], Apply] = {
    orders.OrderPlaced: _PLACED,
    orders.OrderStatusChanged: _CHANGES,
    orders.OrderItemCountsChanged: _CHANGES,
    orders.OrderRefunded: _CHANGES,
    **offers_view.HANDLERS,
}
# Types applied one by one, each tuple one group (its events keep their log order).
PER_EVENT_GROUPS: list[tuple[type[Event], ...]] = [
    (identity.AccountRegistered, identity.InvitationAccepted, identity.MemberRoleChanged, identity.MemberRemoved),
    _PARTICIPATION_TYPES,
    (regions.FxRatesPublished,),
    (messages.BuyerMessageReceived, messages.SellerReplied, messages.MarkedNoResponseNeeded),
    (billing.InvoiceIssued, billing.CreditNoteIssued),
]


_ORDER_TYPES = (orders.OrderPlaced, orders.OrderStatusChanged, orders.OrderItemCountsChanged, orders.OrderRefunded)


@dataclass(frozen=True)
class _SummarizedTable(HandlerTable):
    """The handler table of a generation whose order events keep the day summaries: a batch first takes its
    accounts' summary locks, all at once and in one order (summaries._LOCK_ACCOUNTS_SQL), so that batches of
    other partitions touching the same accounts wait for it rather than deadlock on it; after its handlers,
    the summaries move by the difference of the contributions of the orders its events name
    (summaries.per_batch). The schema, the locks and the planner settings are one statement
    (summaries.start_batch)."""

    schema: str = ""
    keeps: list[bool] = field(default_factory=list)  # whether the schema has the summaries (it never changes)

    async def apply(self, conn: asyncpg.Connection, events: Sequence[ReceivedEvent]) -> None:
        if not self.keeps:  # the first batch: the generation's checks, once
            if self.prepare is not None:
                await self.prepare(conn)
            self.keeps.append(await summaries.kept(conn, self.schema))
        keep = self.keeps[0]
        ordered = [r for r in events if isinstance(r.event, _ORDER_TYPES)]
        keys = [(r.event.account_id, r.event.amazon_order_id) for r in ordered]  # type: ignore[attr-defined]
        await summaries.start_batch(conn, self.schema, [a for a, _ in keys] if keep else [])

        async def segments() -> None:  # HandlerTable.apply after its prepare
            for segment in self.plan(events):
                for group, group_events in segment:
                    await group.handler(conn, group_events)
            # every order event's history row, one statement (rows keyed by event: independent of the rest)
            await order_history.record(conn, [(r.event_id, r.envelope.sequence, r.event) for r in ordered])

        await summaries.per_batch(conn, keys, segments, keep=keep)


async def _enter_schema(conn: asyncpg.Connection, schema: str, timeline: list[bool]) -> None:
    """Point the connection at the generation's schema; on first use, learn (once, into ``timeline``) whether
    that schema has the timeline tables (a schema's tables never change)."""
    await use_schema(conn, schema)
    if not timeline:
        timeline.append(await messages_store.has_thread_marks(conn, schema))
        if not timeline[0]:
            log.warning(
                "generation predates thread timelines: reply waits follow arrival order until a rebuild",
                extra={"schema": schema},
            )


def table_for(schema: str) -> HandlerTable:
    """The consumer's handler table of one generation: every statement goes to that generation's schema
    (set once per batch)."""
    timeline: list[bool] = []  # whether the schema has the timeline tables; a schema's tables never change

    async def prepare(conn: asyncpg.Connection) -> None:
        await _enter_schema(conn, schema, timeline)

    by_type: dict[type[Event], Apply] = dict(SET_BASED)
    for types in PER_EVENT_GROUPS:
        group = _per_event(timeline)
        for event_type in types:
            by_type[event_type] = group
    # Other known types (UserInvited, InvitationRevoked) say nothing the view shows: applied as no-ops.
    return _SummarizedTable(by_type=by_type, prepare=prepare, schema=schema)


def handler_for(schema: str) -> Handler:
    """The consumer handler of one generation: every statement goes to that generation's schema."""

    timeline: list[bool] = []  # whether the schema has the timeline tables; a schema's tables never change

    async def handle(conn: asyncpg.Connection, received: ReceivedEvent) -> None:
        await _enter_schema(conn, schema, timeline)
        await apply_event(
            conn,
            received.event,
            event_id=received.event_id,
            sequence=received.envelope.sequence,
            timeline=timeline[0],
        )

    return handle


def _billing_row(event: billing.InvoiceIssued | billing.CreditNoteIssued) -> dict[str, Any]:
    """The document's fields as the store's row (it takes the columns it has), its lines as JSON."""
    return {**event.model_dump(), "lines": [line.model_dump(mode="json") for line in event.lines]}


async def apply_event(
    conn: asyncpg.Connection, event: Event, *, event_id: UUID, sequence: int | None, timeline: bool = True
) -> None:
    """``timeline=False`` only for a generation built before ``thread_marks`` existed (it keeps serving, with
    its old arrival-order waits, until a rebuild replaces it)."""
    if isinstance(event, order_history.ORDER_EVENTS):
        await order_history.record(conn, [(event_id, sequence, event)])
    if isinstance(event, identity.AccountRegistered):
        await accounts_store.upsert_account(
            conn,
            event.account_id,
            legal_name=event.legal_name,
            home_marketplace_id=event.home_marketplace_id,
            owner_user_id=event.owner_user_id,
            owner_email=event.owner_email,
            registered_at=event.registered_at,
        )
        await accounts_store.upsert_member(
            conn,
            event.account_id,
            event.owner_user_id,
            email=event.owner_email,
            role="owner",
            permissions=["billing", "messages", "orders", "reports"],
            scope="*",
            changed_at=event.registered_at,
        )
    elif isinstance(event, identity.InvitationAccepted | identity.MemberRoleChanged):
        # a role change keeps the member's email (None) and dates the change when it was made
        email, changed_at = (
            (event.email, event.accepted_at)
            if isinstance(event, identity.InvitationAccepted)
            else (None, event.changed_at)
        )
        await accounts_store.upsert_member(
            conn,
            event.account_id,
            event.user_id,
            email=email,
            role=event.role,
            permissions=[*event.permissions, *event.extra_permissions],
            scope=event.marketplace_scope,
            changed_at=changed_at,
        )
    elif isinstance(event, identity.MemberRemoved):
        await accounts_store.remove_member(conn, event.account_id, event.user_id, event.removed_at)
    elif isinstance(event, _PARTICIPATION_TYPES):
        await _apply_participation(conn, event, event_id, sequence)
    elif isinstance(event, regions.FxRatesPublished):
        await _apply_fx(conn, event)
    elif isinstance(event, _ORDER_TYPES):
        key = [(event.account_id, event.amazon_order_id)]
        days = await summaries.order_days(conn, key)  # before: a newer snapshot may move the purchase day
        if isinstance(event, orders.OrderPlaced):
            await order_handlers.apply_order_placed(conn, event, event_id, sequence)
        else:
            await order_handlers.apply_order_change(conn, event, event_id, sequence)
        await summaries.refresh_orders(conn, key, days)
    elif isinstance(event, messages.BuyerMessageReceived):
        await message_handlers.apply_buyer_message(conn, event, timeline)
    elif isinstance(event, messages.SellerReplied):
        await message_handlers.apply_reply(conn, event, timeline)
    elif isinstance(event, messages.MarkedNoResponseNeeded):
        await message_handlers.apply_mark(conn, event, timeline)
    elif isinstance(event, billing.InvoiceIssued):
        await billing_store.upsert_invoice(conn, _billing_row(event))
    elif isinstance(event, billing.CreditNoteIssued):
        await billing_store.upsert_credit_note(conn, _billing_row(event))
    # Other known types (UserInvited, InvitationRevoked) say nothing the view shows: applied as no-ops.


async def _apply_participation(conn: asyncpg.Connection, event: Any, event_id: UUID, sequence: int | None) -> None:
    await accounts_store.insert_participation_event(
        conn,
        event.account_id,
        event.marketplace_id,
        event_id,
        event_type=event.NAME,
        at=event.at,
        sequence=sequence,
        reason=getattr(event, "reason", None),
    )
    changes = await accounts_store.participation_changes(conn, event.account_id, event.marketplace_id)
    await accounts_store.save_participation(
        conn, event.account_id, event.marketplace_id, domain.fold_participation(changes)
    )


async def _apply_fx(conn: asyncpg.Connection, event: regions.FxRatesPublished) -> None:
    known = await fx_store.fx_day_revision(conn, event.date)
    if known is not None and known >= event.revision:
        return  # the same or an older revision of a day we have: the latest revision wins
    replaced = await fx_store.fx_day_currencies(conn, event.date)
    await fx_store.replace_fx_day(
        conn,
        event.date,
        revision=event.revision,
        source=event.source,
        derived=dict(event.derived),
        rates=dict(event.rates),
    )
    currencies = replaced | {c.upper() for c in event.rates}
    await summaries.refresh_for_fx_day(conn, event.date, currencies)  # the days these rates decide
