"""The statement that keeps the day summaries, their months and day look-ups through a batch of order events
(summaries.per_batch), in one round trip after the batch's handlers.

Each order's contribution to the summaries (its rows in order_contributions: what it adds to its day's
'order' row and to its 'refund' rows) is stored when it is computed, so a batch computes its orders'
contributions once, as they are now (summary_sql's template, per order), and takes the old ones from the
stored rows instead of computing them again before its handlers run: the net difference (new minus old) is
upserted into the day rows, summed per month and per (day, marketplace, currency) into the rollups; rows
whose count reaches 0 are deleted. A day where an old or new contribution holds an inexact conversion (it
cannot be taken out of the arrays) is left out and returned, to be recomputed whole (refresh_days)."""

from __future__ import annotations

from unified_seller_view.summary_sql import (
    _BY_ORDERS,
    _COLUMN_LIST,
    _COLUMNS,
    _KEY,
    _TEMPLATE,
    CONTRIBUTION_COLUMNS,
    STORE_CONTRIBUTIONS,
    _added,
)

_ZEROS = "'{0,0,0,0,0,0}'"


def _array_sum(column: str, cast: str, factor: str = "") -> str:
    """ARRAY[sum(column[1]), ...]: the element-wise sum of a figure's arrays over a group (amounts trimmed)."""
    each = (f"sum({factor}{column}[{i}]){cast}" for i in range(1, 7))
    if not cast:
        each = (f"trim_scale({e})" for e in each)
    return "ARRAY[" + ", ".join(each) + "]"


def _array_plus(table: str, column: str, trim: bool) -> str:
    """ARRAY[t.column[1] + EXCLUDED.column[1], ...] (trailing zeros trimmed for amounts)."""
    each = (f"{table}.{column}[{i}] + EXCLUDED.{column}[{i}]" for i in range(1, 7))
    if trim:
        each = (f"trim_scale({e})" for e in each)
    return "ARRAY[" + ", ".join(each) + "]"


_MONTH_KEY = "account_id, month, kind, marketplace_id, currency, status"
_LOOKUP_KEY = "account_id, day, marketplace_id, currency"
# The month rollup and the day look-ups (readmodel/004) moved by the difference ``kept`` (what the day rows
# get added, dirty days left out): summed per month and per (day, marketplace, currency), rows whose result is
# 0 deleted rather than written (found by index, deleted by ctid: one statement never touches a row twice).
# n_inexact never moves here: a day whose orders have an inexact entry is dirty (recomputed whole), and the
# other days keep their inexact entries as they are.
ROLLUP = f"""md AS MATERIALIZED (
    SELECT account_id, date_trunc('month', day)::date AS month, kind, marketplace_id, currency, status,
           sum(n)::bigint AS n, sum(units)::bigint AS units, trim_scale(sum(amount)) AS amount,
           {_array_sum("n_converted", "::bigint")} AS n_converted,
           {_array_sum("n_unconverted", "::bigint")} AS n_unconverted,
           {_array_sum("amount_unconverted", "")} AS amount_unconverted,
           {_array_sum("reporting_units", "")} AS reporting_units
    FROM kept GROUP BY {_MONTH_KEY.replace("month", "date_trunc('month', day)::date")}
),
mc AS MATERIALIZED (
    SELECT md.*, m.n AS stored, m.ctid AS at FROM md LEFT JOIN LATERAL (
        SELECT ctid, n FROM order_month_summaries m WHERE m.account_id = md.account_id AND m.month = md.month
            AND m.kind = md.kind AND m.marketplace_id = md.marketplace_id AND m.currency = md.currency
            AND m.status = md.status OFFSET 0) m ON true
),
months_up AS (
    INSERT INTO order_month_summaries AS m
    SELECT {_MONTH_KEY}, n, units, amount, n_converted, n_unconverted, amount_unconverted, reporting_units,
           {_ZEROS} FROM mc WHERE coalesce(stored, 0) + n <> 0 ORDER BY {_MONTH_KEY}
    ON CONFLICT ({_MONTH_KEY}) DO UPDATE SET
        n = m.n + EXCLUDED.n, units = m.units + EXCLUDED.units, amount = trim_scale(m.amount + EXCLUDED.amount),
        n_converted = {_array_plus("m", "n_converted", False)},
        n_unconverted = {_array_plus("m", "n_unconverted", False)},
        amount_unconverted = {_array_plus("m", "amount_unconverted", True)},
        reporting_units = {_array_plus("m", "reporting_units", True)}
),
months_gone AS (
    DELETE FROM order_month_summaries WHERE ctid = ANY(ARRAY(SELECT at FROM mc WHERE stored + n = 0))
),
ld AS MATERIALIZED (
    SELECT {_LOOKUP_KEY}, {_array_sum("n_rate_lookups", "::bigint")} AS n_rate_lookups
    FROM kept WHERE n_rate_lookups <> {_ZEROS} GROUP BY {_LOOKUP_KEY}  -- rows without a look-up move nothing
),
lc AS MATERIALIZED (
    SELECT ld.*, l.ctid AS at,
           ARRAY[{", ".join(f"coalesce(l.n_rate_lookups[{i}], 0) + ld.n_rate_lookups[{i}]" for i in range(1, 7))}]
               = {_ZEROS} AS gone
    FROM ld LEFT JOIN LATERAL (
        SELECT ctid, n_rate_lookups FROM order_day_lookups l WHERE l.account_id = ld.account_id AND l.day = ld.day
            AND l.marketplace_id = ld.marketplace_id AND l.currency = ld.currency OFFSET 0) l ON true
    WHERE ld.n_rate_lookups <> {_ZEROS}
),
lookups_up AS (
    INSERT INTO order_day_lookups AS l SELECT {_LOOKUP_KEY}, n_rate_lookups FROM lc WHERE NOT gone
    ORDER BY {_LOOKUP_KEY}
    ON CONFLICT ({_LOOKUP_KEY}) DO UPDATE SET n_rate_lookups = {_array_plus("l", "n_rate_lookups", False)}
),
lookups_gone AS (
    DELETE FROM order_day_lookups WHERE ctid = ANY(ARRAY(SELECT at FROM lc WHERE gone))
)"""

