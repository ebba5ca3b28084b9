"""Order-day summaries: the overview and the time series read days, not orders.

One row per (account, reporting currency, day, kind, marketplace, currency, status) holds what the per-order
overview SQL (store.OVERVIEW_SQL) would sum for that day's orders: each order converted at its purchase
day's rates and rounded half-even on its own, exactly as before. A day's rows are a pure function of the
day's orders, their refunds and the published rates, so they are recomputed (deleted and re-inserted,
set-based) whenever one of those changes, in the transaction that changed it: an order event recomputes
its order's day(s); an FX day (new, late or revised) recomputes the days whose rate it decides. Redelivery
and replays give the same rows. Provisional counts depend on the newest published day and are derived at
read time from ``n_converted`` and ``day``.

Kept for the reporting currencies of the catalog (plus EUR); another reporting currency, or a date filter
that does not fall on UTC midnights, is answered by the per-order SQL."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextvars import ContextVar
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg

from unified_seller_view import domain

# The reporting currencies kept (the web front end's choices): every one multiplies the rows each order
# event writes, so not all of ISO 4217; another one is answered by the per-order SQL (same figures, slower).
REPORTING_CURRENCIES: tuple[str, ...] = ("CAD", "EUR", "GBP", "JPY", "MXN", "USD")

DayKey = tuple[UUID, date]
upkeep_enabled = True  # off only in the bench, to measure the projection without the summaries' upkeep
_LOCK = 0x5E11  # advisory lock class of the summaries (second key: the generation's schema)


def _factor(currency: str) -> Decimal:
    exponent = domain.minor(currency).as_tuple().exponent
    assert isinstance(exponent, int)
    return Decimal(10) ** -exponent


# $1/$2: (account, day) pairs; $3/$4: reporting currencies and their 10^minor digits.
_REFRESH_SQL = """
WITH k AS (SELECT DISTINCT a, d FROM unnest($1::uuid[], $2::date[]) AS k(a, d)),
rep AS (SELECT rc, mf FROM unnest($3::text[], $4::numeric[]) AS r(rc, mf)),
o AS MATERIALIZED (
    SELECT o.account_id, o.amazon_order_id, o.marketplace_id, o.status, o.currency, o.amount, o.number_of_items,
           k.d AS day
    FROM k CROSS JOIN LATERAL (
        SELECT * FROM orders WHERE account_id = k.a AND purchase_date >= (k.d::timestamp AT TIME ZONE 'UTC')
           AND purchase_date < ((k.d + 1)::timestamp AT TIME ZONE 'UTC') OFFSET 0) o  -- by index, not a scan
),
refunds AS MATERIALIZED (
    SELECT o.account_id, o.amazon_order_id, o.marketplace_id, o.day, r.event_id::text COLLATE "C" AS refund_key,
           r.currency, r.amount, o.currency AS order_currency
    FROM o CROSS JOIN LATERAL (
        SELECT * FROM order_refunds WHERE account_id = o.account_id AND amazon_order_id = o.amazon_order_id
        OFFSET 0) r
    WHERE o.status <> 'Canceled'
),
pairs AS (SELECT currency, day FROM o UNION SELECT currency, day FROM refunds),
cur AS MATERIALIZED (
    SELECT c.currency, c.day,
           CASE WHEN c.currency = 'EUR' THEN 1::numeric
                ELSE (SELECT rate FROM fx_rates WHERE currency = c.currency AND date <= c.day
                      ORDER BY date DESC LIMIT 1) END AS rate
    FROM (SELECT currency, day FROM pairs UNION SELECT rep.rc, p.day FROM rep, pairs p) c
),
rates AS MATERIALIZED (
    SELECT p.currency, p.day, rep.rc, rep.mf,
           CASE WHEN p.currency = rep.rc THEN 1::numeric ELSE l.rate END AS lrate,
           CASE WHEN p.currency = rep.rc THEN 1::numeric ELSE t.rate END AS trate
    FROM pairs p CROSS JOIN rep
    JOIN cur l ON l.currency = p.currency AND l.day = p.day
    JOIN cur t ON t.currency = rep.rc AND t.day = p.day
),
priced_refunds AS MATERIALIZED (
    SELECT r.*, x.rc, x.mf, x.lrate, x.trate, x.lrate IS NOT NULL AND x.trate IS NOT NULL AS ok,
           y.lrate IS NOT NULL AND y.trate IS NOT NULL AS total_ok
    FROM refunds r
    JOIN rates x ON x.currency = r.currency AND x.day = r.day
    JOIN rates y ON y.currency = r.order_currency AND y.day = r.day AND y.rc = x.rc
),
failed AS MATERIALIZED (
    SELECT account_id, amazon_order_id, rc, min(refund_key) AS first_failed FROM priced_refunds WHERE NOT ok
    GROUP BY account_id, amazon_order_id, rc
),
order_rows AS (
    SELECT c.*, c.converted AND (c.currency = c.rc OR (scale(c.amount) + scale(c.trate) <= 20
               AND abs(c.amount * c.trate) < 1e14
               AND (2 * abs(c.r) = c.lrate OR abs(2 * abs(c.r) - c.lrate) * 1e33 > abs(c.x)))) AS exact,
           c.n + CASE WHEN 2 * abs(c.r) > c.lrate OR (2 * abs(c.r) = c.lrate AND mod(c.n, 2) <> 0) THEN sign(c.x)
                      ELSE 0 END AS rounded
    FROM (SELECT b.*, b.x - b.n * b.lrate AS r
          FROM (SELECT a.*, div(a.x, a.lrate) AS n
                FROM (SELECT o.account_id, o.marketplace_id, o.status, o.currency, o.amount, o.number_of_items,
                             o.day, p.rc, p.lrate, p.trate,
                             o.status <> 'Canceled' AND p.lrate IS NOT NULL AND p.trate IS NOT NULL
                                 AND f.amazon_order_id IS NULL AS converted,
                             o.status <> 'Canceled' AND o.currency <> p.rc
                                 AND p.lrate IS NOT NULL AND p.trate IS NOT NULL AS looked_up,
                             CASE WHEN o.status <> 'Canceled' AND f.amazon_order_id IS NULL
                                  THEN o.amount * p.trate * p.mf END AS x
                      FROM o JOIN rates p ON p.currency = o.currency AND p.day = o.day
                      LEFT JOIN failed f ON f.account_id = o.account_id AND f.amazon_order_id = o.amazon_order_id
                          AND f.rc = p.rc
                      OFFSET 0) a
                OFFSET 0) b
          OFFSET 0) c
    OFFSET 0
),
refund_rows AS (
    SELECT c.*, c.converted AND (c.currency = c.rc OR (scale(c.amount) + scale(c.trate) <= 20
               AND abs(c.amount * c.trate) < 1e14
               AND (2 * abs(c.r) = c.lrate OR abs(2 * abs(c.r) - c.lrate) * 1e33 > abs(c.x)))) AS exact,
           c.n + CASE WHEN 2 * abs(c.r) > c.lrate OR (2 * abs(c.r) = c.lrate AND mod(c.n, 2) <> 0) THEN sign(c.x)
                      ELSE 0 END AS rounded
    FROM (SELECT b.*, b.x - b.n * b.lrate AS r
          FROM (SELECT a.*, div(a.x, a.lrate) AS n
                FROM (SELECT pr.*, pr.total_ok AND f.amazon_order_id IS NULL AS converted,
                             pr.currency <> pr.rc AND pr.total_ok
                                 AND (f.amazon_order_id IS NULL OR pr.refund_key < f.first_failed) AS looked_up,
                             CASE WHEN pr.total_ok AND f.amazon_order_id IS NULL
                                  THEN pr.amount * pr.trate * pr.mf END AS x
                      FROM priced_refunds pr
                      LEFT JOIN failed f ON f.account_id = pr.account_id AND f.amazon_order_id = pr.amazon_order_id
                          AND f.rc = pr.rc
                      OFFSET 0) a
                OFFSET 0) b
          OFFSET 0) c
    OFFSET 0
)
INSERT INTO order_day_summaries (account_id, reporting_currency, day, kind, marketplace_id, currency, status, n,
    units, n_converted, n_unconverted, n_rate_lookups, amount, amount_unconverted, reporting_units,
    inexact_amounts, inexact_local_rates, inexact_reporting_rates)
