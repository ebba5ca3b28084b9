"""What billing's commands share: settings, the pool (once the service has started), the clock, the relay's
wake-up, the cap, and computing one account period's charges from the stored facts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from uuid import UUID

import asyncpg

from unified_billing import domain, store
from unified_billing.domain import Cap, Period, PeriodCharges
from unified_billing.settings import Settings
from unified_shared.clock import Clock, system_clock


class BillingBase:
    def __init__(
        self,
        settings: Settings,
        pool: Callable[[], asyncpg.Pool],
        *,
        clock: Clock = system_clock,
        notify: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self._pool = pool
        self.clock = clock
        self._notify = notify or (lambda: None)

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool()

    @property
    def cap(self) -> Cap:
        return Cap(self.settings.billing_cap_amount, self.settings.billing_cap_currency.upper())

    async def _compute(
        self, conn: asyncpg.Connection, account_id: UUID, period: Period, *, as_of: dt.date | None, final: bool
    ) -> PeriodCharges:
        day = min(period.last_day, as_of) if as_of else period.last_day
        return domain.compute_period(
            period,
            await store.load_facts(conn, account_id),
            home_marketplace_id=await store.home_marketplace(conn, account_id),
            schedule=await store.load_schedule(conn),
            publications=await store.load_publications(conn, day, lookback_days=self.settings.fx_lookback_days),
            cap=self.cap,
            as_of=as_of,
            final=final,
        )
