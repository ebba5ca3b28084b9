"""SQL of the overview (its sums computed in PostgreSQL, and the per-order rows of the Python reference)
and of the orders page.
Like every read-model SQL module, each function runs on a connection whose search_path names
the generation's schema first (see ``generations.use_schema``)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import asyncpg

from unified_seller_view.domain import OrdersQuery
from unified_seller_view.overview_rules import OverviewQuery

# -- overview in Python (every order, the reference) ------------------------------------------------


async def overview_rows(conn: asyncpg.Connection, q: OverviewQuery) -> list[asyncpg.Record]:
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
        q.account_id,
        q.marketplaces,
        q.purchased_after,
        q.purchased_before,
    )


# -- overview in SQL ---------------------------------------------------------------------------------


# The overview's sums computed in PostgreSQL in one pass over the account's orders (and their refunds), so a
# request costs a few aggregate rows instead of every order. The rule is the one of overview_rules.build_overview:
# every amount of a sale (the order total, then each refund in event_id order) is converted at the rates of
# the order's purchase day and rounded half-even PER AMOUNT to the reporting minor unit; an order with an
# amount lacking a rate is left unconverted as a whole.
#
# Rounding: with X = amount x rate(reporting) x 10^m and L = rate(local), n = div(X, L) (exact truncation)
# and r = X - n*L (exact remainder) give the exact half-even result n + sign(X) when 2|r| > L, or when
# 2|r| = L and n is odd (a tie goes to the even neighbour). PostgreSQL's own round() rounds ties away from
# zero and its division rounds at a chosen scale, so neither is used.
#
# Python (overview_rules.convert) rounds the product and the quotient to 34 significant digits before the final
# half-even quantize. That equals the exact result unless the exact quotient lies within half a unit in the
# 34th digit of a tie. ``exact`` below certifies it cannot: the product has at most 34 digits (scales <= 20
# and |amount x rate| < 10^14) and the quotient is exactly a tie or farther from it than half a 34th-digit
# unit (|2|r| - L| x 10^33 > |X| is sufficient). Amounts that fail it (never with real rates and prices)
# are returned one by one and converted by overview_rules.convert itself.
def rounded_half_even(amounts: str, reporting: str) -> str:
    """The rounding above, written once for every statement that converts: ``amounts`` is a SELECT whose rows
    carry amount, currency, lrate, trate, ``converted`` and x = amount x trate x 10^m (NULL when not converted);
    the result adds n, r, ``rounded`` (x / lrate half-even in minor units) and ``exact``. ``reporting`` is the SQL
    of the reporting currency (a parameter or a column)."""
    amounts = amounts.replace("\n", "\n" + " " * 22)
    return f"""    SELECT c.*, c.converted AND (c.currency = {reporting} OR (scale(c.amount) + scale(c.trate) <= 20
               AND abs(c.amount * c.trate) < 1e14
               AND (2 * abs(c.r) = c.lrate OR abs(2 * abs(c.r) - c.lrate) * 1e33 > abs(c.x)))) AS exact,
           c.n + CASE WHEN 2 * abs(c.r) > c.lrate OR (2 * abs(c.r) = c.lrate AND mod(c.n, 2) <> 0) THEN sign(c.x)
                      ELSE 0 END AS rounded
    FROM (SELECT b.*, b.x - b.n * b.lrate AS r
          FROM (SELECT a.*, div(a.x, a.lrate) AS n
                FROM ({amounts}
                      OFFSET 0) a
                OFFSET 0) b
          OFFSET 0) c
    OFFSET 0"""


# Flow: the refunds of the selected sales and the distinct (currency, purchase day) of their totals, the
# rates of those pairs (a few hundred index look-ups), the orders with a refund lacking a rate, then ONE scan
# of the account's orders hash-joined to those small sets and aggregated per (marketplace, status, currency).
# The ``rate`` rows are the (currency, day) pairs build_overview records in ``rates_used``: every converted
# sale total not in the reporting currency, and each refund before the order's first refund without a rate.
#
# The sales totals and the refunds, each with its rates and x (rounded by rounded_half_even).
_ORDER_AMOUNTS = """SELECT o.marketplace_id, o.status, o.currency, o.amount, o.number_of_items, p.lrate, p.trate,
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
LEFT JOIN failed f ON f.amazon_order_id = o.amazon_order_id"""

_REFUND_AMOUNTS = """SELECT pr.*, pr.total_ok AND f.amazon_order_id IS NULL AS converted,
       pr.currency <> $5 AND pr.total_ok
           AND (f.amazon_order_id IS NULL OR pr.refund_key < f.first_failed) AS looked_up,
       CASE WHEN pr.total_ok AND f.amazon_order_id IS NULL
            THEN pr.amount * pr.trate * $6::numeric END AS x
FROM priced_refunds pr LEFT JOIN failed f ON f.amazon_order_id = pr.amazon_order_id"""

OVERVIEW_SQL = f"""
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
{rounded_half_even(_ORDER_AMOUNTS, "$5")}
),
refund_rows AS (
{rounded_half_even(_REFUND_AMOUNTS, "$5")}
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
    conn: asyncpg.Connection, q: OverviewQuery, *, minor_factor: Decimal, granularity: str | None = None
) -> list[asyncpg.Record]:
    """The overview's aggregate rows (see OVERVIEW_SQL): ``kind`` says what each row carries; with a
    ``granularity`` (day, week, month) the order and refund rows are split by ``bucket`` (its first day)."""
    # The planner badly overestimates the DISTINCT (currency, day) sets (100k instead of ~2k) and would sort
    # and merge-join 100k rows; hash joins/aggregates are right here, and JIT costs more than it saves.
    await conn.execute("SET LOCAL jit = off; SET LOCAL enable_mergejoin = off; SET LOCAL enable_sort = off")
    rows = await conn.fetch(
        OVERVIEW_SQL,
        q.account_id,
        q.marketplaces,
        q.purchased_after,
        q.purchased_before,
        q.reporting_currency,
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
    conn: asyncpg.Connection, q: OrdersQuery, *, after: tuple[datetime, str] | None, limit: int
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
        q.account_id,
        q.marketplaces,
        q.statuses,
        q.purchased_after,
        q.purchased_before,
        q.order_ids,
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )
