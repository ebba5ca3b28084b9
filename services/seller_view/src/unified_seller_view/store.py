"""SQL of the read model. Every function runs on a connection whose search_path names the generation's
schema first (see ``generations.use_schema``), so the same statements serve the live view and a rebuild."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg

from unified_seller_view.domain import Cycle, ParticipationChange, ParticipationState, Rate, ThreadEntry, Wait

# -- identity ---------------------------------------------------------------------------------------


async def upsert_account(
    conn: asyncpg.Connection,
    account_id: UUID,
    *,
    legal_name: str,
    home_marketplace_id: str,
    owner_user_id: UUID,
    owner_email: str,
    registered_at: datetime,
) -> None:
    await conn.execute(
        """INSERT INTO accounts (account_id, legal_name, home_marketplace_id, owner_user_id, owner_email, registered_at)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (account_id) DO UPDATE SET legal_name = EXCLUDED.legal_name,
               home_marketplace_id = EXCLUDED.home_marketplace_id, owner_user_id = EXCLUDED.owner_user_id,
               owner_email = EXCLUDED.owner_email, registered_at = EXCLUDED.registered_at""",
        account_id,
        legal_name,
        home_marketplace_id,
        owner_user_id,
        owner_email,
        registered_at,
    )


async def upsert_member(
    conn: asyncpg.Connection,
    account_id: UUID,
    user_id: UUID,
    *,
    email: str | None,
    role: str,
    permissions: Sequence[str],
    scope: Any,
    changed_at: datetime,
) -> None:
    await conn.execute(
        """INSERT INTO members (account_id, user_id, email, role, permissions, marketplace_scope, changed_at)
           VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7)
           ON CONFLICT (account_id, user_id) DO UPDATE SET email = coalesce(EXCLUDED.email, members.email),
               role = EXCLUDED.role, permissions = EXCLUDED.permissions,
               marketplace_scope = EXCLUDED.marketplace_scope, changed_at = EXCLUDED.changed_at,
               removed_at = NULL""",
        account_id,
        user_id,
        email,
        role,
        sorted(permissions),
        scope,
        changed_at,
    )


async def remove_member(conn: asyncpg.Connection, account_id: UUID, user_id: UUID, removed_at: datetime) -> None:
    await conn.execute(
        "UPDATE members SET removed_at = $3, changed_at = $3 WHERE account_id = $1 AND user_id = $2",
        account_id,
        user_id,
        removed_at,
    )


async def get_account(conn: asyncpg.Connection, account_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM accounts WHERE account_id = $1", account_id)


# -- participations ---------------------------------------------------------------------------------


async def insert_participation_event(
    conn: asyncpg.Connection,
    account_id: UUID,
    marketplace_id: str,
    event_id: UUID,
    *,
    event_type: str,
    at: datetime,
    sequence: int | None,
    reason: str | None,
) -> None:
    await conn.execute(
        """INSERT INTO participation_events (account_id, marketplace_id, event_id, event_type, at, sequence, reason)
           VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING""",
        account_id,
        marketplace_id,
        event_id,
        event_type,
        at,
        sequence,
        reason,
    )


async def participation_changes(
    conn: asyncpg.Connection, account_id: UUID, marketplace_id: str
) -> list[ParticipationChange]:
    rows = await conn.fetch(
        """SELECT event_type, at, sequence, event_id, reason FROM participation_events
           WHERE account_id = $1 AND marketplace_id = $2""",
        account_id,
        marketplace_id,
    )
    return [ParticipationChange(r["event_type"], r["at"], r["sequence"], str(r["event_id"]), r["reason"]) for r in rows]


async def save_participation(
    conn: asyncpg.Connection, account_id: UUID, marketplace_id: str, state: ParticipationState
) -> None:
    await conn.execute(
        """INSERT INTO participations (account_id, marketplace_id, participation, subscription, listings,
               opened_at, subscribed_since, last_change_at, suspended_reason)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
           ON CONFLICT (account_id, marketplace_id) DO UPDATE SET participation = EXCLUDED.participation,
               subscription = EXCLUDED.subscription, listings = EXCLUDED.listings, opened_at = EXCLUDED.opened_at,
               subscribed_since = EXCLUDED.subscribed_since, last_change_at = EXCLUDED.last_change_at,
               suspended_reason = EXCLUDED.suspended_reason""",
        account_id,
        marketplace_id,
        state.participation,
        state.subscription,
        state.listings,
        state.opened_at,
        state.subscribed_since,
        state.last_change_at,
        state.suspended_reason,
    )


async def participations(
    conn: asyncpg.Connection, account_id: UUID, marketplaces: list[str] | None
) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT * FROM participations WHERE account_id = $1 AND ($2::text[] IS NULL OR marketplace_id = ANY($2))
           ORDER BY marketplace_id""",
        account_id,
        marketplaces,
    )


