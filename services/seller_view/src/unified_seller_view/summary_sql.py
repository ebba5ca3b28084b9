"""The statements that keep the day summaries (summaries.py): one template of the per-order rules (each order
converted at its purchase day's rates and rounded half-even on its own, as overview_store.OVERVIEW_SQL does), run over
whole days (a recompute) or over given orders (their sums added or taken out)."""

from __future__ import annotations

from decimal import Decimal

from unified_seller_view import overview_rules
from unified_seller_view.overview_store import rounded_half_even

# The reporting currencies kept (the web front end's choices): every one multiplies the rows each order
# event writes, so not all of ISO 4217; another one is answered by the per-order SQL (same figures, slower).
REPORTING_CURRENCIES: tuple[str, ...] = ("CAD", "EUR", "GBP", "JPY", "MXN", "USD")


def factor(currency: str) -> Decimal:
    """10^(minor digits): the reporting amounts are summed as integers of minor units."""
    exponent = overview_rules.minor(currency).as_tuple().exponent
    assert isinstance(exponent, int)
    return Decimal(10) ** -exponent


# Each order total and each refund per reporting currency, with its rates and x (rounded by rounded_half_even).
_ORDER_AMOUNTS = """SELECT o.account_id, o.marketplace_id, o.status, o.currency, o.amount, o.number_of_items,
       o.day, p.rc, p.pos, p.lrate, p.trate,
       o.status <> 'Canceled' AND p.lrate IS NOT NULL AND p.trate IS NOT NULL
           AND f.amazon_order_id IS NULL AS converted,
       o.status <> 'Canceled' AND o.currency <> p.rc
           AND p.lrate IS NOT NULL AND p.trate IS NOT NULL AS looked_up,
       CASE WHEN o.status <> 'Canceled' AND f.amazon_order_id IS NULL
            THEN o.amount * p.trate * p.mf END AS x
FROM o JOIN rates p ON p.currency = o.currency AND p.day = o.day
LEFT JOIN failed f ON f.account_id = o.account_id AND f.amazon_order_id = o.amazon_order_id
    AND f.rc = p.rc"""

_REFUND_AMOUNTS = """SELECT pr.*, pr.total_ok AND f.amazon_order_id IS NULL AS converted,
       pr.currency <> pr.rc AND pr.total_ok
           AND (f.amazon_order_id IS NULL OR pr.refund_key < f.first_failed) AS looked_up,
       CASE WHEN pr.total_ok AND f.amazon_order_id IS NULL
            THEN pr.amount * pr.trate * pr.mf END AS x
FROM priced_refunds pr
LEFT JOIN failed f ON f.account_id = pr.account_id AND f.amazon_order_id = pr.amazon_order_id
    AND f.rc = pr.rc"""

# {orders}: the CTEs k and o (the orders summed, with their purchase day); $3/$4: reporting currencies and
# their 10^minor digits; {final}: the statement over order_rows and refund_rows.
_TEMPLATE = f"""
WITH {{orders}},
rep AS (SELECT rc, mf, pos FROM unnest($3::text[], $4::numeric[]) WITH ORDINALITY AS r(rc, mf, pos)),
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
    SELECT p.currency, p.day, rep.rc, rep.mf, rep.pos,
           CASE WHEN p.currency = rep.rc THEN 1::numeric ELSE l.rate END AS lrate,
           CASE WHEN p.currency = rep.rc THEN 1::numeric ELSE t.rate END AS trate
    FROM pairs p CROSS JOIN rep
    JOIN cur l ON l.currency = p.currency AND l.day = p.day
    JOIN cur t ON t.currency = rep.rc AND t.day = p.day
),
priced_refunds AS MATERIALIZED (
    SELECT r.*, x.rc, x.mf, x.pos, x.lrate, x.trate, x.lrate IS NOT NULL AND x.trate IS NOT NULL AS ok,
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
{rounded_half_even(_ORDER_AMOUNTS, "c.rc")}
),
refund_rows AS (
{rounded_half_even(_REFUND_AMOUNTS, "c.rc")}
)
{{final}}
"""


# $1/$2: (account, day) pairs: every order of those days.
_BY_DAYS = """k AS (SELECT DISTINCT a, d FROM unnest($1::uuid[], $2::date[]) AS k(a, d)),
o AS MATERIALIZED (
    SELECT o.account_id, o.amazon_order_id, o.marketplace_id, o.status, o.currency, o.amount, o.number_of_items,
           k.d AS day
    FROM k CROSS JOIN LATERAL (
        SELECT * FROM orders WHERE account_id = k.a AND purchase_date >= (k.d::timestamp AT TIME ZONE 'UTC')
           AND purchase_date < ((k.d + 1)::timestamp AT TIME ZONE 'UTC') OFFSET 0) o  -- by index, not a scan
)"""

# $1/$2: (account, order ID) pairs: those orders alone.
_BY_ORDERS = """k AS (SELECT DISTINCT a, i FROM unnest($1::uuid[], $2::text[]) AS k(a, i)),
o AS MATERIALIZED (
    SELECT o.account_id, o.amazon_order_id, o.marketplace_id, o.status, o.currency, o.amount, o.number_of_items,
           (o.purchase_date AT TIME ZONE 'UTC')::date AS day
    FROM k CROSS JOIN LATERAL (
        SELECT * FROM orders WHERE account_id = k.a AND amazon_order_id = k.i OFFSET 0) o
)"""

_KEY = "account_id, day, kind, marketplace_id, currency, status"
_AMOUNTS = ("amount_unconverted", "reporting_units")
_COLUMNS = f"{_KEY}, n, units, amount, n_unconverted, amount_unconverted, n_rate_lookups, n_converted, reporting_units"
_INEXACT = "inexact_positions, inexact_amounts, inexact_local_rates, inexact_reporting_rates"


def _per_currency(aggregate: str, where: str, sign: str) -> str:
    """ARRAY[...]: the aggregate per reporting currency (REPORTING_CURRENCIES' order) times ``sign``; sums
    over nothing are 0 and trailing zeros trimmed, so adding and subtracting give what a recompute gives."""
    each = (f"coalesce({sign} * {aggregate} FILTER (WHERE pos = {i} AND {where}), 0)" for i in range(1, 7))
    if aggregate.startswith("sum"):
        each = (f"trim_scale({e})" for e in each)
    assert len(REPORTING_CURRENCIES) == 6  # as in the table's CHECK (readmodel.sql)
    return "ARRAY[" + ", ".join(each) + "]"


def _sums(sign: str) -> str:
    """One row per (account, day, kind, marketplace, currency, status) of the orders in ``o``: the figures
    that depend on the reporting currency are arrays in REPORTING_CURRENCIES' order (a sixth of the rows a
    row per reporting currency would write)."""
    inexact = "converted AND NOT exact"
    common = f"""{_per_currency("count(*)", "converted", sign)},
       {_per_currency("sum(rounded)", "exact", sign)},
       array_agg(pos ORDER BY pos, amount, lrate, trate) FILTER (WHERE {inexact}),
       array_agg(amount ORDER BY pos, amount, lrate, trate) FILTER (WHERE {inexact}),
       array_agg(lrate ORDER BY pos, amount, lrate, trate) FILTER (WHERE {inexact}),
       array_agg(trate ORDER BY pos, amount, lrate, trate) FILTER (WHERE {inexact})"""
    return f"""SELECT * FROM (SELECT account_id, day, 'order', marketplace_id, currency, status,
       {sign} * count(*) FILTER (WHERE pos = 1) AS n,
       coalesce({sign} * sum(number_of_items) FILTER (WHERE pos = 1 AND status <> 'Canceled'), 0) AS units,
       trim_scale(coalesce({sign} * sum(amount) FILTER (WHERE pos = 1 AND status <> 'Canceled'), 0)) AS amount,
       {_per_currency("count(*)", "status <> 'Canceled' AND NOT converted", sign)},
       {_per_currency("sum(amount)", "status <> 'Canceled' AND NOT converted", sign)},
       {_per_currency("count(*)", "looked_up", sign)},
       {common}
FROM order_rows GROUP BY account_id, day, marketplace_id, currency, status
UNION ALL
SELECT account_id, day, 'refund', marketplace_id, currency, '', {sign} * count(*) FILTER (WHERE pos = 1), NULL,
       trim_scale(coalesce({sign} * sum(amount) FILTER (WHERE pos = 1), 0)),
       {_per_currency("count(*)", "NOT converted", sign)},
       {_per_currency("sum(amount)", "NOT converted", sign)},
       {_per_currency("count(*)", "looked_up", sign)},
       {common}
FROM refund_rows GROUP BY account_id, day, marketplace_id, currency) AS x({_COLUMNS}, {_INEXACT})"""


def _added(column: str) -> str:
    """The upsert's SET of one column: the stored value plus the new one (arrays element by element)."""
    scalar = column in ("n", "units", "amount")
    plus = f"s.{column} + EXCLUDED.{column}" if scalar else "a + b"
    if column in ("amount", *_AMOUNTS):
        plus = f"trim_scale({plus})"
    if scalar:
        return f"{column} = {plus}"
    # element by element, written out: every array has one element per reporting currency (the table's CHECK)
    each = (plus.replace("a + b", f"s.{column}[{i}] + EXCLUDED.{column}[{i}]") for i in range(1, 7))
    return f"{column} = ARRAY[{', '.join(each)}]"


_COLUMN_LIST = f"{_COLUMNS}, {_INEXACT}"


