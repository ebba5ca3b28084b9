"""Billing's consumer: accounts, FX publications and the subscription and listing facts, recorded in billing's own
tables (idempotent on the event ID); a fact for a closed period marks it dirty (see ``locks``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import asyncpg

from unified_billing import locks, store
from unified_billing.domain import FactKind, Period
from unified_shared.catalog import UnknownMarketplace, by_id
from unified_shared.consumer import Apply, HandlerTable, PoisonEvent, ReceivedEvent, per_event
from unified_shared.contracts.identity import AccountRegistered
from unified_shared.contracts.regions import FxRatesPublished

_FACT_KINDS = {k.value for k in FactKind}


def handler_table() -> HandlerTable:
    """Billing's consumer: accounts and FX publications one by one; the subscription and listing facts (every
    other type: non-facts are ignored) as one group, last, so the account locks are held only to the commit."""
    single = per_event(apply_event)
    return HandlerTable(
        by_type={AccountRegistered: single, FxRatesPublished: single},
        default=Apply(apply_facts),
    )


async def apply_event(conn: asyncpg.Connection, received: ReceivedEvent) -> None:
    """Consumer handler: record the fact in billing's own tables (idempotent on the event ID)."""
    event = received.event
    event_id = received.event_id
    if isinstance(event, AccountRegistered):
        await store.record_account(
            conn,
            account_id=event.account_id,
            home_marketplace_id=_known_marketplace(event.home_marketplace_id),
            legal_name=event.legal_name,
            registered_at=event.registered_at,
            event_id=event_id,
        )
    elif isinstance(event, FxRatesPublished):
        await store.record_fx_publication(
            conn,
            rate_date=event.date,
            revision=event.revision,
            source=event.source,
            event_id=event_id,
            rates=event.rates,
            derived=event.derived,
        )
    elif _is_fact(event):
        await apply_facts(conn, [received])
    # Other events of these topics (invitations, members...) do not concern billing.


def _is_fact(event: Any) -> bool:
    return type(event).NAME in _FACT_KINDS and hasattr(event, "marketplace_id")


async def apply_facts(conn: asyncpg.Connection, events: Sequence[ReceivedEvent]) -> None:
    """Record a batch's subscription and listing facts (log order: ``seq`` breaks ties), then take the
    accounts' fact locks (sorted: no deadlock between consumers) and mark closed periods dirty.

    The locks are taken after the facts are written, at the end of the batch, so a close waits only for this
    batch's commit, never for its whole application. Still exact: a close that committed before the lock was
    granted is seen by the marking (each statement reads what is committed); one that starts later waits for
    this commit and then reads these facts."""
    earliest: dict[UUID, Period] = {}
    for received in events:
        event = received.event
        if not _is_fact(event):
            continue
        account_id: UUID = event.account_id  # type: ignore[attr-defined]
        at: dt.datetime = event.at  # type: ignore[attr-defined]
        recorded = await store.record_fact(
            conn,
            event_id=received.event_id,
            account_id=account_id,
            marketplace_id=_known_marketplace(event.marketplace_id),  # type: ignore[attr-defined]
            kind=FactKind(type(event).NAME),
            at=at,
        )
        if recorded:
            period = Period.of(at)
            if account_id not in earliest or str(period) < str(earliest[account_id]):
                earliest[account_id] = period
    await locks.lock_facts(conn, earliest)
    for account_id, period in earliest.items():
        await store.mark_closed_periods_dirty(conn, account_id, period)


def _known_marketplace(marketplace_id: str) -> str:
    try:
        return by_id(marketplace_id).marketplace_id
    except UnknownMarketplace as exc:
        raise PoisonEvent(str(exc)) from None
