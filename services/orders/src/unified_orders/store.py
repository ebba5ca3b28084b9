"""SQL for the orders service's own tables (``orders``, ``order_refunds``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol
from uuid import UUID

import asyncpg

from unified_orders.domain import OrderState, RefundInput
from unified_shared import participations, state_rows
from unified_shared.participations import Verdict

SortKey = Literal["created", "updated"]
OrderKey = tuple[UUID, str]  # (account, AmazonOrderId)


def stream_id(account_id: UUID, amazon_order_id: str) -> str:
    """One event stream per order (and per account: two accounts never share a stream)."""
    return f"order:{account_id}:{amazon_order_id}"


def _state(row: asyncpg.Record) -> OrderState:
    """An ``orders`` row: its columns after ``account_id`` bear the state's field names (state_rows)."""
    return state_rows.from_row(OrderState, row)


@dataclass(frozen=True, slots=True)
class OrderQuery:
    """A getOrders page request, already validated: keyset ``after_key`` = (sort time, order ID) of the last row."""

    marketplace_ids: Sequence[str]
    sort: SortKey
    after: datetime
    before: datetime | None
    statuses: Sequence[str]
    limit: int
    after_key: tuple[datetime, str] | None = None


class OrdersStore(Protocol):
    """What the handlers need of the orders tables (PostgreSQL here; in memory in the unit tests)."""

    async def get_order(
        self, account_id: UUID, amazon_order_id: str, *, for_update: bool = False
    ) -> OrderState | None: ...
    async def get_orders_for_update(self, keys: Sequence[OrderKey]) -> dict[OrderKey, OrderState]: ...
    async def save_orders(self, states: Sequence[tuple[UUID, OrderState]]) -> None: ...
    async def learned_verdicts(
        self, pairs: Sequence[tuple[UUID, str]]
    ) -> dict[tuple[UUID, str], tuple[Verdict, str]]: ...
    async def save_order(self, account_id: UUID, state: OrderState) -> None: ...
    async def get_refund(self, account_id: UUID, amazon_order_id: str, refund_id: str) -> RefundInput | None: ...
    async def insert_refund(self, account_id: UUID, amazon_order_id: str, refund: RefundInput) -> None: ...
    async def list_orders(self, account_id: UUID, query: OrderQuery) -> list[OrderState]: ...


class PgOrdersStore:
    """The orders tables as seen by one connection (and its transaction)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def get_order(self, account_id: UUID, amazon_order_id: str, *, for_update: bool = False) -> OrderState | None:
        sql = "SELECT * FROM orders WHERE account_id = $1 AND amazon_order_id = $2"
        row = await self.conn.fetchrow(sql + (" FOR UPDATE" if for_update else ""), account_id, amazon_order_id)
        return _state(row) if row else None

    async def get_orders_for_update(self, keys: Sequence[OrderKey]) -> dict[OrderKey, OrderState]:
        """Lock and read many orders (of any accounts) in one statement, in key order (concurrent batches lock
        in the same order: no deadlock between two)."""
        wanted = sorted(set(keys))
        rows = await self.conn.fetch(
            """SELECT o.* FROM orders o JOIN unnest($1::uuid[], $2::text[]) AS k(a, i)
                 ON o.account_id = k.a AND o.amazon_order_id = k.i
               ORDER BY o.account_id, o.amazon_order_id FOR UPDATE OF o""",
            [a for a, _ in wanted],
            [i for _, i in wanted],
        )
        return {(r["account_id"], r["amazon_order_id"]): _state(r) for r in rows}

    async def save_orders(self, states: Sequence[tuple[UUID, OrderState]]) -> None:
        """Insert or overwrite many orders (of any accounts) in one statement, in key order (as they are locked)."""
        if not states:
            return
        ordered = sorted(states, key=lambda s: (s[0], s[1].amazon_order_id))
        rows = [(account, *state_rows.values(s)) for account, s in ordered]
        await self.conn.execute(
            """INSERT INTO orders (account_id, amazon_order_id, marketplace_id, purchase_date, last_update_date,
                                   order_status, fulfillment_channel, currency_code, amount, items_shipped,
                                   items_unshipped, refunded_amount, stream_version)
               SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[],
                                    $6::text[], $7::text[], $8::text[], $9::numeric[], $10::int[], $11::int[],
                                    $12::numeric[], $13::int[])
               ON CONFLICT (account_id, amazon_order_id) DO UPDATE SET
                   last_update_date = EXCLUDED.last_update_date, order_status = EXCLUDED.order_status,
                   items_shipped = EXCLUDED.items_shipped, items_unshipped = EXCLUDED.items_unshipped,
                   refunded_amount = EXCLUDED.refunded_amount, stream_version = EXCLUDED.stream_version""",
            *(list(column) for column in zip(*rows, strict=True)),  # one array a column
        )

    async def learned_verdicts(self, pairs: Sequence[tuple[UUID, str]]) -> dict[tuple[UUID, str], tuple[Verdict, str]]:
        """The participation gate's verdicts for the (account, marketplace) pairs it has learned (no wait)."""
        return await participations.learned_verdicts(self.conn, pairs)

    async def save_order(self, account_id: UUID, state: OrderState) -> None:
        """Insert or overwrite the order's current state (the caller holds its row lock or just created it)."""
        await self.save_orders([(account_id, state)])

    async def get_refund(self, account_id: UUID, amazon_order_id: str, refund_id: str) -> RefundInput | None:
        row = await self.conn.fetchrow(
            """SELECT refund_id, currency_code, amount, refunded_at FROM order_refunds
               WHERE account_id = $1 AND amazon_order_id = $2 AND refund_id = $3""",
            account_id,
            amazon_order_id,
            refund_id,
        )
        if row is None:
            return None
        return RefundInput(row["refund_id"], row["currency_code"], row["amount"], row["refunded_at"])

    async def insert_refund(self, account_id: UUID, amazon_order_id: str, refund: RefundInput) -> None:
        await self.conn.execute(
            """INSERT INTO order_refunds (account_id, amazon_order_id, refund_id, currency_code, amount, refunded_at)
               VALUES ($1, $2, $3, $4, $5, $6)""",
            account_id,
            amazon_order_id,
            refund.refund_id,
            refund.currency_code,
            refund.amount,
            refund.refunded_at,
        )

    async def list_orders(self, account_id: UUID, query: OrderQuery) -> list[OrderState]:
        """Orders in (sort time, order ID) order, strictly after the keyset position: stable across pages."""
        column = "purchase_date" if query.sort == "created" else "last_update_date"
        args: list[object] = [account_id, list(query.marketplace_ids), query.after]
        where = ["account_id = $1", "marketplace_id = ANY($2::text[])", f"{column} >= $3"]
        if query.before is not None:
            args.append(query.before)
            where.append(f"{column} < ${len(args)}")
        if query.statuses:
            args.append(list(query.statuses))
            where.append(f"order_status = ANY(${len(args)}::text[])")
        if query.after_key is not None:
            args += [query.after_key[0], query.after_key[1]]
            where.append(f"({column}, amazon_order_id) > (${len(args) - 1}, ${len(args)})")
        args.append(query.limit)
        sql = f"SELECT * FROM orders WHERE {' AND '.join(where)} ORDER BY {column}, amazon_order_id LIMIT ${len(args)}"
        return [_state(r) for r in await self.conn.fetch(sql, *args)]
