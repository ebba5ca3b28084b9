from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from unified_orders.app import create_service_app
from unified_orders.settings import Settings
from unified_shared.testing import TestIssuer, serve_app


@pytest.fixture
async def issuer() -> AsyncIterator[tuple[TestIssuer, str]]:
    test_issuer = TestIssuer()
    async with test_issuer.serve() as jwks_url:
        yield test_issuer, jwks_url


@pytest.fixture
async def start_orders(
    issuer: tuple[TestIssuer, str], make_db: Any, kafka_bootstrap: str
) -> AsyncIterator[Callable[[str], Awaitable[str]]]:
    """Start a regional orders instance on a fresh database; returns its base URL."""
    test_issuer, jwks_url = issuer
    async with contextlib.AsyncExitStack() as stack:

        async def start(region: str = "EU", *, participation_required: bool = False, **overrides: Any) -> str:
            # The gate on opened marketplaces has its own tests (test_participation_gate.py); the other suites
            # use accounts that never went through regions.
            settings = Settings(
                participation_required=participation_required,
                **overrides,
                region=region,
                database_url=await make_db(),
                kafka_bootstrap_servers=kafka_bootstrap,
                http_port=0,
                identity_issuer=test_issuer.issuer,
                identity_jwks_url=jwks_url,
                relay_poll_interval_s=0.05,
            )
            base: str = await stack.enter_async_context(serve_app(create_service_app(settings)))
            return base

        yield start