def _array_sum(column: str, cast: str, source: str = "") -> str:
    """ARRAY[sum(column[1]), ...]: the element-wise sum of a figure's arrays over a group."""
    each = (f"sum({source}{column}[{i}]){cast}" for i in range(1, 7))
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
# The month rollup and the day look-ups (readmodel.sql) moved by the difference ``kept`` (the rows the day
# summaries get added, dirty days left out): the same difference summed per month and per (day, marketplace,
# currency), rows whose result is 0 deleted rather than written (found by index, by ctid: one statement never
# touches a row twice). n_inexact never moves here: a day whose orders have an inexact entry is dirty
# (recomputed whole, refresh_days), and the other days keep their inexact entries as they are.
_ROLLUP = f"""md AS MATERIALIZED (
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
           '{{0,0,0,0,0,0}}' FROM mc WHERE coalesce(stored, 0) + n <> 0 ORDER BY {_MONTH_KEY}
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
    FROM kept GROUP BY {_LOOKUP_KEY}
),
lc AS MATERIALIZED (
    SELECT ld.*, l.ctid AS at,
           ARRAY[{", ".join(f"coalesce(l.n_rate_lookups[{i}], 0) + ld.n_rate_lookups[{i}]" for i in range(1, 7))}]
               = '{{0,0,0,0,0,0}}' AS gone
    FROM ld LEFT JOIN LATERAL (
        SELECT ctid, n_rate_lookups FROM order_day_lookups l WHERE l.account_id = ld.account_id AND l.day = ld.day
            AND l.marketplace_id = ld.marketplace_id AND l.currency = ld.currency OFFSET 0) l ON true
    WHERE ld.n_rate_lookups <> '{{0,0,0,0,0,0}}'
),
lookups_up AS (
    INSERT INTO order_day_lookups AS l SELECT {_LOOKUP_KEY}, n_rate_lookups FROM lc WHERE NOT gone
    ORDER BY {_LOOKUP_KEY}
    ON CONFLICT ({_LOOKUP_KEY}) DO UPDATE SET n_rate_lookups = {_array_plus("l", "n_rate_lookups", False)}
),
lookups_gone AS (
    DELETE FROM order_day_lookups WHERE ctid = ANY(ARRAY(SELECT at FROM lc WHERE gone))
)"""
# Inserts the rows of the days $1/$2 (deleted before: DELETE_DAYS_SQL) and adds them to their months and
# look-ups (order_rollup_apply, readmodel.sql).
REFRESH_SQL = _TEMPLATE.replace("{orders}", _BY_DAYS).replace(
    "{final}",
    f""", ins AS (INSERT INTO order_day_summaries AS s ({_COLUMN_LIST})
{_sums("1")}
RETURNING s)
SELECT order_rollup_apply('{{}}'::order_day_summaries[], coalesce(array_agg(ins.s), '{{}}')) FROM ins""",
)

# Deletes the rows of the days $1/$2 and takes them out of their months and look-ups.
DELETE_DAYS_SQL = """WITH del AS (
    DELETE FROM order_day_summaries s USING unnest($1::uuid[], $2::date[]) AS k(a, d)
    WHERE s.account_id = k.a AND s.day = k.d RETURNING s)
SELECT order_rollup_apply(coalesce(array_agg(del.s), '{}'), '{}'::order_day_summaries[]) FROM del"""

# Adds $5 (1 or -1) times the sums of the orders $1/$2 as they are now, except on days where they have an
# inexact conversion (its entry cannot be taken out of the arrays) or days $6/$7: those days are returned
# (dirty) to be recomputed whole; the others are returned too (their rows may have reached n = 0). Deletes
# the rows at n = 0 of the days $8/$9 (taken out before) that are not dirty and that the sums do not add to
# (disjoint from the rows upserted: one statement never touches a row twice).
DELTA_SQL = _TEMPLATE.replace("{orders}", _BY_ORDERS).replace(
    "{final}",
    f""", sums AS MATERIALIZED ({_sums("$5::int")}),
dirty AS (SELECT account_id, day FROM sums WHERE inexact_positions IS NOT NULL
          UNION SELECT a, d FROM unnest($6::uuid[], $7::date[]) AS x(a, d)),
kept AS MATERIALIZED (SELECT * FROM sums WHERE (account_id, day) NOT IN (SELECT account_id, day FROM dirty)),
up AS (
    INSERT INTO order_day_summaries AS s ({_COLUMN_LIST})
    SELECT * FROM kept ORDER BY {_KEY}
    ON CONFLICT ({_KEY}) DO UPDATE SET {", ".join(_added(c) for c in _COLUMNS.split(", ")[6:])}
),
{_ROLLUP},
emptied AS (  -- rows found by index (LATERAL) and deleted by ctid: the planner settings forbid nested loops
    DELETE FROM order_day_summaries WHERE ctid = ANY(ARRAY(
        SELECT z.ctid FROM (SELECT DISTINCT a, d FROM unnest($8::uuid[], $9::date[]) AS e(a, d)) e
        CROSS JOIN LATERAL (SELECT s.ctid, s.* FROM order_day_summaries s WHERE s.account_id = e.a AND s.day = e.d
                            AND s.n = 0 OFFSET 0) z
        WHERE (e.a, e.d) NOT IN (SELECT account_id, day FROM dirty)
          AND NOT EXISTS (SELECT 1 FROM sums x WHERE x.account_id = z.account_id AND x.day = z.day
                          AND x.kind = z.kind AND x.marketplace_id = z.marketplace_id AND x.currency = z.currency
                          AND x.status = z.status)))
)
SELECT DISTINCT s.account_id, s.day, d.day IS NOT NULL AS dirty FROM sums s
LEFT JOIN dirty d ON d.account_id = s.account_id AND d.day = s.day""",
)
