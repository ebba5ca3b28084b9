"""SQL (asyncpg) for billing's own tables. Every function runs on the caller's connection/transaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from uuid import UUID

import asyncpg

from unified_billing.domain import (
    Fact,
    FactKind,
    FeeRow,
    Period,
    RatePublication,
)
from unified_billing.results import HeldPeriod, PeriodStatus

# -- inputs ---------------------------------------------------------------------------------------------


async def record_account(
    conn: asyncpg.Connection,
    *,
    account_id: UUID,
    home_marketplace_id: str,
    legal_name: str,
    registered_at: dt.datetime | None,
    event_id: UUID,
) -> None:
    await conn.execute(
        """INSERT INTO billing_accounts (account_id, home_marketplace_id, legal_name, registered_at, event_id)
           VALUES ($1, $2, $3, $4, $5) ON CONFLICT (account_id) DO NOTHING""",
        account_id,
        home_marketplace_id,
        legal_name,
        registered_at,
        event_id,
    )


async def record_fact(
    conn: asyncpg.Connection, *, event_id: UUID, account_id: UUID, marketplace_id: str, kind: FactKind, at: dt.datetime
) -> bool:
    """Record one subscription/listing fact; False if this event was recorded before (replay)."""
    inserted = await conn.fetchval(
        """INSERT INTO subscription_facts (event_id, account_id, marketplace_id, kind, at)
           VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_id) DO NOTHING RETURNING true""",
        event_id,
        account_id,
        marketplace_id,
        str(kind),
        at,
    )
    return bool(inserted)


async def mark_closed_periods_dirty(conn: asyncpg.Connection, account_id: UUID, from_period: Period) -> int:
    """A fact effective in ``from_period`` can change that period and every later one.

    The caller holds the account's fact lock (see handlers), so no close of this account is between reading
    the facts and committing: a close either committed before (its row is marked here) or reads this fact.
    A month without a row needs no mark: ``due_periods`` finds every never-closed month."""
    result = await conn.execute(
        """UPDATE billing_periods SET dirty = true, updated_at = now()
           WHERE account_id = $1 AND period >= $2 AND status = 'closed' AND NOT dirty""",
        account_id,
        str(from_period),
    )
    # the months from from_period on are due again: the "closed through" marker goes back before it
    await conn.execute(
        "UPDATE billing_closed_through SET period = $2 WHERE account_id = $1 AND period > $2",
        account_id,
        str(from_period.prev()),
    )
    return int(result.split()[-1])


async def advance_closed_through(conn: asyncpg.Connection, account_id: UUID, closed: Period) -> str | None:
    """After closing ``closed``: the account's marker becomes the month before the first month (from its
    first subscription up to ``closed``) that is not closed and clean; no marker when that is the first."""
    marker = await conn.fetchval(
        """WITH first AS (
               SELECT date_trunc('month', min(at) AT TIME ZONE 'UTC') AS m FROM subscription_facts
               WHERE account_id = $1 AND kind = 'SubscriptionStarted'),
           gap AS (
               SELECT min(s.m) AS m
               FROM first, generate_series(first.m, $2::date::timestamp, interval '1 month') AS s(m)
               LEFT JOIN billing_periods p ON p.account_id = $1 AND p.period = to_char(s.m, 'YYYY-MM')
               WHERE p.period IS NULL OR p.status <> 'closed' OR p.dirty)
           SELECT to_char(coalesce(gap.m, $2::date::timestamp + interval '1 month') - interval '1 month', 'YYYY-MM')
           FROM first, gap
           WHERE first.m IS NOT NULL AND coalesce(gap.m, $2::date::timestamp + interval '1 month') > first.m""",
        account_id,
        closed.first_day,
    )
    if marker is None:
        await conn.execute("DELETE FROM billing_closed_through WHERE account_id = $1", account_id)
    else:
        await conn.execute(
            """INSERT INTO billing_closed_through (account_id, period) VALUES ($1, $2)
               ON CONFLICT (account_id) DO UPDATE SET period = EXCLUDED.period""",
            account_id,
            marker,
        )
    return str(marker) if marker is not None else None


async def record_fx_publication(
    conn: asyncpg.Connection,
    *,
    rate_date: dt.date,
    revision: int,
    source: str,
    event_id: UUID,
    rates: Mapping[str, Decimal],
    derived: Mapping[str, str],
) -> bool:
    """Record one publication (first one wins for the same date and revision); False if already known."""
    inserted = await conn.fetchval(
        """INSERT INTO fx_publications (rate_date, revision, source, event_id) VALUES ($1, $2, $3, $4)
           ON CONFLICT (rate_date, revision) DO NOTHING RETURNING true""",
        rate_date,
        revision,
        source,
        event_id,
    )
    if not inserted:
        return False
    await conn.executemany(
        "INSERT INTO fx_rates (rate_date, revision, currency, rate, derived) VALUES ($1, $2, $3, $4, $5)",
        [(rate_date, revision, cur, rate, derived.get(cur)) for cur, rate in sorted(rates.items())],
    )
    return True


async def load_facts(conn: asyncpg.Connection, account_id: UUID) -> list[Fact]:
    rows = await conn.fetch(
        "SELECT marketplace_id, kind, at, seq FROM subscription_facts WHERE account_id = $1 ORDER BY at, seq",
        account_id,
    )
    return [Fact(r["marketplace_id"], FactKind(r["kind"]), r["at"], r["seq"]) for r in rows]


async def home_marketplace(conn: asyncpg.Connection, account_id: UUID) -> str | None:
    value = await conn.fetchval("SELECT home_marketplace_id FROM billing_accounts WHERE account_id = $1", account_id)
    return str(value) if value is not None else None


async def load_schedule(conn: asyncpg.Connection) -> list[FeeRow]:
    rows = await conn.fetch(
        "SELECT row_id, marketplace_id, currency, fee, effective_from FROM fee_schedule ORDER BY row_id"
    )
    return [FeeRow(r["row_id"], r["marketplace_id"], r["currency"], r["fee"], r["effective_from"]) for r in rows]


async def add_fee(
    conn: asyncpg.Connection, *, marketplace_id: str, currency: str, fee: Decimal, effective_from: dt.date, note: str
) -> FeeRow:
    row = await conn.fetchrow(
        """INSERT INTO fee_schedule (marketplace_id, currency, fee, effective_from, note)
           VALUES ($1, $2, $3, $4, $5) RETURNING row_id""",
        marketplace_id,
        currency,
        fee,
        effective_from,
        note,
    )
    return FeeRow(row["row_id"], marketplace_id, currency, fee, effective_from)


async def load_publications(
    conn: asyncpg.Connection, day: dt.date, *, lookback_days: int, lookahead_days: int = 7
) -> list[RatePublication]:
    """The highest revision of each publication around ``day`` (later ones tell that a day has passed)."""
    rows = await conn.fetch(
        """SELECT p.rate_date, p.revision, p.source, r.currency, r.rate
           FROM (SELECT DISTINCT ON (rate_date) rate_date, revision, source FROM fx_publications
                 WHERE rate_date BETWEEN $1 AND $2 ORDER BY rate_date, revision DESC) p
           JOIN fx_rates r ON r.rate_date = p.rate_date AND r.revision = p.revision
           ORDER BY p.rate_date""",
        day - dt.timedelta(days=lookback_days),
        day + dt.timedelta(days=lookahead_days),
    )
    grouped: dict[tuple[dt.date, int, str], dict[str, Decimal]] = {}
    for r in rows:
        grouped.setdefault((r["rate_date"], r["revision"], r["source"]), {})[r["currency"]] = r["rate"]
    return [RatePublication(d, rev, rates, src) for (d, rev, src), rates in grouped.items()]


# -- periods --------------------------------------------------------------------------------------------


async def accounts_with_subscriptions(conn: asyncpg.Connection, period: Period) -> list[UUID]:
    """Accounts whose first subscription started before the period ended (candidates for closing it)."""
    rows = await conn.fetch(
        """SELECT DISTINCT account_id FROM subscription_facts
           WHERE kind = 'SubscriptionStarted' AND at < $1 ORDER BY account_id""",
        period.end(),
    )
    return [r["account_id"] for r in rows]


async def due_periods(
    conn: asyncpg.Connection, *, up_to: Period, account_id: UUID | None = None, limit: int | None = None
) -> list[tuple[UUID, Period]]:
    """Periods that need a run, up to ``up_to``: every month from the account's first subscription on that
    was never closed (including one a late fact made the first), closed ones with late facts (dirty), and
    held ones. Never-closed and dirty first, oldest first; then held ones, least recently tried first (so a
    pile of holds waiting for rates cannot starve the rest when ``limit`` bounds a run); last the ones whose
    last close failed (busy account, error), least recently failed first, so a failing period cannot block
    the others."""
    rows = await conn.fetch(
        """WITH firsts AS (
               SELECT account_id, date_trunc('month', min(at) AT TIME ZONE 'UTC') AS first_month
               FROM subscription_facts
               WHERE kind = 'SubscriptionStarted' AND ($2::uuid IS NULL OR account_id = $2)
               GROUP BY account_id),
           months AS (
               -- after the account's "closed through" marker only: every month up to it is closed and clean
               SELECT f.account_id, to_char(m, 'YYYY-MM') AS period
               FROM firsts f
               LEFT JOIN billing_closed_through c ON c.account_id = f.account_id
               CROSS JOIN LATERAL generate_series(
                   greatest(f.first_month, to_date(c.period || '-01', 'YYYY-MM-DD')::timestamp
                                           + interval '1 month'),
                   $1::date::timestamp, interval '1 month') AS m)
           SELECT m.account_id, m.period, p.updated_at, coalesce(p.status = 'held' AND NOT p.dirty, false) AS retry
           FROM months m LEFT JOIN billing_periods p ON p.account_id = m.account_id AND p.period = m.period
           LEFT JOIN billing_close_failures f ON f.account_id = m.account_id AND f.period = m.period
           WHERE p.account_id IS NULL OR p.status = 'held' OR p.dirty
           ORDER BY f.last_failed_at NULLS FIRST,
                    retry, CASE WHEN coalesce(p.status = 'held' AND NOT p.dirty, false) THEN p.updated_at END,
                    m.period, m.account_id
           LIMIT $3""",
        up_to.first_day,
        account_id,
        limit,
    )
    return [(r["account_id"], Period.parse(r["period"])) for r in rows]


async def set_period_status(
    conn: asyncpg.Connection, account_id: UUID, period: Period, status: str, reason: str | None
) -> None:
    await conn.execute(
        """INSERT INTO billing_periods (account_id, period, status, reason, dirty)
           VALUES ($1, $2, $3, $4, false)
           ON CONFLICT (account_id, period) DO UPDATE
           SET status = EXCLUDED.status, reason = EXCLUDED.reason, dirty = false, updated_at = now()""",
        account_id,
        str(period),
        status,
        reason,
    )


async def record_close_failure(conn: asyncpg.Connection, account_id: UUID, period: Period, error: str) -> int:
    """Note a failed close (its own transaction: the close's was rolled back); returns the attempts so far."""
    return int(
        await conn.fetchval(
            """INSERT INTO billing_close_failures (account_id, period, last_error) VALUES ($1, $2, $3)
               ON CONFLICT (account_id, period) DO UPDATE
               SET attempts = billing_close_failures.attempts + 1, last_error = EXCLUDED.last_error,
                   last_failed_at = clock_timestamp()
               RETURNING attempts""",
            account_id,
            str(period),
            error[:2000],
        )
    )


async def clear_close_failure(conn: asyncpg.Connection, account_id: UUID, period: Period) -> None:
    await conn.execute(
        "DELETE FROM billing_close_failures WHERE account_id = $1 AND period = $2", account_id, str(period)
    )


async def period_statuses(conn: asyncpg.Connection, account_id: UUID) -> list[PeriodStatus]:
    rows = await conn.fetch(
        """SELECT period, status, reason, dirty, first_run_at, updated_at FROM billing_periods
           WHERE account_id = $1 ORDER BY period""",
        account_id,
    )
    return [PeriodStatus(r["period"], r["status"], r["reason"], r["dirty"], r["updated_at"]) for r in rows]


async def held_periods(conn: asyncpg.Connection) -> list[HeldPeriod]:
    rows = await conn.fetch(
        """SELECT account_id, period, reason, updated_at FROM billing_periods
           WHERE status = 'held' ORDER BY period, account_id"""
    )
    return [HeldPeriod(r["account_id"], r["period"], r["reason"], r["updated_at"]) for r in rows]


async def count_held(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM billing_periods WHERE status = 'held'"))
