"""Order-day summaries: the overview and the time series read days, not orders.

One row per (account, day, kind, marketplace, currency, status) holds what the per-order overview SQL
(overview_store.OVERVIEW_SQL) would sum for that day's orders, for every reporting currency kept (arrays in
REPORTING_CURRENCIES' order): each order converted at its purchase day's rates and rounded half-even on its
own, exactly as before (summary_sql.py). The rows are kept in the consumer's transaction by difference: a
batch takes out the sums of the orders its events name before its handlers run and adds them back after
(per_batch), so its cost follows its events, not the size of their days. A day is recomputed whole (deleted
and re-inserted from its orders) when an FX day decides its rates (new, late or revised) or when one of its
orders has an inexact conversion. Redelivery and replays give the same rows as a recompute from scratch.
Provisional counts depend on the newest published day and are derived at read time.

Kept for REPORTING_CURRENCIES; another reporting currency, or a date filter that does not fall on UTC
midnights, is answered by the per-order SQL. A batch holds its accounts' locks (one account's orders come
through several partitions at once)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextvars import ContextVar
from datetime import UTC, date, datetime, time
from typing import Any
from uuid import UUID

import asyncpg

from unified_seller_view import summary_sql
from unified_seller_view.summary_sql import REPORTING_CURRENCIES

DayKey = tuple[UUID, date]
_FACTORS = [summary_sql.factor(c) for c in REPORTING_CURRENCIES]
upkeep_enabled = True  # off only in the bench, to measure the projection without the summaries' upkeep
_LOCK = 0x5E11  # advisory lock class of the summaries (second key: the generation's schema)


async def kept(conn: asyncpg.Connection, schema: str | None = None) -> bool:
    """Whether the generation (``schema``, else the current one) has this version's summaries: one built
    before them is consumed and read without them (the per-order SQL) until a rebuild replaces it."""
    return bool(
        await conn.fetchval(
            """SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attname = 'inexact_positions'
                              AND attrelid = to_regclass(quote_ident(coalesce($1::text, current_schema()))
                                                         || '.order_day_summaries'))""",
            schema,
        )
    )


_PLANNER_OFF = """set_config('jit', 'off', true), set_config('enable_mergejoin', 'off', true),
                  set_config('enable_nestloop', 'off', true)"""
# The differences (few hundred rows per statement, estimated at one) also hash instead of sorting: their
# aggregates and DISTINCT take a fifth less time; the sorts they need (ORDER BY) stay.
_DELTA_PLANNER_OFF = f"{_PLANNER_OFF}, set_config('enable_sort', 'off', true)"
_PLANNER_RESET = """SELECT set_config(name, reset_val, true) FROM pg_settings
                    WHERE name IN ('jit', 'enable_mergejoin', 'enable_nestloop', 'enable_sort')"""
_PLANNER_RESET_COUNT = f"SELECT count(*) FROM ({_PLANNER_RESET}) r"


_LOCK_ACCOUNTS_SQL = """
SELECT pg_advisory_xact_lock_shared($1, hashtext(coalesce($2::text, current_schema()))),
       (SELECT count(pg_advisory_xact_lock(k))
        FROM (SELECT DISTINCT hashtextextended(coalesce($2::text, current_schema()) || ':' || a::text, 0) AS k
              FROM unnest($3::uuid[]) AS a ORDER BY 1) s)"""


async def lock_accounts(conn: asyncpg.Connection, schema: str | None, accounts: Iterable[UUID]) -> None:
    """Serialize the summaries' upkeep per account: one account's orders arrive through several partitions
    (a topic per region), applied by concurrent transactions; two recomputing the same day from their own
    snapshots would each miss the other's orders (or collide on the day's rows). Taken once per batch, in
    one order (the statement sorts them), after the shared FX lock (as an FX day's recompute takes them), so
    no two wait on each other."""
    wanted = list(set(accounts))
    if not wanted or not upkeep_enabled:
        return
    await conn.execute(_LOCK_ACCOUNTS_SQL, _LOCK, schema, wanted)


async def start_batch(conn: asyncpg.Connection, schema: str, accounts: Iterable[UUID]) -> bool:
    """A batch's first statement, in one round trip: the generation's schema for the transaction (as
    generations.use_schema does) and, when the batch has orders whose summaries are kept (``accounts``), the
    accounts' locks (lock_accounts) and the planner settings of the difference taken next (per_batch with
    ``started``); without them the planner's own settings (a batch applied event by event after a failed
    one may follow a difference in the same transaction). Returns whether the locks were taken."""
    if not schema.replace("_", "").isalnum():
        raise ValueError(f"bad schema name {schema!r}")
    path = f'"{schema}", public'
    wanted = list(set(accounts)) if upkeep_enabled else []
    if wanted:
        await conn.execute(
            f"{_LOCK_ACCOUNTS_SQL}, {_DELTA_PLANNER_OFF}, set_config('search_path', $4, true)",
            _LOCK,
            schema,
            wanted,
            path,
        )
        return True
    await conn.execute(f"SELECT set_config('search_path', $1, true), ({_PLANNER_RESET_COUNT})", path)
    return False


_PENDING: ContextVar[set[DayKey] | None] = ContextVar("summaries_pending", default=None)


def inside_batch() -> bool:
    """Whether per_batch keeps the summaries of the orders being changed (by difference, at its end)."""
    return _PENDING.get() is not None


async def touch(conn: asyncpg.Connection, keys: Iterable[DayKey]) -> None:
    """These days' orders changed: recomputed now, unless inside ``per_batch`` (which keeps them by
    difference)."""
    if _PENDING.get() is None:
        await refresh_days(conn, keys)


OrderKey = tuple[UUID, str]


async def per_batch(
    conn: asyncpg.Connection,
    orders: Iterable[OrderKey],
    apply: Callable[[], Awaitable[None]],
    *,
    keep: bool = True,
    started: bool = False,
) -> None:
    """Run ``apply`` (a batch's handlers) keeping the summaries by difference: the sums of the orders its
    events name are taken out before and added back after, a few set-based statements per batch whatever
    its size and however many orders their days hold. A day where one of those orders has an inexact
    conversion (an entry that cannot be taken out of the arrays) is recomputed whole instead. ``keep``
    False: a generation without the summaries (see ``kept``). ``started``: start_batch has set the planner
    for the first difference already. The planner settings of the second one stay until the transaction
    ends: only the consumer's own statements (no joins) follow, or a next start_batch, which resets them."""
    keys = list(dict.fromkeys(orders)) if keep and upkeep_enabled else []
    recompute: set[DayKey] = set()  # days whose recompute was asked meanwhile (an FX day): done at the end
    token = _PENDING.set(recompute)
    try:
        if keys:
            if not started:
                await conn.execute(f"SELECT {_DELTA_PLANNER_OFF}")
            before = await _delta(conn, keys, -1, set(), set())
            await conn.execute(_PLANNER_RESET)  # the handlers' statements want their own plans
        else:
            before = {}
        await apply()
    finally:
        _PENDING.reset(token)
    if not keep:
        return  # a generation without the summaries: what the handlers asked is dropped
    if not keys:
        await refresh_days(conn, recompute)
        return
    # rows of the days taken out may have reached n = 0 (an order moved away): deleted by the same statement,
    # unless their day is recomputed whole or the orders' sums add to them again
    await conn.execute(f"SELECT {_DELTA_PLANNER_OFF}")
    after = await _delta(conn, keys, 1, recompute | {day for day, whole in before.items() if whole}, set(before))
    await refresh_days(conn, recompute | {day for day, whole in (before | after).items() if whole})


async def _delta(
    conn: asyncpg.Connection, keys: list[OrderKey], sign: int, dirty: set[DayKey], emptied: set[DayKey]
) -> dict[DayKey, bool]:
    """Add ``sign`` times these orders' sums (days in ``dirty`` left alone) and delete the rows at n = 0 of the
    days ``emptied`` that the sums do not add to; {day touched: recompute whole}. The planner settings of
    this statement (see refresh_days) are the caller's to set."""
    rows = await conn.fetch(
        summary_sql.DELTA_SQL,
        [a for a, _ in keys],
        [i for _, i in keys],
        list(REPORTING_CURRENCIES),
        _FACTORS,
        sign,
        [a for a, _ in dirty],
        [d for _, d in dirty],
        [a for a, _ in emptied],
        [d for _, d in emptied],
    )
    return {(r["account_id"], r["day"]): r["dirty"] for r in rows}


async def refresh_days(conn: asyncpg.Connection, keys: Iterable[DayKey]) -> None:
    """Recompute the summaries of these (account, day) pairs from their orders (none left: rows deleted)."""
    pairs = sorted(set(keys))
    if not pairs or not upkeep_enabled:
        return
    pending = _PENDING.get()
    if pending is not None:  # inside per_batch: at its end, after the difference of its orders
        pending.update(pairs)
        return
    accounts, days = [a for a, _ in pairs], [d for _, d in pairs]
    # The accounts' locks (held already when the batch took them: no wait), then, for this statement only:
    # JIT would compile this statement for seconds (its row estimates are far off) to run it for ms; the
    # planner's guesses also favour sort-merge plans, or nested loops over CTEs it thinks hold one row (the
    # refunds that failed to convert: seconds per batch), over hashes: off until the end (the LATERAL lookups
    # by index stay nested loops, the only plan they have).
    await conn.execute(
        f"{_LOCK_ACCOUNTS_SQL}, {_PLANNER_OFF}",
        _LOCK,
        None,
        accounts,
    )
    await conn.execute(summary_sql.DELETE_DAYS_SQL, accounts, days)
    await conn.execute(
        summary_sql.REFRESH_SQL,
        accounts,
        days,
        list(REPORTING_CURRENCIES),
        [summary_sql.factor(c) for c in REPORTING_CURRENCIES],
    )
    await conn.execute(_PLANNER_RESET)


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
    if not wanted or not upkeep_enabled or not await kept(conn):
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
    await conn.execute(
        "DELETE FROM order_day_summaries; DELETE FROM order_month_summaries; DELETE FROM order_day_lookups"
    )
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


# $7: the reporting currency's position in REPORTING_CURRENCIES (1-based), the index of its figures' arrays.
_SUMS_SQL = """
SELECT kind, marketplace_id, nullif(status, '') AS status, currency, NULL::date AS day,
       sum(n)::bigint AS n, sum(units)::bigint AS units, sum(n_converted[$7])::bigint AS n_converted,
       coalesce(sum(n_converted[$7]) FILTER (WHERE currency <> $2 AND day > (SELECT max(date) FROM fx_days)), 0)::bigint
           AS n_provisional,
       date_trunc($6::text, day)::date AS bucket,
       sum(n_unconverted[$7])::bigint AS n_unconverted, sum(amount) AS amount,
       sum(amount_unconverted[$7]) AS amount_unconverted, sum(reporting_units[$7]) AS reporting_units,
       coalesce(bool_or($7 = ANY(inexact_positions)), false) AS has_inexact
FROM order_day_summaries
WHERE account_id = $1 AND ($3::text[] IS NULL OR marketplace_id = ANY($3))
  AND ($4::date IS NULL OR day >= $4) AND ($5::date IS NULL OR day < $5)
GROUP BY kind, marketplace_id, status, currency, bucket
"""

_INEXACT_SQL = """
SELECT kind, marketplace_id, status, currency, date_trunc($6::text, day)::date AS bucket,
       array_agg(u.a) AS inexact_amounts, array_agg(u.l) AS inexact_local_rates,
       array_agg(u.t) AS inexact_reporting_rates
FROM order_day_summaries s,
     unnest(s.inexact_positions, s.inexact_amounts, s.inexact_local_rates, s.inexact_reporting_rates)
         AS u(p, a, l, t)
WHERE account_id = $1 AND ($3::text[] IS NULL OR marketplace_id = ANY($3)) AND ($4::date IS NULL OR day >= $4)
  AND ($5::date IS NULL OR day < $5) AND inexact_positions IS NOT NULL AND u.p = $7 AND $2::text IS NOT NULL
GROUP BY kind, marketplace_id, status, currency, bucket
"""

# The rates the reference would record (pairs of a looked-up currency and the reporting one, per day), each
# with the rate that served it, so the read needs no second round trip.
_RATES_SQL = """
SELECT 'rate' AS kind, p.currency, p.day, r.date AS rate_date, r.rate, d.revision, d.source
FROM (SELECT DISTINCT c.currency, u.day
      FROM (SELECT DISTINCT currency, day FROM order_day_summaries
            WHERE account_id = $1 AND ($3::text[] IS NULL OR marketplace_id = ANY($3))
              AND ($4::date IS NULL OR day >= $4) AND ($5::date IS NULL OR day < $5) AND n_rate_lookups[$6] > 0) u
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
    """The rows of overview_store.overview_sums (same keys and meaning) summed from the day summaries."""
    args = (
        account_id,
        reporting_currency,
        list(marketplaces) if marketplaces is not None else None,
        first_day,
        end_day,
    )
    position = REPORTING_CURRENCIES.index(reporting_currency) + 1
    rows = [dict(r) for r in await conn.fetch(_SUMS_SQL, *args, granularity, position)]
    empty: dict[str, Any] = {"inexact_amounts": None, "inexact_local_rates": None, "inexact_reporting_rates": None}
    if any(r["has_inexact"] for r in rows):
        extra = {
            (r["kind"], r["marketplace_id"], r["status"] or None, r["currency"], r["bucket"]): dict(r)
            for r in await conn.fetch(_INEXACT_SQL, *args, granularity, position)
        }
    else:
        extra = {}
    for r in rows:
        r.update(empty)
        found = extra.get((r["kind"], r["marketplace_id"], r["status"], r["currency"], r["bucket"]))
        if found is not None:
            for key in empty:
                r[key] = found[key]
    rows.extend(dict(r) for r in await conn.fetch(_RATES_SQL, *args, position))
    return rows


def covers(reporting_currency: str, after: datetime | None, before: datetime | None) -> bool:
    """Whether the summaries can answer this overview (else the per-order SQL does)."""
    return reporting_currency in REPORTING_CURRENCIES and day_bounds(after, before) is not None
