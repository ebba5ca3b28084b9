"""The month sums and the per-day rate look-ups that the overview reads (kept with the day summaries by the
statements that write them: contribution_sql.py, summary_sql.py) through random histories over three months:
orders changing day, refunds, FX days late, revised and replayed, random batches, some delivered twice.
Checked three ways: the kept rows equal the day rows rolled up from scratch, every overview read through the
months equals the per-order reference (ranges that cut months, scopes, currencies), and the monthly time
series equals the one summed from days. Read-model steps 004 and 005 give an older generation the same rows."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from unified_seller_view import overview_queries, overview_rollup, summaries, timeseries
from unified_shared.db import connect

from . import test_summaries as history_of
from .support import (
    DE,
    UK,
    US,
    apply_in_batches,
    apply_in_random_batches,
    as_received,
    create_readmodels,
    forget_step,
    live_generation,
)

SCHEMA = "sums"  # as test_summaries' helpers expect

_ARRAYS = ("n_converted", "n_unconverted", "amount_unconverted", "reporting_units")


def _plus(a: list[Any], b: list[Any]) -> list[Any]:
    return [x + y for x, y in zip(a, b, strict=True)]


def _canonical(rows: dict[tuple[Any, ...], dict[str, Any]]) -> list[str]:
    """Rows as text, zero rows left out (the tables delete them), numbers compared by value (not scale)."""
    out = []
    for key, r in rows.items():
        if r.get("n", 1) == 0 or r.get("n_rate_lookups") == [0] * 6:
            continue
        values = {k: [str(Decimal(x).normalize()) for x in v] if isinstance(v, list) else v for k, v in r.items()}
        values = {k: str(Decimal(v).normalize()) if isinstance(v, (int, Decimal)) else v for k, v in values.items()}
        out.append(f"{key} {sorted(values.items())}")
    return sorted(out)


async def _differences(conn: asyncpg.Connection, schema: str) -> tuple[list[str], list[str]]:
    """(kept rows, the day rows rolled up here) of both derived tables, to be equal."""
    months: dict[tuple[Any, ...], dict[str, Any]] = {}
    lookups: dict[tuple[Any, ...], dict[str, Any]] = {}
    for d in await conn.fetch(f"SELECT * FROM {schema}.order_day_summaries"):
        key = (d["account_id"], d["day"].replace(day=1), d["kind"], d["marketplace_id"], d["currency"], d["status"])
        m = months.setdefault(
            key, {"n": 0, "units": None if d["units"] is None else 0, "amount": Decimal(0), "n_inexact": [0] * 6}
        )
        m["n"] += d["n"]
        m["units"] = None if d["units"] is None else m["units"] + d["units"]
        m["amount"] += d["amount"]
        for col in _ARRAYS:
            m[col] = _plus(m.get(col, [0] * 6), list(d[col]))
        m["n_inexact"] = [c + (p in (d["inexact_positions"] or [])) for p, c in enumerate(m["n_inexact"], start=1)]
        look = lookups.setdefault((d["account_id"], d["day"], d["marketplace_id"], d["currency"]), {})
        look["n_rate_lookups"] = _plus(look.get("n_rate_lookups", [0] * 6), list(d["n_rate_lookups"]))
    kept_months = {
        (r["account_id"], r["month"], r["kind"], r["marketplace_id"], r["currency"], r["status"]): {
            "n": r["n"],
            "units": r["units"],
            "amount": r["amount"],
            "n_inexact": list(r["n_inexact"]),
            **{col: list(r[col]) for col in _ARRAYS},
        }
        for r in await conn.fetch(f"SELECT * FROM {schema}.order_month_summaries")
    }
    kept_lookups = {
        (r["account_id"], r["day"], r["marketplace_id"], r["currency"]): {"n_rate_lookups": list(r["n_rate_lookups"])}
        for r in await conn.fetch(f"SELECT * FROM {schema}.order_day_lookups")
    }
    assert all(r["n"] != 0 for r in kept_months.values())
    assert all(r["n_rate_lookups"] != [0] * 6 for r in kept_lookups.values())
    return (
        _canonical(kept_months) + _canonical(kept_lookups),
        _canonical(months) + _canonical(lookups),
    )


async def _json(conn: asyncpg.Connection, account: uuid.UUID, in_python: bool = False, **case: Any) -> str:
    async with conn.transaction(readonly=True, isolation="repeatable_read"):
        await conn.execute(f"SET LOCAL search_path TO {SCHEMA}, public")
        q = overview_queries.OverviewQuery(account, **case)
        return json.dumps(await overview_queries.overview(conn, q, in_python=in_python), sort_keys=True)


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_months_kept_by_the_triggers_answer_as_the_per_order_reference(
    fresh_db: str, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    if seed != 1:  # no inexact conversion: nothing sends the read back to the day rows
        monkeypatch.setattr(history_of, "RATES", history_of.RATES[:-1])
    rng = random.Random(seed)
    accounts = [uuid.UUID(int=rng.getrandbits(128)) for _ in range(2)]
    # March, April, half of May 2011: whole months to read
    events = as_received(history_of.history(rng, accounts, 120, days=75))
    conn = await connect(fresh_db)
    try:
        await create_readmodels(conn, SCHEMA)
        await apply_in_random_batches(conn, SCHEMA, events, rng)
        months = await conn.fetch(f"SELECT DISTINCT month FROM {SCHEMA}.order_month_summaries ORDER BY 1")
        assert [m["month"] for m in months] == [date(2011, 3, 1), date(2011, 4, 1), date(2011, 5, 1)]
        kept, rolled_up = await _differences(conn, SCHEMA)
        assert kept == rolled_up
        async with conn.transaction():
            await conn.execute(f"SET LOCAL search_path TO {SCHEMA}, public")
            await summaries.refresh_all(conn)  # every day row deleted and inserted again
        kept, rolled_up = await _differences(conn, SCHEMA)
        assert kept == rolled_up
        latest = await conn.fetchval(f"SELECT max(date) FROM {SCHEMA}.fx_days")
        assert latest >= date(2011, 4, 30), "no whole month before the newest rate day: months never read"

        day_path_used = 0
        real_day_path = summaries.overview_sums

        async def counted(*args: Any, **kwargs: Any) -> list[dict[str, Any]]:
            nonlocal day_path_used
            day_path_used += 1
            return await real_day_path(*args, **kwargs)

        monkeypatch.setattr(summaries, "overview_sums", counted)
        t0 = history_of.T0
        cases: list[dict[str, Any]] = [{"reporting_currency": c} for c in ("USD", "EUR", "GBP", "JPY")]
        for _ in range(10):
            first = t0 + timedelta(days=rng.choice([0, 1, 31, 45, 61]))
            cases.append(
                {
                    "reporting_currency": rng.choice(["USD", "EUR", "GBP"]),
                    "marketplaces": rng.choice([None, [US], [DE, UK]]),
                    "purchased_after": rng.choice([None, first]),
                    "purchased_before": rng.choice(
                        [None, first + timedelta(days=rng.choice([0, 30, 31, 61])), datetime(2011, 5, 1, tzinfo=UTC)]
                    ),
                }
            )
        for account in accounts:
            for given in cases:
                case = {"marketplaces": None, **given}
                summed = await _json(conn, account, **case)
                reference = await _json(conn, account, in_python=True, **case)
                assert summed == reference, case
        if seed != 1:
            assert day_path_used == 0  # every answer above came through the months
    finally:
        await conn.close()


async def test_the_monthly_time_series_from_months_equals_the_one_from_days(
    fresh_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(history_of, "RATES", history_of.RATES[:-1])
    rng = random.Random(7)
    account = uuid.UUID(int=rng.getrandbits(128))
    events = as_received(history_of.history(rng, [account], 80, days=75))
    conn = await connect(fresh_db)
    try:
        await create_readmodels(conn, SCHEMA)
        await apply_in_batches(conn, SCHEMA, events, 25)

        async def series(first: date, last: date) -> str:
            async with conn.transaction(readonly=True, isolation="repeatable_read"):
                await conn.execute(f"SET LOCAL search_path TO {SCHEMA}, public")
                got = await timeseries.timeseries(
                    conn,
                    account,
                    marketplaces=None,
                    reporting_currency="USD",
                    granularity="month",
                    first=first,
                    last=last,
                )
            return json.dumps(got, sort_keys=True)

        ranges = [(date(2011, 3, 1), date(2011, 5, 31)), (date(2011, 3, 2), date(2011, 4, 30))]
        from_months = [await series(a, b) for a, b in ranges]

        async def not_available(conn: asyncpg.Connection) -> bool:
            return False

        monkeypatch.setattr(overview_rollup, "available", not_available)  # the day summaries alone
        assert [await series(a, b) for a, b in ranges] == from_months
        assert '"orders": 0' not in from_months[0].split('"buckets"')[1][:400]  # March had orders
    finally:
        await conn.close()


async def test_steps_004_005_give_an_older_generation_the_same_rows(make_db: Any) -> None:
    from unified_seller_view import generations as gens

    dsn = await make_db()
    conn = await connect(dsn)
    try:
        old = await live_generation(conn)
        events = history_of.received_history(3, [5, 6], 40, days=75)
        await apply_in_batches(conn, old.schema, events, 20)
        assert await conn.fetchval(f'SELECT count(*) FROM "{old.schema}".order_day_summaries') > 0
        # the generation as the read model made it before step 004: day summaries, no months, no look-ups
        await conn.execute(
            f"""DROP TABLE "{old.schema}".order_month_summaries, "{old.schema}".order_day_lookups,
                    "{old.schema}".order_contributions;
                DROP FUNCTION "{old.schema}".order_rollup_apply"""
        )
        # step 004 as it ran (months filled, triggers), then 005 (the triggers give way to the statements that
        # keep the rows; the contributions filled at start-up)
        await forget_step(conn, old.schema, 4)
        await forget_step(conn, old.schema, 5)
        applied = await gens.upgrade_generations(conn)
        assert applied == [f"{old.schema}:004_order_month_summaries", f"{old.schema}:005_order_contributions"]
        assert await summaries.fill_contributions(conn) == [old.schema]
        assert await conn.fetchval(f'SELECT count(*) FROM "{old.schema}".order_month_summaries') > 0
        kept, rolled_up = await _differences(conn, f'"{old.schema}"')
        assert kept == rolled_up
        # and the statements that write the day rows keep them from now on, without triggers
        assert not await conn.fetchval(
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = $1::regclass",
            f'"{old.schema}".order_day_summaries',
        )
        await apply_in_batches(conn, old.schema, events, 7)  # replayed by the consumer's path: a difference per batch
        kept, rolled_up = await _differences(conn, f'"{old.schema}"')
        assert kept == rolled_up
        async with conn.transaction():
            await conn.execute(f'SET LOCAL search_path TO "{old.schema}", public')
            await summaries.refresh_all(conn)
        kept, rolled_up = await _differences(conn, f'"{old.schema}"')
        assert kept == rolled_up
        async with conn.transaction():  # emptied with their day rows
            await conn.execute(f'SET LOCAL search_path TO "{old.schema}", public; DELETE FROM orders')
            await summaries.refresh_all(conn)
        assert await _differences(conn, f'"{old.schema}"') == ([], [])
    finally:
        await conn.close()