async def participation_history(
    conn: asyncpg.Connection, account_id: UUID, marketplaces: list[str] | None
) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT marketplace_id, event_type, at, reason FROM participation_events
           WHERE account_id = $1 AND ($2::text[] IS NULL OR marketplace_id = ANY($2))
           ORDER BY marketplace_id, at, sequence NULLS FIRST, event_id""",
        account_id,
        marketplaces,
    )


# -- FX ---------------------------------------------------------------------------------------------


async def fx_day_revision(conn: asyncpg.Connection, day: date) -> int | None:
    value = await conn.fetchval("SELECT revision FROM fx_days WHERE date = $1", day)
    return int(value) if value is not None else None


async def fx_day_currencies(conn: asyncpg.Connection, day: date) -> set[str]:
    return {r["currency"] for r in await conn.fetch("SELECT currency FROM fx_rates WHERE date = $1", day)}


async def replace_fx_day(
    conn: asyncpg.Connection,
    day: date,
    *,
    revision: int,
    source: str,
    derived: dict[str, str],
    rates: dict[str, Decimal],
) -> None:
    """Keep only the given revision of the day: its rates replace the older revision's."""
    await conn.execute("DELETE FROM fx_days WHERE date = $1", day)
    await conn.execute(
        "INSERT INTO fx_days (date, revision, source, derived) VALUES ($1, $2, $3, $4::jsonb)",
        day,
        revision,
        source,
        derived,
    )
    await conn.executemany(
        "INSERT INTO fx_rates (currency, date, rate) VALUES ($1, $2, $3)",
        [(currency.upper(), day, rate) for currency, rate in sorted(rates.items())],
    )


async def latest_rate_day(conn: asyncpg.Connection) -> date | None:
    """The newest day with published rates (conversions of later days are provisional)."""
    value = await conn.fetchval("SELECT max(date) FROM fx_days")
    return value if isinstance(value, date) else None


async def rates_on_or_before(conn: asyncpg.Connection, wanted: set[tuple[str, date]]) -> dict[tuple[str, date], Rate]:
    """For each (currency, day): the last rate published on or before the day (its latest revision)."""
    if not wanted:
        return {}
    pairs = sorted(wanted)
    rows = await conn.fetch(
        """SELECT n.currency, n.day, r.date, r.rate, d.revision, d.source
           FROM unnest($1::text[], $2::date[]) AS n(currency, day)
           JOIN LATERAL (SELECT date, rate FROM fx_rates
                         WHERE currency = n.currency AND date <= n.day ORDER BY date DESC LIMIT 1) r ON true
           JOIN fx_days d ON d.date = r.date""",
        [p[0] for p in pairs],
        [p[1] for p in pairs],
    )
    return {
        (r["currency"], r["day"]): Rate(r["currency"], r["date"], r["rate"], r["revision"], r["source"]) for r in rows
    }


# -- orders -----------------------------------------------------------------------------------------


async def get_order(conn: asyncpg.Connection, account_id: UUID, amazon_order_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM orders WHERE account_id = $1 AND amazon_order_id = $2 FOR UPDATE", account_id, amazon_order_id
    )


async def upsert_order(conn: asyncpg.Connection, row: dict[str, Any]) -> None:
    await conn.execute(
        """INSERT INTO orders (account_id, amazon_order_id, marketplace_id, region, purchase_date, last_update_date,
               status, fulfillment_channel, currency, amount, number_of_items, items_shipped, items_unshipped)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
           ON CONFLICT (account_id, amazon_order_id) DO UPDATE SET marketplace_id = EXCLUDED.marketplace_id,
               region = EXCLUDED.region, purchase_date = EXCLUDED.purchase_date,
               last_update_date = EXCLUDED.last_update_date, status = EXCLUDED.status,
               fulfillment_channel = EXCLUDED.fulfillment_channel, currency = EXCLUDED.currency,
               amount = EXCLUDED.amount, number_of_items = EXCLUDED.number_of_items,
               items_shipped = EXCLUDED.items_shipped, items_unshipped = EXCLUDED.items_unshipped""",
        row["account_id"],
        row["amazon_order_id"],
        row["marketplace_id"],
        row["region"],
        row["purchase_date"],
        row["last_update_date"],
        row["status"],
        row["fulfillment_channel"],
        row["currency"],
        row["amount"],
        row["number_of_items"],
        row["items_shipped"],
        row["items_unshipped"],
    )


