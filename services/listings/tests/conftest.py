from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from unified_shared.testing import TestIssuer

from .support import RunningListings, running_listings


@pytest.fixture
async def listings(make_db: Any, kafka_bootstrap: str) -> AsyncIterator[RunningListings]:
    issuer = TestIssuer()
    async with issuer.serve() as jwks_url, running_listings(await make_db(), kafka_bootstrap, issuer, jwks_url) as svc:
        yield svc
