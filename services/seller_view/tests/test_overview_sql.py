"""The overview summed in PostgreSQL must give exactly the answers of the reference (every order loaded and
converted in Python by overview_rules.build_overview): same JSON, byte for byte, on randomized read models with
exact half-even ties, refunds in other currencies, currencies without rates, canceled orders, day
boundaries, scopes and date filters, and rates with so many digits that Python's 34-digit intermediate
rounding differs from exact arithmetic (those amounts take the fallback)."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from fractions import Fraction
from typing import Any

import asyncpg
import pytest

from unified_seller_view import overview_queries, overview_rules, summaries
from unified_seller_view.generations import readmodel_ddl
from unified_shared.db import connect

from .support import AE, DE, FR, JP, UK, US, overview_both_ways

SCHEMA = "view_eq"
MARKETS = {
    US: ("USD", "NA"),
    DE: ("EUR", "EU"),
    FR: ("EUR", "EU"),
    UK: ("GBP", "EU"),
    JP: ("JPY", "FE"),
    AE: ("AED", "EU"),
}
UNKNOWN_MARKET = "AZZZZZZZZZZZZZ"  # not in the catalog: still summed, listed without a code
CURRENCIES = ["USD", "EUR", "GBP", "JPY", "AED", "SEK", "KWD", "CHF"]
REPORTING = ["USD", "EUR", "JPY", "GBP", "KWD", "AED", "SEK"]
STATUSES = ["Shipped", "Unshipped", "Pending", "Canceled", "PartiallyShipped"]
FIRST_DAY = date(2026, 9, 1)
DAYS = 20
# "nice" rates make exact ties (e.g. 0.01 x 1 / 2 = 0.005); ECB-like ones make ordinary products.
NICE_RATES = ["2", "4", "0.5", "1.25", "8", "1.6", "0.8", "5", "10", "0.25"]
ECB_LIKE = ["1.1592", "0.85815", "178.56", "11.2345", "0.30712", "1.0741", "4.2528", "161.23"]


def _long_rate(rng: random.Random) -> Decimal:
    """A rate with 25-45 decimals: products beyond 34 digits, quotients next to a tie."""
    places = rng.randint(25, 45)
    base = Decimal(rng.choice(NICE_RATES))
    with localcontext() as ctx:
        ctx.prec = 80
        return base + Decimal(rng.choice([1, -1, 3, 7])).scaleb(-places)


def _amount(rng: random.Random) -> Decimal:
    kind = rng.random()
    if kind < 0.35:
        return Decimal(rng.randint(0, 99999)).scaleb(-2)
    if kind < 0.55:  # multiples of 0.005: ties in the reporting currency itself and after nice rates
        return Decimal(rng.randint(0, 20000) * 5).scaleb(-3)
    if kind < 0.7:
        return Decimal(rng.randint(0, 10**6)).scaleb(-rng.randint(0, 4))
    if kind < 0.8:
        return Decimal(rng.choice([1, 3, 5, 7, 9, 11, 25, 75])).scaleb(-2)
    if kind < 0.9:
        return Decimal(rng.randint(1, 10**8)).scaleb(-rng.randint(5, 12))
    return Decimal(rng.randint(0, 5000))


async def _fill(conn: asyncpg.Connection, rng: random.Random, account: uuid.UUID, n_orders: int) -> None:
    # rates: not every currency every day; AED never; the first days have none at all
    for i in range(3, DAYS, 2):
        day = FIRST_DAY + timedelta(days=i)
        await conn.execute(
            "INSERT INTO fx_days (date, revision, source, derived) VALUES ($1, $2, 'test', '{}'::jsonb)",
            day,
            rng.randint(1, 3),
        )
        for currency in CURRENCIES:
            if currency in ("EUR", "AED") or rng.random() < 0.25:
                continue
            pick = rng.random()
            if pick < 0.4:
                rate = Decimal(rng.choice(NICE_RATES))
            elif pick < 0.85:
                rate = Decimal(rng.choice(ECB_LIKE))
            else:
                rate = _long_rate(rng)
            await conn.execute("INSERT INTO fx_rates (currency, date, rate) VALUES ($1, $2, $3)", currency, day, rate)
    markets = [*MARKETS, UNKNOWN_MARKET]
    for owner in (account, uuid.uuid4()):  # a second account must never leak into the first's sums
        for i in range(n_orders if owner == account else 30):
            market = rng.choice(markets)
            home, region = MARKETS.get(market, ("EUR", "EU"))
            currency = home if rng.random() < 0.8 else rng.choice(CURRENCIES)
            # purchases around UTC midnight: the purchase day is the UTC date
            purchased = datetime(2026, 9, 1, tzinfo=UTC) + timedelta(
                days=rng.randint(0, DAYS), hours=rng.choice([0, 0, 23, 12]), minutes=rng.choice([0, 59, 30])
            )
            order_id = f"{i:03d}-{rng.randint(0, 9999999):07d}"
            await conn.execute(
                """INSERT INTO orders (account_id, amazon_order_id, marketplace_id, region, purchase_date,
                       last_update_date, status, fulfillment_channel, currency, amount, number_of_items,
                       items_shipped, items_unshipped)
                   VALUES ($1, $2, $3, $4, $5, $5, $6, 'MFN', $7, $8, $9, 0, 0)""",
                owner,
                order_id,
                market,
                region,
                purchased,
                rng.choice(STATUSES),
                currency,
                _amount(rng),
                rng.randint(0, 5),
            )
            for _ in range(rng.choice([0, 0, 0, 1, 1, 2, 3])):
                await conn.execute(
                    """INSERT INTO order_refunds (account_id, event_id, amazon_order_id, currency, amount, refunded_at)
                       VALUES ($1, $2, $3, $4, $5, $6)""",
                    owner,
                    uuid.UUID(int=rng.getrandbits(128)),
                    order_id,
                    currency if rng.random() < 0.7 else rng.choice(CURRENCIES),
                    _amount(rng),
                    purchased + timedelta(days=1),
                )
    await conn.execute(
        """INSERT INTO accounts (account_id, legal_name, home_marketplace_id, owner_user_id, owner_email,
               registered_at) VALUES ($1, 'Eq GmbH', $2, $3, 'o@example.com', $4)""",
        account,
        DE,
        uuid.uuid4(),
        datetime(2026, 8, 1, tzinfo=UTC),
    )


def _exact_half_even(amount: Decimal, local: Decimal, target: Decimal, unit: Decimal) -> Decimal:
    """Exact rational half-even rounding (what SQL computes), to show the fallback is needed."""
    x = Fraction(amount) * Fraction(target) / Fraction(local) / Fraction(unit)
    n = x.numerator // x.denominator
    rest = x - n
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and n % 2):
        n += 1
    return Decimal(n) * unit


def test_python_rounding_can_differ_from_exact_arithmetic() -> None:
    """Why the SQL path certifies exactness: 1 x (0.075 + 3e-40) / 3 is just above the tie 0.025, but
    Python's 34-digit product rounds it onto the tie, which goes to the even 0.02."""
    target = Decimal("0.075" + "0" * 36 + "3")
    got = overview_rules.convert(
        Decimal(1), overview_rules.Rate("X", None, Decimal(3)), overview_rules.Rate("Y", None, target), "USD"
    )
    assert got == Decimal("0.02")
    assert _exact_half_even(Decimal(1), Decimal(3), target, Decimal("0.01")) == Decimal("0.03")
    with localcontext() as ctx:
        ctx.prec = 60
        assert (Decimal(1) * target / 3).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN) == Decimal("0.03")