_FIGURES = ", ".join(CONTRIBUTION_COLUMNS.split(", ")[:-4])  # the stored columns but the inexact entries
_NOT_ZERO = (
    f"(d.n, coalesce(d.units, 0), d.amount, d.n_unconverted, d.amount_unconverted, d.n_rate_lookups, "
    f"d.n_converted, d.reporting_units) <> (0, 0, 0, {_ZEROS}, {_ZEROS}, {_ZEROS}, {_ZEROS}, {_ZEROS})"
)

# $1/$2: the batch's orders (account, order ID); $3/$4 the reporting currencies and their 10^minor digits;
# $5/$6: days whose recompute was asked meanwhile (left out, returned). Returns the days to recompute whole.
BATCH_SQL = _TEMPLATE.replace("{orders}", _BY_ORDERS).replace(
    "{final}",
    f""", c_old AS MATERIALIZED (
    SELECT x.* FROM k CROSS JOIN LATERAL (
        SELECT ctid AS at, * FROM order_contributions c WHERE c.account_id = k.a AND c.amazon_order_id = k.i
        OFFSET 0) x),
{STORE_CONTRIBUTIONS},
diff AS MATERIALIZED (
    SELECT account_id, day, kind, marketplace_id, currency, status, sum(g * n)::bigint AS n,
           sum(g * units)::bigint AS units, trim_scale(sum(g * amount)) AS amount,
           {_array_sum("n_unconverted", "::bigint", "g * ")} AS n_unconverted,
           {_array_sum("amount_unconverted", "", "g * ")} AS amount_unconverted,
           {_array_sum("n_rate_lookups", "::bigint", "g * ")} AS n_rate_lookups,
           {_array_sum("n_converted", "::bigint", "g * ")} AS n_converted,
           {_array_sum("reporting_units", "", "g * ")} AS reporting_units,
           bool_or(inexact_positions IS NOT NULL) AS inexact
    FROM (SELECT 1 AS g, {_FIGURES}, inexact_positions FROM new_c
          UNION ALL SELECT -1, {_FIGURES}, inexact_positions FROM c_old) c
    GROUP BY account_id, day, kind, marketplace_id, currency, status
),
dirty AS (SELECT account_id, day FROM diff WHERE inexact
          UNION SELECT a, d FROM unnest($5::uuid[], $6::date[]) AS x(a, d)),
kept AS MATERIALIZED (
    SELECT d.*, s.n AS stored, s.ctid AS at FROM diff d LEFT JOIN LATERAL (
        SELECT ctid, n FROM order_day_summaries s WHERE s.account_id = d.account_id AND s.day = d.day
            AND s.kind = d.kind AND s.marketplace_id = d.marketplace_id AND s.currency = d.currency
            AND s.status = d.status OFFSET 0) s ON true
    WHERE (d.account_id, d.day) NOT IN (SELECT account_id, day FROM dirty) AND {_NOT_ZERO}
),
up AS (
    INSERT INTO order_day_summaries AS s ({_COLUMN_LIST})
    SELECT {_COLUMNS}, NULL, NULL, NULL, NULL FROM kept WHERE coalesce(stored, 0) + n <> 0 ORDER BY {_KEY}
    ON CONFLICT ({_KEY}) DO UPDATE SET {", ".join(_added(c) for c in _COLUMNS.split(", ")[6:])}
),
gone AS (
    DELETE FROM order_day_summaries WHERE ctid = ANY(ARRAY(SELECT at FROM kept WHERE stored + n = 0))
),
{ROLLUP}
SELECT account_id, day FROM dirty""",
)
