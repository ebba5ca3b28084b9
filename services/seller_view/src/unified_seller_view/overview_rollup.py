"""The overview's sums read from months where it can and days where it must, so a request reads a few
hundred rows whatever the account's orders.

order_month_summaries holds each month's sums of the day summaries (kept with them by the same statements,
contribution_sql.py). A month is read whole when the question covers it whole and every day of it is on or before
the newest published rate day (no order in it can be provisional: that count needs the day); the rest of the
range (its ragged ends, the recent days) is read from the day rows. The rates the answer lists per purchase
day come from order_day_lookups (one narrow row per day, marketplace and currency), matched to the rates
of those currencies over the span in one walk (not one index look-up per day), all in one statement. A month
holding an inexact conversion (never with real rates) sends the request to the day summaries
(summaries.overview_sums)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg

from unified_seller_view import overview_rules, summaries

# One statement (one round trip): the sums per (kind, marketplace, status, currency, bucket), and with $9 what
# the rates used need: per currency a row of kind 'days' (the purchase days that need its rate) and rows of
# kind 'fx' (its rates over those days' span), which ``rates_used`` merges.
# $1 account, $2 reporting currency, $3 marketplaces, $4/$5 first day / end day (excluded), $6 granularity,
# $7 the reporting currency's position in the arrays, $8 whether months may be read (no finer bucket),
# $9 whether to list the rates, $10 the order statuses kept apart (NULL: every one).
# b: [lo, hi) the months read whole; days before lo and from hi on are read from the day rows.
# The rates: per purchase day with a look-up, that currency's and the reporting one's (EUR needs none).
_SQL = """
WITH b AS MATERIALIZED (
    SELECT latest, lo, greatest(lo, hi) AS hi
    FROM (SELECT latest,
                 CASE WHEN $4::date IS NULL THEN '-infinity'::date
                      ELSE (date_trunc('month', $4::date - 1) + interval '1 month')::date END AS lo,
                 CASE WHEN NOT $8::bool OR latest IS NULL THEN '-infinity'::date
                      ELSE least(date_trunc('month', latest + 1)::date,
                                 coalesce(date_trunc('month', $5::date)::date, 'infinity')) END AS hi
          FROM (SELECT max(date) AS latest FROM fx_days) l) x
),
src AS (
    SELECT kind, marketplace_id, status, currency, day, n, units, amount, n_converted[$7] AS nc,
           n_unconverted[$7] AS nu, amount_unconverted[$7] AS au, reporting_units[$7] AS ru,
           $7 = ANY(inexact_positions) AS inexact
    FROM order_day_summaries
    WHERE account_id = $1 AND ($3::text[] IS NULL OR marketplace_id = ANY($3))
      AND day >= coalesce($4::date, '-infinity') AND day < (SELECT lo FROM b)
      AND day < coalesce($5::date, 'infinity')
    UNION ALL
    SELECT kind, marketplace_id, status, currency, day, n, units, amount, n_converted[$7], n_unconverted[$7],
           amount_unconverted[$7], reporting_units[$7], $7 = ANY(inexact_positions)
    FROM order_day_summaries
    WHERE account_id = $1 AND ($3::text[] IS NULL OR marketplace_id = ANY($3))
      AND day >= (SELECT hi FROM b) AND day >= coalesce($4::date, '-infinity')
      AND day < coalesce($5::date, 'infinity')
    UNION ALL
    SELECT kind, marketplace_id, status, currency, month, n, units, amount, n_converted[$7], n_unconverted[$7],
           amount_unconverted[$7], reporting_units[$7], n_inexact[$7] > 0
    FROM order_month_summaries
    WHERE account_id = $1 AND ($3::text[] IS NULL OR marketplace_id = ANY($3))
      AND month >= (SELECT lo FROM b) AND month < (SELECT hi FROM b)
),
folded AS (  -- with $10, the statuses not listed are one status '*' (refunds have none: '')
    SELECT kind, marketplace_id,
           CASE WHEN $10::text[] IS NULL OR status = '' OR status = ANY($10) THEN status ELSE '*' END AS status,
           currency, day, n, units, amount, nc, nu, au, ru, inexact
    FROM src
),
looked AS MATERIALIZED (
    SELECT DISTINCT currency, day FROM order_day_lookups
    WHERE $9::bool AND account_id = $1 AND ($3::text[] IS NULL OR marketplace_id = ANY($3))
      AND day >= coalesce($4::date, '-infinity') AND day < coalesce($5::date, 'infinity') AND n_rate_lookups[$7] > 0
),
pairs AS MATERIALIZED (
    -- per currency needing rates (EUR needs none): its purchase days, their span, from the last rate on or
    -- before the first one
    SELECT currency, days, hi,
           coalesce((SELECT max(date) FROM fx_rates f WHERE f.currency = p.currency AND f.date <= p.lo), p.lo) AS lo
    FROM (SELECT currency, array_agg(to_char(day, 'YYYY-MM-DD') ORDER BY day) AS days, min(day) AS lo, max(day) AS hi
          FROM (SELECT currency, day FROM looked UNION SELECT $2::text, day FROM looked) u
          WHERE currency <> 'EUR'
          GROUP BY currency) p
)
SELECT kind, marketplace_id, nullif(status, '') AS status, currency, NULL::date AS day,
       sum(n)::bigint AS n, sum(units)::bigint AS units, sum(nc)::bigint AS n_converted,
       coalesce(sum(nc) FILTER (WHERE currency <> $2 AND day > (SELECT latest FROM b)), 0)::bigint AS n_provisional,
       date_trunc($6::text, day)::date AS bucket,
       sum(nu)::bigint AS n_unconverted, sum(amount) AS amount, sum(au) AS amount_unconverted,
       sum(ru) AS reporting_units, coalesce(bool_or(inexact), false) AS has_inexact,
       NULL::text[] AS days, NULL::text AS rate_date, NULL::text AS rate, NULL::int AS revision, NULL::text AS source