SELECT account_id, rc, day, 'order', marketplace_id, currency, status, count(*),
       sum(number_of_items) FILTER (WHERE status <> 'Canceled'),
       count(*) FILTER (WHERE converted),
       count(*) FILTER (WHERE status <> 'Canceled' AND NOT converted),
       count(*) FILTER (WHERE looked_up),
       sum(amount) FILTER (WHERE status <> 'Canceled'),
       sum(amount) FILTER (WHERE status <> 'Canceled' AND NOT converted),
       sum(rounded) FILTER (WHERE exact),
       array_agg(amount) FILTER (WHERE converted AND NOT exact),
       array_agg(lrate) FILTER (WHERE converted AND NOT exact),
       array_agg(trate) FILTER (WHERE converted AND NOT exact)
FROM order_rows GROUP BY account_id, rc, day, marketplace_id, currency, status
UNION ALL
SELECT account_id, rc, day, 'refund', marketplace_id, currency, '', count(*), NULL,
       count(*) FILTER (WHERE converted),
       count(*) FILTER (WHERE NOT converted),
       count(*) FILTER (WHERE looked_up),
       sum(amount), sum(amount) FILTER (WHERE NOT converted), sum(rounded) FILTER (WHERE exact),
       array_agg(amount) FILTER (WHERE converted AND NOT exact),
       array_agg(lrate) FILTER (WHERE converted AND NOT exact),
       array_agg(trate) FILTER (WHERE converted AND NOT exact)