async def _both(conn: asyncpg.Connection, account: uuid.UUID, **kwargs: Any) -> tuple[str, str]:
    return await overview_both_ways(conn, SCHEMA, account, **kwargs)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
async def test_sql_overview_equals_the_python_reference(fresh_db: str, seed: int) -> None:
    rng = random.Random(seed)
    conn = await connect(fresh_db)
    try:
        await conn.execute(f"CREATE SCHEMA {SCHEMA}")
        await conn.execute(f"SET search_path TO {SCHEMA}, public")
        await conn.execute(readmodel_ddl())
        account = uuid.UUID(int=rng.getrandbits(128))
        await _fill(conn, rng, account, 350)
        await summaries.refresh_all(conn)  # loaded without the consumer: the day summaries computed at once
        await conn.execute("RESET search_path")
        cases: list[dict[str, Any]] = [{"reporting_currency": c, "marketplaces": None} for c in REPORTING]
        markets = [*MARKETS, UNKNOWN_MARKET]
        for _ in range(14):
            after = datetime(2026, 9, 1, tzinfo=UTC) + timedelta(days=rng.randint(0, DAYS), hours=rng.choice([0, 23]))
            cases.append(
                {
                    "reporting_currency": rng.choice(REPORTING),
                    "marketplaces": rng.choice([None, [], rng.sample(markets, rng.randint(1, 4))]),
                    "purchased_after": rng.choice([None, after]),
                    "purchased_before": rng.choice([None, after + timedelta(days=rng.randint(0, 6))]),
                }
            )
        fallback_used = 0
        for case in cases:
            reference, summed = await _both(conn, account, **case)
            assert summed == reference, case
        # the data did exercise every rule: ties, unconverted orders, rates used, the inexact fallback
        async with conn.transaction(readonly=True):
            await conn.execute(f"SET LOCAL search_path TO {SCHEMA}, public")
            for currency in REPORTING:
                rows = await _sum_rows(conn, account, currency)
                fallback_used += sum(len(r["inexact_amounts"] or []) for r in rows)
        full = json.loads((await _both(conn, account, reporting_currency="USD", marketplaces=None))[1])
        assert full["total"]["unconverted"]["orders"] > 0
        assert full["total"]["orders_by_status"].get("Canceled", 0) > 0
        assert full["fx_rates_used"]
        assert fallback_used > 0
    finally:
        await conn.close()


