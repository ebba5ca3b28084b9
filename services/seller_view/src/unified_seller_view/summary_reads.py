"""Reading the order-day summaries (kept by summaries.py): the overview's and the time series' sums of days,
for the reporting currencies kept, and whether a question can be answered from them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any
from uuid import UUID

import asyncpg

from unified_seller_view.overview_rules import OverviewQuery
from unified_seller_view.summary_sql import REPORTING_CURRENCIES


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
    conn: asyncpg.Connection, q: DayQuery, *, granularity: str | None = None
) -> list[dict[str, Any]]:
    """The rows of overview_store.overview_sums (same keys and meaning) summed from the day summaries."""
    args = q.args()
    position = q.position()
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


@dataclass(frozen=True, slots=True)
class DayQuery:
    """An overview question as the summaries can answer it: whole UTC days [first_day, end_day) and a
    reporting currency they keep. Both readers (days, and months where they cover) take it whole."""

    account_id: UUID
    reporting_currency: str
    marketplaces: list[str] | None
    first_day: date | None
    end_day: date | None

    def args(self) -> tuple[Any, ...]:
        """The first five parameters of every summaries statement, in their order."""
        return (self.account_id, self.reporting_currency, self.marketplaces, self.first_day, self.end_day)

    def position(self) -> int:
        """The reporting currency's 1-based index in the summaries' amount arrays."""
        return REPORTING_CURRENCIES.index(self.reporting_currency) + 1


def day_query(q: OverviewQuery) -> DayQuery | None:
    """``q`` in whole days, or None when the summaries cannot answer it (a bound that is not a UTC midnight,
    or a reporting currency they do not keep): then the per-order SQL does."""
    days = day_bounds(q.purchased_after, q.purchased_before)
    if days is None or q.reporting_currency not in REPORTING_CURRENCIES:
        return None
    marketplaces = list(q.marketplaces) if q.marketplaces is not None else None
    return DayQuery(q.account_id, q.reporting_currency, marketplaces, days[0], days[1])
