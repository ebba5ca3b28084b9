"""Billing settings from the environment (DESIGN section 9 defaults)."""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field

from unified_shared.config import ServiceSettings


class Settings(ServiceSettings):
    """Environment: DATABASE_URL, HTTP_PORT, ... plus BILLING_CAP_AMOUNT, BILLING_CAP_CURRENCY,
    OPERATOR_TOKEN, SCHEDULER_ENABLED, SCHEDULER_INTERVAL_S, SCHEDULER_MAX_CLOSES_PER_TICK, CLOSE_LOCK_TIMEOUT_S,
    FX_LOOKBACK_DAYS."""

    service_name: str = "billing"
    http_port: int = 8040
    database_url: str = "postgresql://postgres@127.0.0.1:55432/billing"
    # The monthly cap (Amazon: 39.99 USD) and its currency.
    billing_cap_amount: Decimal = Decimal("39.99")
    billing_cap_currency: str = "USD"
    # An operator credential for closing periods of every account (None: only owners close their own).
    operator_token: str | None = None
    # The scheduler closes every ended month that is due (never closed, late facts, held), oldest first,
    # at most this many account periods per tick.
    scheduler_enabled: bool = True
    scheduler_interval_s: float = 60.0
    scheduler_max_closes_per_tick: int = Field(default=200, ge=1)
    # How long a close waits for the account's locks (the consumer holds the account's lock for a whole
    # batch); then the close gives up: the period stays due, the API answers 503 with Retry-After.
    close_lock_timeout_s: float = Field(default=5.0, gt=0)
    # How far back before a period's last day FX publications are looked for.
    fx_lookback_days: int = 14
