"""Helpers for the listings tests: a served listings app on a fresh database, events fed through its real
consumer handler (participations, FX days), and the consumer started at the topics' current ends."""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg
import httpx
from fastapi import FastAPI
from unified_listings.app import CONSUMED_TOPICS, MIGRATIONS, create_service_app
from unified_listings.handlers import apply_event
from unified_listings.settings import Settings

from unified_shared import testing_consumers
from unified_shared.contracts.regions import (
    FxRatesPublished,
    ListingsActivated,
    ParticipationClosed,
    ParticipationOpened,
)
from unified_shared.events import Event
from unified_shared.testing import TestIssuer, serve_app
from unified_shared.testing_services import service_settings

US, CA, DE, FR, JP, UK, EG = (
    "ATVPDKIKX0DER",
    "A2EUQ1WTGCTBG2",
    "A1PA6795UKMFR9",
    "A13V1IB3VIYZZH",
    "A1VC38T7YXB528",
    "A1F83G8C2ARO7P",
    "ARBP9OOSHTCHU",
)
AT = dt.datetime(2026, 9, 1, 8, tzinfo=dt.UTC)


def opened(account: UUID, *marketplaces: str) -> list[Event]:
    events: list[Event] = []
    for m in marketplaces:
        events += [
            ParticipationOpened(account_id=account, marketplace_id=m, at=AT),
            ListingsActivated(account_id=account, marketplace_id=m, at=AT),
        ]
    return events


def closed(account: UUID, marketplace: str) -> ParticipationClosed:
    return ParticipationClosed(account_id=account, marketplace_id=marketplace, at=AT)


def rates(day: str, usd: str = "1.1000", jpy: str = "160.00", revision: int = 1) -> FxRatesPublished:
    return FxRatesPublished(
        date=dt.date.fromisoformat(day),
        rates={"USD": Decimal(usd), "JPY": Decimal(jpy), "GBP": Decimal("0.85"), "CAD": Decimal("1.50")},
        source="test rates",
        revision=revision,
    )


async def feed(pool: asyncpg.Pool, *events: Event) -> None:
    """Apply events exactly as the consumer does (its handler, inside a transaction)."""
    await testing_consumers.feed(pool, apply_event, *events)


async def start_at_topic_ends(dsn: str, bootstrap: str, group: str) -> None:
    """Topics keep every earlier test's events: the consumer starts after them (offsets stored in its DB)."""
    ends = await testing_consumers.topic_ends(bootstrap, CONSUMED_TOPICS)
    await testing_consumers.set_consumer_offsets(dsn, group, ends, MIGRATIONS)


@dataclass
class RunningListings:
    base: str
    app: FastAPI
    issuer: TestIssuer

    @property
    def pool(self) -> asyncpg.Pool:
        pool: asyncpg.Pool = self.app.state.runtime.pool
        return pool

    def client(self, account: UUID, **claims: Any) -> httpx.AsyncClient:
        token = self.issuer.mint(account_id=account, **claims)
        return httpx.AsyncClient(base_url=self.base, headers={"Authorization": f"Bearer {token}"}, timeout=60.0)


@contextlib.asynccontextmanager
async def running_listings(
    dsn: str, bootstrap: str, issuer: TestIssuer, jwks_url: str
) -> AsyncIterator[RunningListings]:
    group = f"listings-test-{uuid.uuid4().hex[:8]}"
    await start_at_topic_ends(dsn, bootstrap, group)
    settings = service_settings(
        Settings, dsn, bootstrap, issuer=issuer, jwks_url=jwks_url, group=group, http_port=0, relay_poll_interval_s=0.05
    )
    app = create_service_app(settings)
    async with serve_app(app) as base:
        yield RunningListings(base, app, issuer)
