"""Helpers for the billing tests: events applied through the real consumer handler, a served app, offsets."""

from __future__ import annotations

import contextlib
import datetime as dt
import secrets
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg
import httpx
from fastapi import FastAPI

from unified_billing.app import CONSUMED_TOPICS, MIGRATIONS, create_service_app
from unified_billing.handlers import apply_event
from unified_billing.settings import Settings
from unified_shared import db, testing_consumers
from unified_shared.clock import FixedClock
from unified_shared.contracts.identity import AccountRegistered
from unified_shared.contracts.regions import (
    FxRatesPublished,
    ListingsActivated,
    SubscriptionStarted,
)
from unified_shared.events import Event
from unified_shared.testing import TestIssuer, serve_app
from unified_shared.testing_services import service_settings

OPERATOR_TOKEN = secrets.token_urlsafe(32)
US, DE, FR, JP, UK = "ATVPDKIKX0DER", "A1PA6795UKMFR9", "A13V1IB3VIYZZH", "A1VC38T7YXB528", "A1F83G8C2ARO7P"


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


Clock = FixedClock  # a clock the test moves by hand


async def migrated_pool(dsn: str) -> asyncpg.Pool:
    return await db.migrated_pool(dsn, MIGRATIONS)


async def feed(pool: asyncpg.Pool, *events: Event) -> None:
    """Apply events exactly as the consumer does (its handler, inside a transaction)."""
    await testing_consumers.feed(pool, apply_event, *events)


def registered(account: UUID, home: str = US, at: str = "2026-09-01T08:00") -> AccountRegistered:
    return AccountRegistered(
        account_id=account,
        legal_name="Test GmbH",
        home_marketplace_id=home,
        owner_user_id=uuid.uuid4(),
        owner_email="owner@example.test",
        registered_at=utc(at),
    )


def selling(account: UUID, marketplace: str, at: str) -> list[Event]:
    return [
        SubscriptionStarted(account_id=account, marketplace_id=marketplace, at=utc(at)),
        ListingsActivated(account_id=account, marketplace_id=marketplace, at=utc(at)),
    ]


async def new_seller(pool: asyncpg.Pool, home: str, *openings: tuple[str, str], rate_days: Sequence[str] = ()) -> UUID:
    """A new account registered at ``home`` that starts selling in each (marketplace, from) of ``openings``, and
    the test rates of ``rate_days``, applied: the set-up most closing tests start from."""
    account = uuid.uuid4()
    started = [event for marketplace, at in openings for event in selling(account, marketplace, at)]
    await feed(pool, registered(account, home), *started, *(rates(day) for day in rate_days))
    return account


@contextlib.asynccontextmanager
async def uncommitted(pool: asyncpg.Pool, statement: str, *args: object) -> AsyncIterator[None]:
    """Run ``statement`` in a transaction that stays open, its locks held, until the block ends; then roll it
    back. How a test holds a lock or a row another session must wait for."""
    conn = await pool.acquire()
    tx = conn.transaction()
    await tx.start()
    try:
        await conn.execute(statement, *args)
        yield
    finally:
        await tx.rollback()
        await pool.release(conn)


def rates(day: str, usd: str = "1.2320", jpy: str = "136.64", revision: int = 1) -> FxRatesPublished:
    return FxRatesPublished(
        date=dt.date.fromisoformat(day),
        rates={"USD": Decimal(usd), "JPY": Decimal(jpy), "GBP": Decimal("0.85")},
        source="test rates",
        revision=revision,
    )


topic_ends = testing_consumers.topic_ends


async def set_consumer_offsets(dsn: str, group: str, offsets: dict[tuple[str, int], int]) -> None:
    await testing_consumers.set_consumer_offsets(dsn, group, offsets, MIGRATIONS)


@dataclass
class RunningBilling:
    base: str
    app: FastAPI
    settings: Settings
    issuer: TestIssuer

    def client(self, token: str | None = None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(base_url=self.base, headers=headers, timeout=60.0)

    def owner(self, account: UUID, **claims: Any) -> str:
        return self.issuer.mint(account_id=account, **claims)


@contextlib.asynccontextmanager
async def running_billing(
    dsn: str,
    bootstrap: str,
    issuer: TestIssuer,
    jwks_url: str,
    *,
    clock: Callable[[], dt.datetime],
    group: str,
    start_offsets: dict[tuple[str, int], int] | None = None,
    **overrides: Any,
) -> AsyncIterator[RunningBilling]:
    if start_offsets is not None:
        await set_consumer_offsets(dsn, group, start_offsets)
    settings = service_settings(
        Settings,
        dsn,
        bootstrap,
        issuer=issuer,
        jwks_url=jwks_url,
        group=group,
        operator_token=OPERATOR_TOKEN,
        scheduler_enabled=False,
        **overrides,
    )
    app = create_service_app(settings, clock=clock)
    async with serve_app(app) as base:
        yield RunningBilling(base, app, settings, issuer)


async def start_offsets_for_billing(bootstrap: str) -> dict[tuple[str, int], int]:
    return await topic_ends(bootstrap, list(CONSUMED_TOPICS))


@contextlib.asynccontextmanager
async def billing_from_now(
    dsn: str,
    bootstrap: str,
    issuer: TestIssuer,
    jwks_url: str,
    *,
    clock: Callable[[], dt.datetime],
    name: str,
    **overrides: Any,
) -> AsyncIterator[RunningBilling]:
    """A billing service on a consumer group of its own that starts after what the shared topics hold already:
    another test's FX rates must not settle this test's periods."""
    async with running_billing(
        dsn,
        bootstrap,
        issuer,
        jwks_url,
        clock=clock,
        group=f"billing-{name}-{uuid.uuid4().hex[:8]}",
        start_offsets=await start_offsets_for_billing(bootstrap),
        **overrides,
    ) as svc:
        yield svc