async def _sum_rows(conn: asyncpg.Connection, account: uuid.UUID, currency: str) -> list[asyncpg.Record]:
    from unified_seller_view import overview_store

    exponent = overview_rules.minor(currency).as_tuple().exponent
    assert isinstance(exponent, int)
    return await overview_store.overview_sums(
        conn,
        overview_queries.OverviewQuery(account, currency),
        minor_factor=Decimal(10) ** -exponent,
    )


async def test_exact_ties_round_to_even_in_sql(fresh_db: str) -> None:
    """Hand-made ties, each alone in its marketplace: 0.005 -> 0.00, 0.015 -> 0.02, 0.025 -> 0.02,
    2.5 JPY -> 2, 3.5 JPY -> 4 (through a rate of 2: 0.01 EUR x 1 / 2 ... and direct)."""
    account = uuid.uuid4()
    conn = await connect(fresh_db)
    try:
        await conn.execute(f"CREATE SCHEMA {SCHEMA}")
        await conn.execute(f"SET search_path TO {SCHEMA}, public")
        await conn.execute(readmodel_ddl())
        day = date(2026, 9, 10)
        await conn.execute("INSERT INTO fx_days VALUES ($1, 1, 'test', '{}'::jsonb)", day)
        await conn.execute("INSERT INTO fx_rates VALUES ('GBP', $1, 2), ('JPY', $1, 1)", day)
        cases = [(US, "EUR", "0.005"), (DE, "EUR", "0.015"), (FR, "EUR", "0.025"), (UK, "GBP", "0.05")]
        for i, (market, currency, amount) in enumerate(cases):
            await conn.execute(
                """INSERT INTO orders VALUES ($1, $2, $3, 'EU', $4, $4, 'Shipped', 'MFN', $5, $6, 1, 0, 0)""",
                account,
                f"o-{i}",
                market,
                datetime(2026, 9, 10, 12, tzinfo=UTC),
                currency,
                Decimal(amount),
            )
        await summaries.refresh_all(conn)
        await conn.execute("RESET search_path")
        reference, summed = await _both(conn, account, reporting_currency="EUR", marketplaces=None)
        assert summed == reference
        got = {m["marketplace_id"]: m["gross_sales"]["reporting"] for m in json.loads(summed)["marketplaces"]}
        # 0.05 GBP / 2 = 0.025 EUR -> 0.02 (half-even; PostgreSQL's round() would give 0.03)
        assert got == {US: "0.00", DE: "0.02", FR: "0.02", UK: "0.02"}
    finally:
        await conn.close()