FROM folded
GROUP BY kind, marketplace_id, status, currency, bucket
UNION ALL
SELECT 'days', NULL, NULL, currency, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, false,
       days, NULL, NULL, NULL, NULL
FROM pairs
UNION ALL
SELECT 'fx', NULL, NULL, p.currency, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, false,
       NULL, to_char(f.date, 'YYYY-MM-DD'), f.rate::text, d.revision, d.source
FROM pairs p
JOIN fx_rates f ON f.currency = p.currency AND f.date BETWEEN p.lo AND p.hi
JOIN fx_days d ON d.date = f.date
"""


async def available(conn: asyncpg.Connection) -> bool:
    """Whether the current generation has the day summaries and their month rollup (one built before them
    is read from the day summaries, or from the orders, until migration 004 or a rebuild adds them)."""
    return bool(
        await conn.fetchval(
            """SELECT to_regclass('order_month_summaries') IS NOT NULL
                      AND to_regclass('order_day_lookups') IS NOT NULL
                      AND EXISTS (SELECT 1 FROM pg_attribute WHERE attname = 'inexact_positions'
                                  AND attrelid = to_regclass('order_day_summaries'))"""
        )
    )


async def overview_sums(
    conn: asyncpg.Connection, q: summaries.DayQuery, *, granularity: str | None = None, with_rates: bool = True
) -> list[Mapping[str, Any]]:
    """The rows of summaries.overview_sums (same keys and meaning, without the inexact entries: read from the
    months, the rows have none), except that the rates come as the answer lists them: with ``with_rates``, one
    row of kind ``rates`` whose ``rates`` is the answer's fx_rates_used; and that with a ``granularity`` only
    the statuses that are not a sale (overview_rules.NOT_A_SALE) have rows of their own, the others of a bucket
    one row of status ``*`` (a time series answers the canceled count alone: 40% fewer rows)."""
    # A series (a granularity) needs of the statuses only the canceled count: the rest of a bucket is one row.
    apart = None if granularity is None else sorted(overview_rules.NOT_A_SALE)
    rows = await conn.fetch(
        _SQL, *q.args(), granularity, q.position(), granularity in (None, "month"), with_rates, apart
    )
    if any(r["has_inexact"] for r in rows):  # an inexact entry: its value is in the day rows only
        return list(await summaries.overview_sums(conn, q, granularity=granularity))
    # the records as they are (no inexact entries: absorb_sum_row reads a missing one as none)
    out: list[Mapping[str, Any]] = [r for r in rows if r["kind"] in ("order", "refund")]
    if with_rates:
        out.append({"kind": "rates", "rates": rates_used(rows)})
    return out


def rates_used(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """fx_rates_used (overview_rules.rates_used_json's list) from the 'days' and 'fx' rows: each purchase day
    served by its currency's last rate on or before it (days before the first rate have none: not listed).
    Dates and rates come as text from SQL (ISO dates order as the dates do; a numeric's text is the Decimal's
    ``format(x, "f")``): a year of days is a thousand entries, built here without a Decimal or a date."""
    rates: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        if r["kind"] == "fx":
            rates.setdefault(r["currency"], []).append(r)
    out: list[dict[str, Any]] = []
    for r in sorted((r for r in rows if r["kind"] == "days"), key=lambda r: r["currency"]):
        currency = r["currency"]
        fx = sorted(rates.get(currency, []), key=lambda f: f["rate_date"])
        served: list[list[str]] = [[] for _ in fx]
        i, last = -1, len(fx) - 1
        for day in r["days"]:  # ascending, as are the rates: one walk
            while i < last and fx[i + 1]["rate_date"] <= day:
                i += 1
            if i >= 0:
                served[i].append(day)
        out.extend(
            {
                "currency": currency,
                "per": overview_rules.BASE_CURRENCY,
                "rate": f["rate"],
                "rate_date": f["rate_date"],
                "revision": f["revision"],
                "source": f["source"],
                "used_for_purchase_days": days,
            }
            for f, days in zip(fx, served, strict=True)
            if days
        )
    return out
