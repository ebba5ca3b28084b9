"""Test helpers for the regions service (its own suite and other services' tests): a real service on a
socket with a token issuer, accounts made known directly, consumers that start at the end of a topic."""

from __future__ import annotations

import contextlib
import datetime as dt
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from uuid import UUID

import httpx
from aiokafka import TopicPartition
from fastapi import FastAPI

from unified_regions import bootstrap as composition
from unified_regions import handlers
from unified_regions.bootstrap import MIGRATIONS
from unified_regions.settings import Settings
from unified_shared.contracts.identity import AccountRegistered
from unified_shared.db import SHARED_COMPONENT, apply_migrations, connect
from unified_shared.kafka import make_reader
from unified_shared.testing import TestIssuer, serve_app
from unified_shared.testing_services import service_settings
from unified_shared.topics import IDENTITY_ACCOUNTS

OPERATOR_TOKEN = secrets.token_urlsafe(32)  # operator tokens are at least 32 characters


@dataclass
class Running:
    base: str
    app: FastAPI
    settings: Settings
    issuer: TestIssuer
    dsn: str

    def client(self, token: str | None = None, *, operator: bool = True) -> httpx.AsyncClient:
        """A client with the caller's token; by default also the operator's credential, since the tests
        replay September and October 2026 with backdated effective times (only the operator may)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if operator:
            headers["X-Operator-Token"] = OPERATOR_TOKEN
        return httpx.AsyncClient(base_url=self.base, headers=headers, timeout=30.0)

    def token(self, account_id: UUID, role: str = "owner", marketplaces: object = "*") -> str:
        return self.issuer.mint(account_id=account_id, role=role, marketplaces=marketplaces)


async def start_consumer_at_end(dsn: str, group: str, bootstrap: str, topics: list[str]) -> None:
    """Topics are shared and keep history: make the service's consumer start at their current end (it
    seeks to the offsets stored in its database), so a test sees only the events it produced."""
    conn = await connect(dsn)
    probe = make_reader(bootstrap, client_id="regions-test-probe")
    await probe.start()
    try:
        await apply_migrations(conn, [SHARED_COMPONENT, *MIGRATIONS])
        await probe._client.force_metadata_update()  # a fresh client may know no topic yet
        parts = [TopicPartition(t, p) for t in topics for p in sorted(probe.partitions_for_topic(t) or [])]
        assert parts, f"no partitions found for {topics}"
        ends = await probe.end_offsets(parts)
        for tp, offset in ends.items():
            await conn.execute(
                "INSERT INTO consumer_offsets (consumer, topic, partition, next_offset) VALUES ($1, $2, $3, $4)",
                group,
                tp.topic,
                tp.partition,
                offset,
            )
    finally:
        await probe.stop()
        await conn.close()


@contextlib.asynccontextmanager
async def running_service(dsn: str, bootstrap: str, **overrides: object) -> AsyncIterator[Running]:
    issuer = TestIssuer()
    group = f"regions-test-{uuid.uuid4().hex[:10]}"
    await start_consumer_at_end(dsn, group, bootstrap, [IDENTITY_ACCOUNTS])
    async with issuer.serve() as jwks_url:
        values = {"operator_token": OPERATOR_TOKEN, "fx_fetch_enabled": False, **overrides}
        settings = service_settings(Settings, dsn, bootstrap, issuer=issuer, jwks_url=jwks_url, group=group, **values)
        app = composition.bootstrap(settings)
        async with serve_app(app) as base:
            yield Running(base, app, settings, issuer, dsn)


async def register_directly(
    dsn: str, account_id: UUID, home: str = "ATVPDKIKX0DER", at: dt.datetime | None = None, name: str = "Test GmbH"
) -> None:
    """Make an account known the way the identity consumer does, without going through Kafka."""
    conn = await connect(dsn)
    try:
        async with conn.transaction():
            await handlers.register_account(
                conn,
                AccountRegistered(
                    account_id=account_id,
                    legal_name=name,
                    home_marketplace_id=home,
                    owner_user_id=uuid.uuid4(),
                    owner_email="owner@example.test",
                    registered_at=at or dt.datetime(2026, 9, 1, 8, 0, tzinfo=dt.UTC),
                ),
            )
    finally:
        await conn.close()
