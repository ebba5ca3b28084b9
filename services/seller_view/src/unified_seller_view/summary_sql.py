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
_ORDER_AMOUNTS = """SELECT o.account_id, o.amazon_order_id, o.marketplace_id, o.status, o.currency, o.amount,
       o.number_of_items, o.day, p.rc, p.pos, p.lrate, p.trate,
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
    assert len(REPORTING_CURRENCIES) == 6  # as in the table's CHECK (readmodel/001)
    return "ARRAY[" + ", ".join(each) + "]"


def _sums(sign: str, per_order: bool = False) -> str:
    """One row per (account, day, kind, marketplace, currency, status) of the orders in ``o``: the figures
    that depend on the reporting currency are arrays in REPORTING_CURRENCIES' order (a sixth of the rows a
    row per reporting currency would write). ``per_order``: one row per order and kind instead (an order's
    contribution: order_contributions), amazon_order_id after account_id; its inexact entries (rare) are
    gathered apart, so the sums need no ordered aggregate and hash rather than sort."""
    by = "account_id, amazon_order_id, day" if per_order else "account_id, day"
    columns = _COLUMNS.replace("account_id, day", by, 1)
    inexact = "converted AND NOT exact"
    entries = (
        f"bool_or({inexact})"
        if per_order
        else ",\n       ".join(
            f"array_agg({c} ORDER BY pos, amount, lrate, trate) FILTER (WHERE {inexact})"
            for c in ("pos", "amount", "lrate", "trate")
        )
    )
    common = f"""{_per_currency("count(*)", "converted", sign)},
       {_per_currency("sum(rounded)", "exact", sign)},
       {entries}"""
    sums = f"""SELECT {by}, 'order', marketplace_id, currency, status,
       {sign} * count(*) FILTER (WHERE pos = 1) AS n,
       coalesce({sign} * sum(number_of_items) FILTER (WHERE pos = 1 AND status <> 'Canceled'), 0) AS units,
       trim_scale(coalesce({sign} * sum(amount) FILTER (WHERE pos = 1 AND status <> 'Canceled'), 0)) AS amount,
       {_per_currency("count(*)", "status <> 'Canceled' AND NOT converted", sign)},
       {_per_currency("sum(amount)", "status <> 'Canceled' AND NOT converted", sign)},
       {_per_currency("count(*)", "looked_up", sign)},
       {common}
FROM order_rows GROUP BY {by}, marketplace_id, currency, status
UNION ALL
SELECT {by}, 'refund', marketplace_id, currency, '', {sign} * count(*) FILTER (WHERE pos = 1), NULL,
       trim_scale(coalesce({sign} * sum(amount) FILTER (WHERE pos = 1), 0)),
       {_per_currency("count(*)", "NOT converted", sign)},
       {_per_currency("sum(amount)", "NOT converted", sign)},
       {_per_currency("count(*)", "looked_up", sign)},
       {common}
FROM refund_rows GROUP BY {by}, marketplace_id, currency"""
    if not per_order:
        return f"SELECT * FROM ({sums}) AS x({columns}, {_INEXACT})"
    ordered = "ORDER BY pos, amount, lrate, trate"
    return f"""SELECT {", ".join(f"x.{c}" for c in columns.split(", "))}, i.p AS inexact_positions,
       i.a AS inexact_amounts, i.l AS inexact_local_rates, i.t AS inexact_reporting_rates
FROM ({sums}) AS x({columns}, has_inexact)
LEFT JOIN (
    SELECT account_id, amazon_order_id, kind, currency, array_agg(pos {ordered}) AS p,
           array_agg(amount {ordered}) AS a, array_agg(lrate {ordered}) AS l, array_agg(trate {ordered}) AS t
    FROM (SELECT account_id, amazon_order_id, 'order' AS kind, currency, pos, amount, lrate, trate
          FROM order_rows WHERE {inexact}
          UNION ALL
          SELECT account_id, amazon_order_id, 'refund', currency, pos, amount, lrate, trate
          FROM refund_rows WHERE {inexact}) e
    GROUP BY account_id, amazon_order_id, kind, currency
) i ON x.has_inexact AND i.account_id = x.account_id AND i.amazon_order_id = x.amazon_order_id AND i.kind = x.kind
    AND i.currency = x.currency"""


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
CONTRIBUTION_KEY = "account_id, amazon_order_id, kind, currency"
CONTRIBUTION_COLUMNS = _COLUMNS.replace("account_id, day", "account_id, amazon_order_id, day", 1) + f", {_INEXACT}"

# CTEs: new_c, the contributions of the orders in ``o`` as they are now (one row per order and kind), stored in
# order_contributions in place of ``c_old`` (their stored rows, with ``at`` = ctid: the CTE the statement
# names so), whose rows new_c no longer has are deleted (upserted and deleted rows are disjoint).
STORE_CONTRIBUTIONS = f"""new_c AS MATERIALIZED ({_sums("1", per_order=True)}),
c_up AS (
    INSERT INTO order_contributions AS c ({CONTRIBUTION_COLUMNS}) SELECT * FROM new_c ORDER BY {CONTRIBUTION_KEY}
    ON CONFLICT ({CONTRIBUTION_KEY}) DO UPDATE SET {
    ", ".join(f"{c} = EXCLUDED.{c}" for c in CONTRIBUTION_COLUMNS.split(", ") if c not in CONTRIBUTION_KEY.split(", "))
}
),
c_gone AS (
    DELETE FROM order_contributions WHERE ctid = ANY(ARRAY(
        SELECT at FROM c_old x WHERE NOT EXISTS (
            SELECT 1 FROM new_c y WHERE y.account_id = x.account_id AND y.amazon_order_id = x.amazon_order_id
                AND y.kind = x.kind AND y.currency = x.currency)))
)"""

# Inserts the rows of the days $1/$2 (deleted before: DELETE_DAYS_SQL) and adds them to their months and
# look-ups (order_rollup_apply, readmodel/004); the days' orders' contributions stored anew.
REFRESH_SQL = _TEMPLATE.replace("{orders}", _BY_DAYS).replace(
    "{final}",
    f""", c_old AS MATERIALIZED (
    SELECT x.* FROM o CROSS JOIN LATERAL (
        SELECT ctid AS at, account_id, amazon_order_id, kind, currency FROM order_contributions c
        WHERE c.account_id = o.account_id AND c.amazon_order_id = o.amazon_order_id OFFSET 0) x),
{STORE_CONTRIBUTIONS},
ins AS (INSERT INTO order_day_summaries AS s ({_COLUMN_LIST})
{_sums("1")}
RETURNING s)
SELECT order_rollup_apply('{{}}'::order_day_summaries[], coalesce(array_agg(ins.s), '{{}}')) FROM ins""",
)

# Deletes the rows of the days $1/$2 and takes them out of their months and look-ups.
DELETE_DAYS_SQL = """WITH del AS (
    DELETE FROM order_day_summaries s USING unnest($1::uuid[], $2::date[]) AS k(a, d)
    WHERE s.account_id = k.a AND s.day = k.d RETURNING s)
SELECT order_rollup_apply(coalesce(array_agg(del.s), '{}'), '{}'::order_day_summaries[]) FROM del"""
