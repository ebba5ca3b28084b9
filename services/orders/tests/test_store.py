"""The orders store on PostgreSQL with many sellers in one statement (a shared unit of work): rows are read,
locked and written under their own (account, order) keys, however many accounts a unit holds, and the
participation gate's learned verdicts come back per (account, marketplace)."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import asyncpg

from unified_orders.bootstrap import MIGRATIONS
from unified_orders.domain import OrderState
from unified_orders.store import PgOrdersStore
from unified_shared.contracts.regions import ParticipationClosed, ParticipationOpened
from unified_shared.db import SHARED_COMPONENT, apply_migrations
from unified_shared.participations import apply_subscription_event

from .support import DE, FR

AT = dt.datetime(2026, 9, 1, 10, tzinfo=dt.UTC)


def state(order_id: str, amount: str, version: int = 1) -> OrderState:
    return OrderState(
        amazon_order_id=order_id,
        marketplace_id=DE,
        purchase_date=AT,
        last_update_date=AT,
        order_status="Unshipped",
        fulfillment_channel="MFN",
        currency_code="EUR",
        amount=Decimal(amount),
        items_shipped=0,
        items_unshipped=1,
        refunded_amount=Decimal(0),
        version=version,
    )


async def test_many_sellers_orders_are_written_and_read_under_their_own_keys(fresh_db: str) -> None:
    conn = await asyncpg.connect(fresh_db)
    try:
        await apply_migrations(conn, [SHARED_COMPONENT, *MIGRATIONS])
        store = PgOrdersStore(conn)
        a, b = sorted([uuid.uuid4(), uuid.uuid4()])
        same = "302-0000000-0000001"  # the same order ID at two sellers: two orders
        async with conn.transaction():
            await store.save_orders([(b, state(same, "2.00")), (a, state(same, "1.00")), (b, state("302-1", "3.00"))])
        async with conn.transaction():
            got = await store.get_orders_for_update([(a, same), (b, same), (b, "302-1"), (a, "302-1")])
        assert {k: s.amount for k, s in got.items()} == {
            (a, same): Decimal("1.00"),
            (b, same): Decimal("2.00"),
            (b, "302-1"): Decimal("3.00"),
        }
        async with conn.transaction():
            await store.save_orders([(b, state(same, "2.00", version=2))])
        assert (await store.get_order(a, same)).version == 1  # type: ignore[union-attr]
        assert (await store.get_order(b, same)).version == 2  # type: ignore[union-attr]

        await apply_subscription_event(conn, ParticipationOpened(account_id=a, marketplace_id=DE, at=AT))
        await apply_subscription_event(conn, ParticipationClosed(account_id=b, marketplace_id=DE, at=AT))
        learned = await store.learned_verdicts([(a, DE), (b, DE), (a, FR), (a, DE)])
        assert learned == {(a, DE): ("open", "open"), (b, DE): ("not-open", "closed")}
        assert await store.learned_verdicts([(a, FR), (b, DE)]) == {(b, DE): ("not-open", "closed")}  # FR: not learned
    finally:
        await conn.close()