async def set_order_status(
    conn: asyncpg.Connection,
    account_id: UUID,
    amazon_order_id: str,
    *,
    status: str,
    last_update_date: datetime,
    items_shipped: int | None,
    items_unshipped: int | None,
) -> None:
    await conn.execute(
        """UPDATE orders SET status = $3, last_update_date = $4,
               items_shipped = coalesce($5, items_shipped), items_unshipped = coalesce($6, items_unshipped)
           WHERE account_id = $1 AND amazon_order_id = $2""",
        account_id,
        amazon_order_id,
        status,
        last_update_date,
        items_shipped,
        items_unshipped,
    )


async def touch_order(
    conn: asyncpg.Connection, account_id: UUID, amazon_order_id: str, last_update_date: datetime
) -> None:
    await conn.execute(
        """UPDATE orders SET last_update_date = greatest(last_update_date, $3)
           WHERE account_id = $1 AND amazon_order_id = $2""",
        account_id,
        amazon_order_id,
        last_update_date,
    )


async def insert_refund(
    conn: asyncpg.Connection,
    account_id: UUID,
    event_id: UUID,
    *,
    amazon_order_id: str,
    currency: str,
    amount: Decimal,
    refunded_at: datetime,
) -> None:
    await conn.execute(
        """INSERT INTO order_refunds (account_id, event_id, amazon_order_id, currency, amount, refunded_at)
           VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING""",
        account_id,
        event_id,
        amazon_order_id,
        currency,
        amount,
        refunded_at,
    )


async def park_order_event(
    conn: asyncpg.Connection,
    account_id: UUID,
    event_id: UUID,
    *,
    amazon_order_id: str,
    event_type: str,
    last_update_date: datetime,
    sequence: int | None,
    payload: dict[str, Any],
) -> None:
    await conn.execute(
        """INSERT INTO parked_order_events (account_id, event_id, amazon_order_id, event_type, last_update_date,
               sequence, payload) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb) ON CONFLICT DO NOTHING""",
        account_id,
        event_id,
        amazon_order_id,
        event_type,
        last_update_date,
        sequence,
        payload,
    )


async def take_parked(conn: asyncpg.Connection, account_id: UUID, amazon_order_id: str) -> list[asyncpg.Record]:
    """Remove and return the events held for an order, in the order they happened."""
    return await conn.fetch(
        """DELETE FROM parked_order_events WHERE account_id = $1 AND amazon_order_id = $2
           RETURNING event_id, event_type, last_update_date, sequence, payload""",
        account_id,
        amazon_order_id,
    )