FROM refund_rows GROUP BY account_id, rc, day, marketplace_id, currency
"""


_LOCK_ACCOUNTS_SQL = """
SELECT pg_advisory_xact_lock_shared($1, hashtext(coalesce($2::text, current_schema()))),
       (SELECT count(pg_advisory_xact_lock(k))
        FROM (SELECT DISTINCT hashtextextended(coalesce($2::text, current_schema()) || ':' || a::text, 0) AS k
              FROM unnest($3::uuid[]) AS a ORDER BY 1) s)"""


async def lock_accounts(conn: asyncpg.Connection, schema: str | None, accounts: Iterable[UUID]) -> None:
    """Serialize the summaries' upkeep per account: one account's orders arrive through several partitions
    (a topic per region), applied by concurrent transactions; two recomputing the same day from their own
    snapshots would each miss the other's orders (or collide on the day's rows). Taken once per batch, in
    one order, after the shared FX lock (as an FX day's recompute takes them), so no two wait on each other."""
    wanted = sorted(set(accounts))
    if not wanted or not upkeep_enabled:
        return
    await conn.execute(_LOCK_ACCOUNTS_SQL, _LOCK, schema, wanted)


_PENDING: ContextVar[set[DayKey] | None] = ContextVar("summaries_pending", default=None)


async def touch(conn: asyncpg.Connection, keys: Iterable[DayKey]) -> None:
    """These days changed: recomputed at the end of the batch (inside ``per_batch``), else now."""
    pending = _PENDING.get()
    if pending is None:
        await refresh_days(conn, keys)
    else:
        pending.update(keys)


async def per_batch(conn: asyncpg.Connection, apply: Callable[[], Awaitable[None]]) -> None:
    """Run ``apply`` (a batch's handlers) and recompute every day it touched once, at the end: one DELETE and
    one INSERT per batch whatever its groups (placed orders, changes) and segments."""
    token = _PENDING.set(set())
    try:
        await apply()
        days = _PENDING.get() or set()
    finally:
        _PENDING.reset(token)
    await refresh_days(conn, days)


async def refresh_days(
    conn: asyncpg.Connection, keys: Iterable[DayKey], currencies: Sequence[str] = REPORTING_CURRENCIES
) -> None:
    """Recompute the summaries of these (account, day) pairs from their orders (none left: rows deleted).
    ``currencies``: the reporting currencies to keep (all of them, except in the bench)."""
    pairs = sorted(set(keys))
    if not pairs or not upkeep_enabled:
        return
    accounts, days = [a for a, _ in pairs], [d for _, d in pairs]
    # The accounts' locks (held already when the batch took them: no wait), then, for this statement only:
    # JIT would compile this statement for seconds (its row estimates are far off) to run it for ms; the
    # planner's guesses also favour sort-merge plans, or nested loops over CTEs it thinks hold one row (the
    # refunds that failed to convert: seconds per batch), over hashes: off until the end (the LATERAL lookups
    # by index stay nested loops, the only plan they have).
    await conn.execute(
        f"""{_LOCK_ACCOUNTS_SQL}, set_config('jit', 'off', true), set_config('enable_mergejoin', 'off', true),
                  set_config('enable_nestloop', 'off', true)""",
        _LOCK,
        None,
        accounts,
    )
    await conn.execute(
        """DELETE FROM order_day_summaries s USING unnest($1::uuid[], $2::date[]) AS k(a, d)
           WHERE s.account_id = k.a AND s.day = k.d""",
        accounts,
        days,
    )
    await conn.execute(
        _REFRESH_SQL,
        accounts,
        days,
        list(currencies),
        [_factor(c) for c in currencies],
    )
    await conn.execute(
        """SELECT set_config(name, reset_val, true) FROM pg_settings
           WHERE name IN ('jit', 'enable_mergejoin', 'enable_nestloop')"""
    )


async def order_days(conn: asyncpg.Connection, keys: Iterable[tuple[UUID, str]]) -> set[DayKey]:
    """The (account, purchase day) of these orders as stored now (call before and after changing them)."""
    wanted = sorted(set(keys))
    if not wanted:
        return set()
    rows = await conn.fetch(
        """SELECT DISTINCT o.account_id, (o.purchase_date AT TIME ZONE 'UTC')::date AS day
           FROM orders o JOIN unnest($1::uuid[], $2::text[]) AS k(a, i)
             ON o.account_id = k.a AND o.amazon_order_id = k.i""",
        [k[0] for k in wanted],
        [k[1] for k in wanted],
    )
    return {(r["account_id"], r["day"]) for r in rows}


async def refresh_orders(conn: asyncpg.Connection, keys: Iterable[tuple[UUID, str]], before: set[DayKey]) -> None:
    """After orders changed: recompute their days now and the days they had before (a moved purchase date)."""
    await refresh_days(conn, before | await order_days(conn, keys))


async def refresh_for_fx_day(conn: asyncpg.Connection, day: date, currencies: Iterable[str]) -> None:
    """An FX day was published (late, revised or new) with rates of ``currencies`` (this revision's and the
    replaced one's): for each, the day decides the rate of every day up to the next day that publishes that
    currency. Recompute the days with orders in that span (the day's publication alone only moves the newest
    rate day, which the provisional counts read at query time)."""
    wanted = sorted(set(currencies))
    if not wanted:
        return
    # Exclusive against every transaction refreshing days (they hold it shared until they commit): the days
    # are read and recomputed only after those orders are committed, and later refreshes see this rate.
    await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))", _LOCK)
    upto = await conn.fetchval(
        """SELECT CASE WHEN bool_and(nx IS NOT NULL) THEN max(nx) END
           FROM (SELECT (SELECT min(date) FROM fx_rates WHERE currency = c AND date > $1) AS nx
                 FROM unnest($2::text[]) AS c) s""",
        day,
        wanted,
    )
    # every day with an order has summary rows: they say which (account, day) pairs exist
    rows = await conn.fetch(
        """SELECT DISTINCT account_id, day FROM order_day_summaries
           WHERE day >= $1 AND ($2::date IS NULL OR day < $2)""",
        day,
        upto,
    )
    await refresh_days(conn, [(r["account_id"], r["day"]) for r in rows])


