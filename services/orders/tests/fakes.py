"""The orders tables in memory, for handler tests over ``unified_shared.uow.FakeUnits`` (no database)."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from unified_orders.domain import OrderState, RefundInput
from unified_orders.store import OrderQuery
from unified_shared.participations import Verdict


class FakeOrdersStore:
    """Same answers as ``PgOrdersStore`` for what the handlers ask (locks are no-ops: one caller at a time)."""

    def __init__(self) -> None:
        self.orders: dict[tuple[UUID, str], OrderState] = {}
        self.refunds: dict[tuple[UUID, str, str], RefundInput] = {}
        # what the participation consumer has learned: (account, marketplace) -> verdict (none by default)
        self.participations: dict[tuple[UUID, str], tuple[Verdict, str]] = {}

    async def get_order(self, account_id: UUID, amazon_order_id: str, *, for_update: bool = False) -> OrderState | None:
        return self.orders.get((account_id, amazon_order_id))

    async def get_orders_for_update(self, keys: Sequence[tuple[UUID, str]]) -> dict[tuple[UUID, str], OrderState]:
        return {k: self.orders[k] for k in sorted(set(keys)) if k in self.orders}

    async def save_orders(self, states: Sequence[tuple[UUID, OrderState]]) -> None:
        for account_id, state in states:
            await self.save_order(account_id, state)

    async def learned_verdicts(self, pairs: Sequence[tuple[UUID, str]]) -> dict[tuple[UUID, str], tuple[Verdict, str]]:
        return {p: self.participations[p] for p in pairs if p in self.participations}

    async def save_order(self, account_id: UUID, state: OrderState) -> None:
        self.orders[(account_id, state.amazon_order_id)] = state

    async def get_refund(self, account_id: UUID, amazon_order_id: str, refund_id: str) -> RefundInput | None:
        return self.refunds.get((account_id, amazon_order_id, refund_id))

    async def insert_refund(self, account_id: UUID, amazon_order_id: str, refund: RefundInput) -> None:
        key = (account_id, amazon_order_id, refund.refund_id)
        assert key not in self.refunds, "primary key violated"
        self.refunds[key] = refund

    async def list_orders(self, account_id: UUID, query: OrderQuery) -> list[OrderState]:
        def sort_time(o: OrderState) -> object:
            return o.purchase_date if query.sort == "created" else o.last_update_date

        rows = sorted(
            (
                o
                for (account, _), o in self.orders.items()
                if account == account_id
                and o.marketplace_id in query.marketplace_ids
                and sort_time(o) >= query.after  # type: ignore[operator]
                and (query.before is None or sort_time(o) < query.before)  # type: ignore[operator]
                and (not query.statuses or o.order_status in query.statuses)
                and (query.after_key is None or (sort_time(o), o.amazon_order_id) > query.after_key)  # type: ignore[operator]
            ),
            key=lambda o: (sort_time(o), o.amazon_order_id),  # type: ignore[return-value]
        )
        return rows[: query.limit]