async def overview_rows(
    conn: asyncpg.Connection,
    account_id: UUID,
    marketplaces: list[str] | None,
    purchased_after: datetime | None,
    purchased_before: datetime | None,
) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT o.amazon_order_id, o.marketplace_id, o.status, o.currency, o.amount, o.number_of_items,
                  (o.purchase_date AT TIME ZONE 'UTC')::date AS purchase_day,
                  coalesce(json_agg(json_build_object('currency', r.currency, 'amount', r.amount::text)
                                    ORDER BY r.event_id) FILTER (WHERE r.event_id IS NOT NULL), '[]') AS refunds
           FROM orders o
           LEFT JOIN order_refunds r ON r.account_id = o.account_id AND r.amazon_order_id = o.amazon_order_id
           WHERE o.account_id = $1 AND ($2::text[] IS NULL OR o.marketplace_id = ANY($2))
             AND ($3::timestamptz IS NULL OR o.purchase_date >= $3)
             AND ($4::timestamptz IS NULL OR o.purchase_date < $4)
           GROUP BY o.account_id, o.amazon_order_id
           ORDER BY o.amazon_order_id""",
        account_id,
        marketplaces,
        purchased_after,
        purchased_before,
    )


# -- overview in SQL ---------------------------------------------------------------------------------

# The overview's sums computed in PostgreSQL in one pass over the account's orders (and their refunds), so a
# request costs a few aggregate rows instead of every order. The rule is the one of domain.build_overview:
# every amount of a sale (the order total, then each refund in event_id order) is converted at the rates of
# the order's purchase day and rounded half-even PER AMOUNT to the reporting minor unit; an order with an
# amount lacking a rate is left unconverted as a whole.
#
# Rounding: with X = amount x rate(reporting) x 10^m and L = rate(local), n = div(X, L) (exact truncation)
# and r = X - n*L (exact remainder) give the exact half-even result n + sign(X) when 2|r| > L, or when
# 2|r| = L and n is odd (a tie goes to the even neighbour). PostgreSQL's own round() rounds ties away from
# zero and its division rounds at a chosen scale, so neither is used.
#
# Python (domain.convert) rounds the product and the quotient to 34 significant digits before the final
# half-even quantize. That equals the exact result unless the exact quotient lies within half a unit in the
# 34th digit of a tie. ``exact`` below certifies it cannot: the product has at most 34 digits (scales <= 20
# and |amount x rate| < 10^14) and the quotient is exactly a tie or farther from it than half a 34th-digit
# unit (|2|r| - L| x 10^33 > |X| is sufficient). Amounts that fail it (never with real rates and prices)
# are returned one by one and converted by domain.convert itself.
#
# Flow: the refunds of the selected sales and the distinct (currency, purchase day) of their totals, the
# rates of those pairs (a few hundred index look-ups), the orders with a refund lacking a rate, then ONE scan
# of the account's orders hash-joined to those small sets and aggregated per (marketplace, status, currency).
# The ``rate`` rows are the (currency, day) pairs build_overview records in ``rates_used``: every converted
# sale total not in the reporting currency, and each refund before the order's first refund without a rate.
OVERVIEW_SQL = """
WITH latest AS MATERIALIZED (
    -- the newest day with published rates: a sale after it is converted provisionally (its rate may come)
    SELECT max(date) AS d FROM fx_days
),
refunds AS MATERIALIZED (
    -- refunds of the selected orders that are sales (not canceled), at their order's purchase day
    SELECT o.amazon_order_id, o.marketplace_id, (o.purchase_date AT TIME ZONE 'UTC')::date AS day,
           r.event_id::text COLLATE "C" AS refund_key, r.currency, r.amount, o.currency AS order_currency
    FROM order_refunds r
    JOIN orders o ON o.account_id = r.account_id AND o.amazon_order_id = r.amazon_order_id
    WHERE r.account_id = $1 AND o.status <> 'Canceled' AND ($2::text[] IS NULL OR o.marketplace_id = ANY($2))
      AND ($3::timestamptz IS NULL OR o.purchase_date >= $3) AND ($4::timestamptz IS NULL OR o.purchase_date < $4)
),
order_pairs AS MATERIALIZED (
    -- (currency, day) of every sale's total: the reference looks each one up first
    SELECT DISTINCT currency, (purchase_date AT TIME ZONE 'UTC')::date AS day
    FROM orders
    WHERE account_id = $1 AND status <> 'Canceled' AND ($2::text[] IS NULL OR marketplace_id = ANY($2))
      AND ($3::timestamptz IS NULL OR purchase_date >= $3) AND ($4::timestamptz IS NULL OR purchase_date < $4)
),
rates AS MATERIALIZED (
    -- per (currency, day): local and reporting rate (units per EUR; 1 for EUR and for no conversion)
    SELECT p.currency, p.day,
           CASE WHEN p.currency = $5 OR p.currency = 'EUR' THEN 1::numeric
                ELSE (SELECT rate FROM fx_rates WHERE currency = p.currency AND date <= p.day
                      ORDER BY date DESC LIMIT 1) END AS lrate,
           CASE WHEN p.currency = $5 OR $5 = 'EUR' THEN 1::numeric
                ELSE (SELECT rate FROM fx_rates WHERE currency = $5 AND date <= p.day
                      ORDER BY date DESC LIMIT 1) END AS trate
    FROM (SELECT currency, day FROM order_pairs UNION SELECT currency, day FROM refunds) p
),
priced_refunds AS MATERIALIZED (
    SELECT r.*, x.lrate, x.trate, x.lrate IS NOT NULL AND x.trate IS NOT NULL AS ok,
           y.lrate IS NOT NULL AND y.trate IS NOT NULL AS total_ok
    FROM refunds r
    JOIN rates x ON x.currency = r.currency AND x.day = r.day
    JOIN rates y ON y.currency = r.order_currency AND y.day = r.day
),
failed AS MATERIALIZED (
    -- orders with a refund that has no rate, and the first such refund (in event_id order)
    SELECT amazon_order_id, min(refund_key) AS first_failed FROM priced_refunds WHERE NOT ok
    GROUP BY amazon_order_id
),
order_rows AS (
    SELECT c.*, c.converted AND (c.currency = $5 OR (scale(c.amount) + scale(c.trate) <= 20
               AND abs(c.amount * c.trate) < 1e14
               AND (2 * abs(c.r) = c.lrate OR abs(2 * abs(c.r) - c.lrate) * 1e33 > abs(c.x)))) AS exact,
           c.n + CASE WHEN 2 * abs(c.r) > c.lrate OR (2 * abs(c.r) = c.lrate AND mod(c.n, 2) <> 0) THEN sign(c.x)
                      ELSE 0 END AS rounded
    FROM (SELECT b.*, b.x - b.n * b.lrate AS r
          FROM (SELECT a.*, div(a.x, a.lrate) AS n
                FROM (SELECT o.marketplace_id, o.status, o.currency, o.amount, o.number_of_items, p.lrate, p.trate,
                             o.day,
                             o.status <> 'Canceled' AND p.lrate IS NOT NULL AND p.trate IS NOT NULL
                                 AND f.amazon_order_id IS NULL AS converted,
                             CASE WHEN o.status <> 'Canceled' AND f.amazon_order_id IS NULL
                                  THEN o.amount * p.trate * $6::numeric END AS x
                      FROM (SELECT amazon_order_id, marketplace_id, status, currency, amount, number_of_items,
                                   (purchase_date AT TIME ZONE 'UTC')::date AS day
                            FROM orders
                            WHERE account_id = $1 AND ($2::text[] IS NULL OR marketplace_id = ANY($2))
                              AND ($3::timestamptz IS NULL OR purchase_date >= $3)
                              AND ($4::timestamptz IS NULL OR purchase_date < $4)) o
                      LEFT JOIN rates p ON p.currency = o.currency AND p.day = o.day
                      LEFT JOIN failed f ON f.amazon_order_id = o.amazon_order_id
                      OFFSET 0) a
                OFFSET 0) b
          OFFSET 0) c
    OFFSET 0
),
refund_rows AS (
    SELECT c.*, c.converted AND (c.currency = $5 OR (scale(c.amount) + scale(c.trate) <= 20
               AND abs(c.amount * c.trate) < 1e14
               AND (2 * abs(c.r) = c.lrate OR abs(2 * abs(c.r) - c.lrate) * 1e33 > abs(c.x)))) AS exact,
           c.n + CASE WHEN 2 * abs(c.r) > c.lrate OR (2 * abs(c.r) = c.lrate AND mod(c.n, 2) <> 0) THEN sign(c.x)
                      ELSE 0 END AS rounded
    FROM (SELECT b.*, b.x - b.n * b.lrate AS r
          FROM (SELECT a.*, div(a.x, a.lrate) AS n
                FROM (SELECT pr.*, pr.total_ok AND f.amazon_order_id IS NULL AS converted,
                             pr.currency <> $5 AND pr.total_ok
                                 AND (f.amazon_order_id IS NULL OR pr.refund_key < f.first_failed) AS looked_up,
                             CASE WHEN pr.total_ok AND f.amazon_order_id IS NULL
                                  THEN pr.amount * pr.trate * $6::numeric END AS x
                      FROM priced_refunds pr LEFT JOIN failed f ON f.amazon_order_id = pr.amazon_order_id
                      OFFSET 0) a
                OFFSET 0) b
          OFFSET 0) c
    OFFSET 0
)
SELECT 'order' AS kind, marketplace_id, status, currency, NULL::date AS day, count(*) AS n,
       sum(number_of_items) FILTER (WHERE status <> 'Canceled') AS units,
       count(*) FILTER (WHERE converted) AS n_converted,
       count(*) FILTER (WHERE converted AND currency <> $5 AND day > (SELECT d FROM latest)) AS n_provisional,
       date_trunc($7::text, day)::date AS bucket,
       count(*) FILTER (WHERE status <> 'Canceled' AND NOT converted) AS n_unconverted,
       sum(amount) FILTER (WHERE status <> 'Canceled') AS amount,
       sum(amount) FILTER (WHERE status <> 'Canceled' AND NOT converted) AS amount_unconverted,
       sum(rounded) FILTER (WHERE exact) AS reporting_units,
       array_agg(amount) FILTER (WHERE converted AND NOT exact) AS inexact_amounts,
       array_agg(lrate) FILTER (WHERE converted AND NOT exact) AS inexact_local_rates,
       array_agg(trate) FILTER (WHERE converted AND NOT exact) AS inexact_reporting_rates
