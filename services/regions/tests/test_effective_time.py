"""Effective times: a seller records changes up to 24 h late; older ones are the operator's (history brought
over), because billing may have invoiced that time already; the future is refused."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator

import pytest

from unified_regions.testing import Running, register_directly, running_service


@pytest.fixture
async def svc(fresh_db: str, kafka_bootstrap: str) -> AsyncIterator[Running]:
    async with running_service(fresh_db, kafka_bootstrap) as running:
        yield running


async def test_backdating_beyond_a_day_needs_the_operator_and_the_future_is_refused(svc: Running) -> None:
    account = uuid.uuid4()
    now = dt.datetime.now(dt.UTC)
    await register_directly(svc.dsn, account, at=now - dt.timedelta(days=60))
    owner = svc.token(account)
    base = f"/v1/accounts/{account}/participations"
    async with svc.client(owner, operator=False) as seller:
        old = await seller.post(base, json={"marketplace": "DE", "at": (now - dt.timedelta(days=2)).isoformat()})
        assert old.status_code == 403, old.text
        assert old.json()["field"] == "at"
        future = await seller.post(base, json={"marketplace": "DE", "at": (now + dt.timedelta(days=1)).isoformat()})
        assert future.status_code == 422, future.text
        late = await seller.post(base, json={"marketplace": "DE", "at": (now - dt.timedelta(hours=3)).isoformat()})
        assert late.status_code == 201, late.text
        current = await seller.post(f"{base}/DE/start-subscription", json={})
        assert current.status_code == 200, current.text
    async with svc.client(owner, operator=True) as operator:
        history = await operator.post(base, json={"marketplace": "FR", "at": (now - dt.timedelta(days=30)).isoformat()})
        assert history.status_code == 201, history.text
