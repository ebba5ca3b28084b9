"""The day summaries kept by the consumer equal the per-order reference for random histories: orders and
their status changes, refunds (some in another currency) and newer snapshots, FX days that arrive late,
are revised (revision 2, 3), or come again as an older revision, all through the real handler table in
random batches, some batches delivered twice. Checked two ways: the kept rows equal rows recomputed from
scratch, and every overview read from them equals the reference computed in Python from every order."""

from __future__ import annotations

import json
import random
import uuid
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from unified_seller_view import summaries
from unified_seller_view.generations import readmodel_ddl
from unified_seller_view.handlers import table_for
from unified_shared.consumer import ReceivedEvent
from unified_shared.contracts import regions
from unified_shared.db import connect
from unified_shared.events import Event

from .order_histories import DAYS, T0, interleave, order_events
from .support import DE, UK, US, apply_in_random_batches, as_received, create_readmodels, overview_both_ways

SCHEMA = "sums"
RATES = [
    "1.1592",
    "0.85815",
    "2",
    "0.5",
    "161.23",
    "1.25",
    "0.8",
    "1.0000000000000000000123",
]  # the last: inexact in SQL; the rates are for days from T0 (order_histories: far from other tests)


def _fx(rng: random.Random, day: date, revision: int) -> regions.FxRatesPublished:
    rates = {c: Decimal(rng.choice(RATES)) for c in ("USD", "GBP", "JPY", "SEK") if rng.random() < 0.85}
    return regions.FxRatesPublished(date=day, rates=rates, source="test", revision=revision)


def history(rng: random.Random, accounts: list[uuid.UUID], n_orders: int, days: int = DAYS) -> list[Event]:
    """Orders of several accounts interleaved (each order's own events in order) with FX days published
    on time, late, revised, and replayed as an older revision."""
    queues = [order_events(rng, rng.choice(accounts), n, days=days) for n in range(n_orders)]
    fx_days = [T0.date() + timedelta(days=d) for d in range(0, days, 1) if rng.random() < 0.6]
    fx: list[Event] = []
    for day in fx_days:
        fx.append(_fx(rng, day, 1))
        for revision in range(2, rng.choice([2, 2, 3, 4])):
            fx.append(_fx(rng, day, revision))
        if rng.random() < 0.3:
            fx.append(_fx(rng, day, 1))  # an older revision arriving again: ignored
    rng.shuffle(fx)  # days arrive late and out of order
    queues.append(fx)
    return interleave(rng, queues)


def received_history(seed: int, accounts: list[int], n_orders: int, *, days: int) -> list[ReceivedEvent]:
    """history() of accounts ``UUID(int=...)``, as the consumer receives it."""
    return as_received(history(random.Random(seed), [uuid.UUID(int=a) for a in accounts], n_orders, days))


async def _rows(conn: asyncpg.Connection) -> list[str]:
    return [
        r["j"]
        for r in await conn.fetch(f"SELECT row_to_json(s)::text AS j FROM {SCHEMA}.order_day_summaries s ORDER BY 1")
    ]


async def _overviews(conn: asyncpg.Connection, account: uuid.UUID, case: dict[str, Any]) -> tuple[str, str]:
    return await overview_both_ways(conn, SCHEMA, account, **case)


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
async def test_kept_summaries_equal_the_per_order_reference(fresh_db: str, seed: int) -> None:
    rng = random.Random(seed)
    accounts = [uuid.UUID(int=rng.getrandbits(128)) for _ in range(2)]
    events = as_received(history(rng, accounts, 60))
    conn = await connect(fresh_db)
    try:
        await create_readmodels(conn, SCHEMA)
        await apply_in_random_batches(conn, SCHEMA, events, rng)
        kept = await _rows(conn)
        assert kept, "the history made no summaries"
        assert any('"inexact_positions":[' in r for r in kept), "no conversion took the inexact path"
        async with conn.transaction():
            await conn.execute(f"SET LOCAL search_path TO {SCHEMA}, public")
            await summaries.refresh_all(conn)
        assert await _rows(conn) == kept  # kept incrementally == recomputed from scratch
        for account in accounts:
            for currency in ("USD", "EUR", "GBP", "JPY", "SEK"):
                reference, summed = await _overviews(
                    conn, account, {"reporting_currency": currency, "marketplaces": None}
                )
                assert summed == reference, currency
            for _ in range(4):
                first = T0 + timedelta(days=rng.randint(0, DAYS))
                case = {
                    "reporting_currency": rng.choice(["USD", "EUR", "GBP"]),
                    "marketplaces": rng.choice([None, [US], [DE, UK]]),
                    "purchased_after": rng.choice([None, first]),
                    "purchased_before": rng.choice([None, first + timedelta(days=rng.randint(1, 5))]),
                }
                reference, summed = await _overviews(conn, account, case)
                assert summed == reference, case
        full = json.loads((await _overviews(conn, accounts[0], {"reporting_currency": "USD", "marketplaces": None}))[1])
        assert full["fx_rates_used"] and full["total"]["refunds"]
    finally:
        await conn.close()


async def test_a_generation_built_before_the_summaries_is_kept_and_read_without_them(fresh_db: str) -> None:
    """A live generation from an older readmodel.sql (no summaries table) keeps consuming and answering, from
    the orders themselves, until a rebuild replaces it."""
    rng = random.Random(9)
    account = uuid.UUID(int=rng.getrandbits(128))
    events = as_received(history(rng, [account], 15))
    conn = await connect(fresh_db)
    try:
        await conn.execute(f"CREATE SCHEMA {SCHEMA}; SET search_path TO {SCHEMA}, public; {readmodel_ddl()}")
        await conn.execute("DROP TABLE order_day_summaries; RESET search_path")
        table = table_for(SCHEMA)
        for start in range(0, len(events), 10):
            async with conn.transaction():
                await table.apply(conn, events[start : start + 10])
        assert await conn.fetchval(f"SELECT count(*) FROM {SCHEMA}.orders") == 15
        reference, summed = await _overviews(conn, account, {"reporting_currency": "USD", "marketplaces": None})
        assert summed == reference
    finally:
        await conn.close()