FROM order_rows GROUP BY marketplace_id, status, currency, bucket
UNION ALL
SELECT 'refund', marketplace_id, NULL::text, currency, NULL::date, count(*), NULL::bigint,
       count(*) FILTER (WHERE converted),
       count(*) FILTER (WHERE converted AND currency <> $5 AND day > (SELECT d FROM latest)),
       date_trunc($7::text, day)::date,
       count(*) FILTER (WHERE NOT converted), sum(amount),
       sum(amount) FILTER (WHERE NOT converted), sum(rounded) FILTER (WHERE exact),
       array_agg(amount) FILTER (WHERE converted AND NOT exact),
       array_agg(lrate) FILTER (WHERE converted AND NOT exact),
       array_agg(trate) FILTER (WHERE converted AND NOT exact)
FROM refund_rows GROUP BY marketplace_id, currency, date_trunc($7::text, day)::date
UNION ALL
SELECT DISTINCT 'rate', NULL::text, NULL::text, c.currency, u.day, NULL::bigint, NULL::bigint, NULL::bigint,
       NULL::bigint, NULL::date, NULL::bigint, NULL::numeric, NULL::numeric, NULL::numeric,
       NULL::numeric[], NULL::numeric[], NULL::numeric[]
FROM (SELECT p.currency, p.day FROM order_pairs p JOIN rates x ON x.currency = p.currency AND x.day = p.day
      WHERE p.currency <> $5 AND x.lrate IS NOT NULL AND x.trate IS NOT NULL
      UNION
      SELECT currency, day FROM refund_rows WHERE looked_up) u