async def refresh_all(conn: asyncpg.Connection) -> None:
    """Recompute every day of every account (read models loaded without the consumer, e.g. in tests)."""
    await conn.execute("DELETE FROM order_day_summaries")
    rows = await conn.fetch("SELECT DISTINCT account_id, (purchase_date AT TIME ZONE 'UTC')::date AS day FROM orders")
    await refresh_days(conn, [(r["account_id"], r["day"]) for r in rows])


def day_bounds(after: datetime | None, before: datetime | None) -> tuple[date | None, date | None] | None:
    """The filter as whole UTC days [first, end), or None when a bound is not a UTC midnight."""
    out: list[date | None] = []
    for bound in (after, before):
        if bound is None:
            out.append(None)
            continue
        utc = bound.astimezone(UTC)
        if utc.timetz().replace(tzinfo=None) != time(0):
            return None
        out.append(utc.date())
    return out[0], out[1]


_SUMS_SQL = """
SELECT kind, marketplace_id, nullif(status, '') AS status, currency, NULL::date AS day,
       sum(n)::bigint AS n, sum(units)::bigint AS units, sum(n_converted)::bigint AS n_converted,
       coalesce(sum(n_converted) FILTER (WHERE currency <> $2 AND day > (SELECT max(date) FROM fx_days)), 0)::bigint
           AS n_provisional,
       date_trunc($6::text, day)::date AS bucket,
       sum(n_unconverted)::bigint AS n_unconverted, sum(amount) AS amount,
       sum(amount_unconverted) AS amount_unconverted, sum(reporting_units) AS reporting_units,
       bool_or(inexact_amounts IS NOT NULL) AS has_inexact
FROM order_day_summaries
WHERE account_id = $1 AND reporting_currency = $2 AND ($3::text[] IS NULL OR marketplace_id = ANY($3))
  AND ($4::date IS NULL OR day >= $4) AND ($5::date IS NULL OR day < $5)
GROUP BY kind, marketplace_id, status, currency, bucket
"""

