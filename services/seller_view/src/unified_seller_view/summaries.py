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

from collections.abc import Awaitable, Callable, Iterable
from contextvars import ContextVar
from datetime import date
from uuid import UUID

import asyncpg

from unified_seller_view import contribution_sql, summary_sql
from unified_seller_view.summary_reads import DayQuery, day_bounds, day_query, overview_sums
from unified_seller_view.summary_sql import REPORTING_CURRENCIES

__all__ = [
    "DayQuery",
    "day_bounds",
    "day_query",
    "overview_sums",
]  # the reads, in summary_reads.py, also known by this name

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


# The summaries' locks of a batch's accounts ($3; $2 the schema, NULL: the current one): they serialize the
# summaries' upkeep per account. One account's orders arrive through several partitions (a topic per region),
# applied by concurrent transactions; two recomputing the same day from their own snapshots would each miss the
# other's orders (or collide on the day's rows). Taken once per batch, in one order (the statement sorts them),
# after the shared FX lock (as an FX day's recompute takes them), so no two wait on each other.
_LOCK_ACCOUNTS_SQL = """
SELECT pg_advisory_xact_lock_shared($1, hashtext(coalesce($2::text, current_schema()))),
       (SELECT count(pg_advisory_xact_lock(k))
        FROM (SELECT DISTINCT hashtextextended(coalesce($2::text, current_schema()) || ':' || a::text, 0) AS k
              FROM unnest($3::uuid[]) AS a ORDER BY 1) s)"""


async def start_batch(conn: asyncpg.Connection, schema: str, accounts: Iterable[UUID]) -> None:
    """A batch's first statement, in one round trip: the generation's schema for the transaction (as
    generations.use_schema does), the planner's own settings (a batch applied event by event after a failed
    one may follow a difference in the same transaction) and, when the batch has orders whose summaries are
    kept (``accounts``), the accounts' locks (_LOCK_ACCOUNTS_SQL)."""
    if not schema.replace("_", "").isalnum():
        raise ValueError(f"bad schema name {schema!r}")
    path = f'"{schema}", public'
    wanted = list(set(accounts)) if upkeep_enabled else []
    if wanted:
        await conn.execute(
            f"{_LOCK_ACCOUNTS_SQL}, set_config('search_path', $4, true), ({_PLANNER_RESET_COUNT})",
            _LOCK,
            schema,
            wanted,
            path,
        )
        return
    await conn.execute(f"SELECT set_config('search_path', $1, true), ({_PLANNER_RESET_COUNT})", path)


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
) -> None:
    """Run ``apply`` (a batch's handlers), then keep the summaries of the orders its events name by
    difference, in one statement whatever the batch's size and however many orders their days hold: their
    contributions as they are now against the stored ones (contribution_sql.BATCH_SQL). A day where one of
    those has an inexact conversion (an entry that cannot be taken out of the arrays), or whose recompute was
    asked meanwhile (an FX day), is recomputed whole instead. ``keep`` False: a generation without the
    summaries (see ``kept``). The planner settings of the difference stay until the transaction ends: only the
    consumer's own statements (no joins) follow, or a next start_batch, which resets them."""
    keys = list(dict.fromkeys(orders)) if keep and upkeep_enabled else []
    recompute: set[DayKey] = set()  # days whose recompute was asked meanwhile (an FX day): done at the end
    token = _PENDING.set(recompute)
    try:
        await apply()
    finally:
        _PENDING.reset(token)
    if not keep:
        return  # a generation without the summaries: what the handlers asked is dropped
    if keys:
        await conn.execute(f"SELECT {_DELTA_PLANNER_OFF}")
        rows = await conn.fetch(
            contribution_sql.BATCH_SQL,
            [a for a, _ in keys],
            [i for _, i in keys],
            list(REPORTING_CURRENCIES),
            _FACTORS,
            [a for a, _ in recompute],
            [d for _, d in recompute],
        )
        recompute |= {(r["account_id"], r["day"]) for r in rows}
    await refresh_days(conn, recompute)


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
        _FACTORS,
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
        """DELETE FROM order_day_summaries; DELETE FROM order_month_summaries; DELETE FROM order_day_lookups;
           DELETE FROM order_contributions"""
    )
    rows = await conn.fetch("SELECT DISTINCT account_id, (purchase_date AT TIME ZONE 'UTC')::date AS day FROM orders")
    await refresh_days(conn, [(r["account_id"], r["day"]) for r in rows])


async def fill_contributions(conn: asyncpg.Connection) -> list[str]:
    """Give every generation whose orders have no stored contributions yet (built before order_contributions:
    read-model step 005) its contributions, by recomputing all its days (the same rows again, and the
    contributions), one transaction per generation, exclusive against its batches (the summaries' lock).
    Run at start-up, before the consumer. Returns the schemas filled."""
    filled: list[str] = []
    for schema in await conn.fetch(
        """SELECT schema_name FROM view_generations
           WHERE to_regclass(quote_ident(schema_name) || '.order_contributions') IS NOT NULL ORDER BY generation"""
    ):
        name = schema["schema_name"]
        async with conn.transaction():
            await conn.execute("SELECT set_config('search_path', $1, true)", f'"{name}", public')
            if not await kept(conn) or not await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM orders) AND NOT EXISTS (SELECT 1 FROM order_contributions)"
            ):
                continue
            await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))", _LOCK)
            await refresh_all(conn)
            filled.append(name)
    return filled