CROSS JOIN LATERAL (VALUES (u.currency), ($5::text)) AS c(currency)
WHERE c.currency <> 'EUR'
"""


async def overview_sums(
    conn: asyncpg.Connection,
    account_id: UUID,
    *,
    marketplaces: list[str] | None,
    purchased_after: datetime | None,
    purchased_before: datetime | None,
    reporting_currency: str,
    minor_factor: Decimal,
    granularity: str | None = None,
) -> list[asyncpg.Record]:
    """The overview's aggregate rows (see OVERVIEW_SQL): ``kind`` says what each row carries; with a
    ``granularity`` (day, week, month) the order and refund rows are split by ``bucket`` (its first day)."""
    # The planner badly overestimates the DISTINCT (currency, day) sets (100k instead of ~2k) and would sort
    # and merge-join 100k rows; hash joins/aggregates are right here, and JIT costs more than it saves.
    await conn.execute("SET LOCAL jit = off; SET LOCAL enable_mergejoin = off; SET LOCAL enable_sort = off")
    rows = await conn.fetch(
        OVERVIEW_SQL,
        account_id,
        marketplaces,
        purchased_after,
        purchased_before,
        reporting_currency,
        minor_factor,
        granularity,
    )
    # Reset on success only: after a failed query the transaction is aborted (and SET LOCAL ends with it), so a
    # reset there would only hide the real error.
    await conn.execute(
        "SET LOCAL jit TO DEFAULT; SET LOCAL enable_mergejoin TO DEFAULT; SET LOCAL enable_sort TO DEFAULT"
    )
    return rows


async def orders_page(
    conn: asyncpg.Connection,
    account_id: UUID,
    *,
    marketplaces: list[str] | None,
    statuses: list[str] | None,
    purchased_after: datetime | None,
    purchased_before: datetime | None,
    order_ids: list[str] | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[asyncpg.Record]:
    """Newest first; the keyset (purchase_date, amazon_order_id) makes pages stable under new inserts."""
    return await conn.fetch(
        """SELECT o.*, (o.purchase_date AT TIME ZONE 'UTC')::date > (SELECT max(date) FROM fx_days) AS provisional,
                  coalesce((SELECT json_agg(json_build_object('currency', r.currency, 'amount', r.amount::text,
                                          'refunded_at', r.refunded_at) ORDER BY r.refunded_at, r.event_id)
                         FROM order_refunds r
                         WHERE r.account_id = o.account_id AND r.amazon_order_id = o.amazon_order_id), '[]') AS refunds
           FROM orders o
           WHERE o.account_id = $1 AND ($2::text[] IS NULL OR o.marketplace_id = ANY($2))
             AND ($3::text[] IS NULL OR o.status = ANY($3))
             AND ($4::timestamptz IS NULL OR o.purchase_date >= $4)
             AND ($5::timestamptz IS NULL OR o.purchase_date < $5)
             AND ($6::text[] IS NULL OR o.amazon_order_id = ANY($6))
             AND ($7::timestamptz IS NULL OR (o.purchase_date, o.amazon_order_id) < ($7, $8::text))
           ORDER BY o.purchase_date DESC, o.amazon_order_id DESC
           LIMIT $9""",
        account_id,
        marketplaces,
        statuses,
        purchased_after,
        purchased_before,
        order_ids,
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )


# -- messages ---------------------------------------------------------------------------------------


async def upsert_thread(
    conn: asyncpg.Connection,
    account_id: UUID,
    thread_id: str,
    *,
    marketplace_id: str,
    region: str,
    amazon_order_id: str | None,
    subject: str,
    at: datetime,
) -> None:
    await conn.execute(
        """INSERT INTO threads (account_id, thread_id, marketplace_id, region, amazon_order_id, subject,
               first_message_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (account_id, thread_id) DO UPDATE
           SET amazon_order_id = coalesce(threads.amazon_order_id, EXCLUDED.amazon_order_id),
               first_message_at = least(threads.first_message_at, EXCLUDED.first_message_at)""",
        account_id,
        thread_id,
        marketplace_id,
        region,
        amazon_order_id,
        subject,
        at,
    )


async def insert_message(
    conn: asyncpg.Connection,
    account_id: UUID,
    thread_id: str,
    *,
    kind: str,
    message_id: str,
    at: datetime,
    subject: str | None,
    body: str,
) -> bool:
    """True if the message is new (a message seen before changes nothing)."""
    inserted = await conn.fetchval(
        """INSERT INTO thread_messages (account_id, thread_id, kind, message_id, at, subject, body)
           VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING true""",
        account_id,
        thread_id,
        kind,
        message_id,
        at,
        subject,
        body,
    )
    return bool(inserted)


async def insert_mark(
    conn: asyncpg.Connection, account_id: UUID, thread_id: str, *, mark_id: str, at: datetime
) -> bool:
    """True if the mark is new (the same mark seen before changes nothing)."""
    inserted = await conn.fetchval(
        """INSERT INTO thread_marks (account_id, thread_id, mark_id, at) VALUES ($1, $2, $3, $4)
           ON CONFLICT DO NOTHING RETURNING true""",
        account_id,
        thread_id,
        mark_id,
        at,
    )
    return bool(inserted)


async def has_thread_marks(conn: asyncpg.Connection, schema: str) -> bool:
    """Whether the generation's schema has the timeline tables (generations built before them do not)."""
    return bool(
        await conn.fetchval(
            """SELECT EXISTS (SELECT 1 FROM information_schema.tables
                              WHERE table_schema = $1 AND table_name = 'thread_marks')""",
            schema,
        )
    )


async def thread_marketplace(conn: asyncpg.Connection, account_id: UUID, thread_id: str) -> str | None:
    """The thread's marketplace; None until its first buyer message has arrived."""
    value = await conn.fetchval(
        "SELECT marketplace_id FROM threads WHERE account_id = $1 AND thread_id = $2", account_id, thread_id
    )
    return str(value) if value is not None else None


async def thread_timeline(conn: asyncpg.Connection, account_id: UUID, thread_id: str) -> list[ThreadEntry]:
    """Every buyer message, seller reply and mark of the thread (unordered: the domain sorts them)."""
    rows = await conn.fetch(
        """SELECT CASE kind WHEN 'buyer' THEN 'buyer' ELSE 'reply' END AS kind, message_id AS entry_id, at
           FROM thread_messages WHERE account_id = $1 AND thread_id = $2
           UNION ALL
           SELECT 'mark', mark_id, at FROM thread_marks WHERE account_id = $1 AND thread_id = $2""",
        account_id,
        thread_id,
    )
    return [ThreadEntry(r["kind"], r["entry_id"], r["at"]) for r in rows]


async def replace_cycles(
    conn: asyncpg.Connection, account_id: UUID, thread_id: str, *, marketplace_id: str, waits: Sequence[Wait]
) -> None:
    """The thread's waits are exactly ``waits`` afterwards (delete and insert: the rows carry nothing else)."""
    await conn.execute("DELETE FROM response_cycles WHERE account_id = $1 AND thread_id = $2", account_id, thread_id)
    await conn.executemany(
        """INSERT INTO response_cycles (account_id, thread_id, opened_by, marketplace_id, started_at, deadline,
               closed_at, closed_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
        [
            (account_id, thread_id, w.opened_by, marketplace_id, w.started_at, w.deadline, w.closed_at, w.closed_by)
            for w in waits
        ],
    )


async def open_cycle(conn: asyncpg.Connection, account_id: UUID, thread_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT * FROM response_cycles WHERE account_id = $1 AND thread_id = $2 AND closed_at IS NULL
           ORDER BY started_at DESC LIMIT 1 FOR UPDATE""",
        account_id,
        thread_id,
    )


async def start_cycle(
    conn: asyncpg.Connection,
    account_id: UUID,
    thread_id: str,
    *,
    opened_by: str,
    marketplace_id: str,
    started_at: datetime,
    deadline: datetime,
) -> None:
    await conn.execute(
        """INSERT INTO response_cycles (account_id, thread_id, opened_by, marketplace_id, started_at, deadline)
           VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING""",
        account_id,
        thread_id,
        opened_by,
        marketplace_id,
        started_at,
        deadline,
    )


async def close_cycle(
    conn: asyncpg.Connection, account_id: UUID, thread_id: str, *, opened_by: str, closed_at: datetime, closed_by: str
) -> None:
    await conn.execute(
        """UPDATE response_cycles SET closed_at = $4, closed_by = $5
           WHERE account_id = $1 AND thread_id = $2 AND opened_by = $3""",
        account_id,
        thread_id,
        opened_by,
        closed_at,
        closed_by,
    )


async def cycles_for(
    conn: asyncpg.Connection, account_id: UUID, marketplaces: list[str] | None, since: datetime, as_of: datetime
) -> list[Cycle]:
    """Waits that matter at ``as_of``: open then (started, not closed by then) or with a deadline since ``since``."""
    rows = await conn.fetch(
        """SELECT thread_id, marketplace_id, started_at, deadline, closed_at, closed_by FROM response_cycles
           WHERE account_id = $1 AND ($2::text[] IS NULL OR marketplace_id = ANY($2))
             AND started_at <= $4
             AND (deadline > $3 OR closed_at IS NULL OR closed_at > $4)""",
        account_id,
        marketplaces,
        since,
        as_of,
    )
    return [
        Cycle(r["thread_id"], r["marketplace_id"], r["started_at"], r["deadline"], r["closed_at"], r["closed_by"])
        for r in rows
    ]


async def threads_by_id(conn: asyncpg.Connection, account_id: UUID, thread_ids: list[str]) -> dict[str, asyncpg.Record]:
    rows = await conn.fetch(
        "SELECT * FROM threads WHERE account_id = $1 AND thread_id = ANY($2::text[])", account_id, thread_ids
    )
    return {r["thread_id"]: r for r in rows}


# -- billing ----------------------------------------------------------------------------------------


async def upsert_invoice(conn: asyncpg.Connection, row: dict[str, Any]) -> None:
    await conn.execute(
        """INSERT INTO invoices (account_id, invoice_id, period, currency, kind, total, discount, issued_at, lines)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb)
           ON CONFLICT (account_id, invoice_id) DO NOTHING""",
        row["account_id"],
        row["invoice_id"],
        row["period"],
        row["currency"],
        row["kind"],
        row["total"],
        row["discount"],
        row["issued_at"],
        row["lines"],
    )


async def upsert_credit_note(conn: asyncpg.Connection, row: dict[str, Any]) -> None:
    await conn.execute(
        """INSERT INTO credit_notes (account_id, credit_note_id, invoice_id, period, currency, reason, total,
               issued_at, lines) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb)
           ON CONFLICT (account_id, credit_note_id) DO NOTHING""",
        row["account_id"],
        row["credit_note_id"],
        row["invoice_id"],
        row["period"],
        row["currency"],
        row["reason"],
        row["total"],
        row["issued_at"],
        row["lines"],
    )


async def latest_invoices(conn: asyncpg.Connection, account_id: UUID, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT * FROM invoices WHERE account_id = $1
           ORDER BY period DESC, issued_at DESC, invoice_id LIMIT $2""",
        account_id,
        limit,
    )


async def credit_notes_for(conn: asyncpg.Connection, account_id: UUID, invoice_ids: list[str]) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT * FROM credit_notes WHERE account_id = $1 AND invoice_id = ANY($2::text[])
           ORDER BY issued_at, credit_note_id""",
        account_id,
        invoice_ids,
    )


# -- canonical dump ---------------------------------------------------------------------------------


async def dump(conn: asyncpg.Connection, schema: str, account_ids: list[UUID] | None = None) -> str:
    """Every row of the generation's tables as sorted JSON lines: equal dumps mean byte-for-byte equal views.
    With ``account_ids``: only those accounts' rows of the per-account tables (the FX tables are left out)."""
    tables = await conn.fetch(
        """SELECT table_name,
                  EXISTS (SELECT 1 FROM information_schema.columns c
                          WHERE c.table_schema = t.table_schema AND c.table_name = t.table_name
                            AND c.column_name = 'account_id') AS per_account
           FROM information_schema.tables t WHERE table_schema = $1 AND table_type = 'BASE TABLE'
           ORDER BY table_name""",
        schema,
    )
    parts: list[str] = []
    for t in tables:
        name = t["table_name"]
        where = ""
        args: list[Any] = []
        if account_ids is not None and not t["per_account"]:
            continue
        if account_ids is not None:
            where = "WHERE account_id = ANY($1::uuid[])"
            args = [account_ids]
        rows = await conn.fetch(
            f'SELECT row_to_json(x)::text AS j FROM "{schema}"."{name}" x {where} ORDER BY 1',
            *args,
        )
        parts.append(f"## {name} ({len(rows)})")
        parts.extend(r["j"] for r in rows)
    return "\n".join(parts) + "\n"


def as_json(value: Any) -> Any:
    """jsonb columns come back decoded by the pool's codec; plain json text (json_agg) may not."""
    return json.loads(value) if isinstance(value, str) else value