_INEXACT_SQL = """
SELECT kind, marketplace_id, status, currency, date_trunc($6::text, day)::date AS bucket,
       array_agg(u.a) AS inexact_amounts, array_agg(u.l) AS inexact_local_rates,
       array_agg(u.t) AS inexact_reporting_rates
FROM order_day_summaries s,
     unnest(s.inexact_amounts, s.inexact_local_rates, s.inexact_reporting_rates) AS u(a, l, t)
WHERE account_id = $1 AND reporting_currency = $2 AND ($3::text[] IS NULL OR marketplace_id = ANY($3))
  AND ($4::date IS NULL OR day >= $4) AND ($5::date IS NULL OR day < $5) AND inexact_amounts IS NOT NULL
GROUP BY kind, marketplace_id, status, currency, bucket
"""

# The rates the reference would record (pairs of a looked-up currency and the reporting one, per day), each
# with the rate that served it, so the read needs no second round trip.
_RATES_SQL = """
SELECT 'rate' AS kind, p.currency, p.day, r.date AS rate_date, r.rate, d.revision, d.source
FROM (SELECT DISTINCT c.currency, u.day
      FROM (SELECT DISTINCT currency, day FROM order_day_summaries
            WHERE account_id = $1 AND reporting_currency = $2 AND ($3::text[] IS NULL OR marketplace_id = ANY($3))
              AND ($4::date IS NULL OR day >= $4) AND ($5::date IS NULL OR day < $5) AND n_rate_lookups > 0) u
      CROSS JOIN LATERAL (VALUES (u.currency), ($2::text)) AS c(currency)
      WHERE c.currency <> 'EUR') p
JOIN LATERAL (SELECT date, rate FROM fx_rates WHERE currency = p.currency AND date <= p.day
              ORDER BY date DESC LIMIT 1) r ON true
JOIN fx_days d ON d.date = r.date
"""


async def overview_sums(
    conn: asyncpg.Connection,
    account_id: UUID,
    *,
    marketplaces: Sequence[str] | None,
    first_day: date | None,
    end_day: date | None,
    reporting_currency: str,
    granularity: str | None = None,
) -> list[dict[str, Any]]:
    """The rows of store.overview_sums (same keys and meaning) summed from the day summaries."""
    args = (
        account_id,
        reporting_currency,
        list(marketplaces) if marketplaces is not None else None,
        first_day,
        end_day,
    )
    rows = [dict(r) for r in await conn.fetch(_SUMS_SQL, *args, granularity)]
    empty: dict[str, Any] = {"inexact_amounts": None, "inexact_local_rates": None, "inexact_reporting_rates": None}
    if any(r["has_inexact"] for r in rows):
        extra = {
            (r["kind"], r["marketplace_id"], r["status"] or None, r["currency"], r["bucket"]): dict(r)
            for r in await conn.fetch(_INEXACT_SQL, *args, granularity)
        }
    else:
        extra = {}
    for r in rows:
        r.update(empty)
        found = extra.get((r["kind"], r["marketplace_id"], r["status"], r["currency"], r["bucket"]))
        if found is not None:
            for key in empty:
                r[key] = found[key]
    rows.extend(dict(r) for r in await conn.fetch(_RATES_SQL, *args))
    return rows


def covers(reporting_currency: str, after: datetime | None, before: datetime | None) -> bool:
    """Whether the summaries can answer this overview (else the per-order SQL does)."""
    return reporting_currency in REPORTING_CURRENCIES and day_bounds(after, before) is not None
