-- Derived from order_day_summaries (kept by triggers on it, below), so the overview reads months rather than
-- days: per (account, month, kind, marketplace, currency, status) the sums of that month's day rows (arrays
-- in the same reporting-currency order; n_inexact: how many day rows hold an inexact entry of each currency,
-- whose values the read then takes from the day rows). order_day_lookups: per (account, day, marketplace,
-- currency) the days' rate look-ups, which the overview lists per day. Rows whose counts reach 0 are deleted
-- and amounts have their trailing zeros trimmed, so the same history gives the same bytes whatever the batches.
CREATE TABLE order_month_summaries (
    account_id         UUID NOT NULL,
    month              DATE NOT NULL,
    kind               TEXT NOT NULL,
    marketplace_id     TEXT NOT NULL,
    currency           TEXT NOT NULL,
    status             TEXT NOT NULL,
    n                  BIGINT NOT NULL,
    units              BIGINT,
    amount             NUMERIC,
    n_converted        BIGINT[] NOT NULL,
    n_unconverted      BIGINT[] NOT NULL,
    amount_unconverted NUMERIC[] NOT NULL,
    reporting_units    NUMERIC[] NOT NULL,
    n_inexact          BIGINT[] NOT NULL,
    PRIMARY KEY (account_id, month, kind, marketplace_id, currency, status)
);

CREATE TABLE order_day_lookups (
    account_id     UUID NOT NULL,
    day            DATE NOT NULL,
    marketplace_id TEXT NOT NULL,
    currency       TEXT NOT NULL,
    n_rate_lookups BIGINT[] NOT NULL,
    PRIMARY KEY (account_id, day, marketplace_id, currency)
);

-- Adds ``added`` and takes out ``removed`` (day rows as they were) in both derived tables, set-based: one
-- statement per table whatever the number of rows, so its cost follows the rows the statement changed.
-- (anyarray: a function typed by the table's row type would keep the table from being dropped alone. Its own
-- planner settings: it runs inside statements that turn nested loops off, which here would scan whole tables.)
CREATE FUNCTION order_rollup_apply(removed anyarray, added anyarray) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT SET enable_nestloop = on SET enable_mergejoin = on SET jit = off AS $$
BEGIN
INSERT INTO order_month_summaries AS m
SELECT account_id, date_trunc('month', day)::date, kind, marketplace_id, currency, status,
       sum(sign * n)::bigint, sum(sign * units)::bigint, trim_scale(sum(sign * amount)),
       ARRAY[sum(sign * n_converted[1])::bigint, sum(sign * n_converted[2])::bigint,
             sum(sign * n_converted[3])::bigint, sum(sign * n_converted[4])::bigint,
             sum(sign * n_converted[5])::bigint, sum(sign * n_converted[6])::bigint],
       ARRAY[sum(sign * n_unconverted[1])::bigint, sum(sign * n_unconverted[2])::bigint,
             sum(sign * n_unconverted[3])::bigint, sum(sign * n_unconverted[4])::bigint,
             sum(sign * n_unconverted[5])::bigint, sum(sign * n_unconverted[6])::bigint],
       ARRAY[trim_scale(sum(sign * amount_unconverted[1])), trim_scale(sum(sign * amount_unconverted[2])),
             trim_scale(sum(sign * amount_unconverted[3])), trim_scale(sum(sign * amount_unconverted[4])),
             trim_scale(sum(sign * amount_unconverted[5])), trim_scale(sum(sign * amount_unconverted[6]))],
       ARRAY[trim_scale(sum(sign * reporting_units[1])), trim_scale(sum(sign * reporting_units[2])),
             trim_scale(sum(sign * reporting_units[3])), trim_scale(sum(sign * reporting_units[4])),
             trim_scale(sum(sign * reporting_units[5])), trim_scale(sum(sign * reporting_units[6]))],
       ARRAY[coalesce(sum(sign) FILTER (WHERE 1 = ANY(inexact_positions)), 0)::bigint,
             coalesce(sum(sign) FILTER (WHERE 2 = ANY(inexact_positions)), 0)::bigint,
             coalesce(sum(sign) FILTER (WHERE 3 = ANY(inexact_positions)), 0)::bigint,
             coalesce(sum(sign) FILTER (WHERE 4 = ANY(inexact_positions)), 0)::bigint,
             coalesce(sum(sign) FILTER (WHERE 5 = ANY(inexact_positions)), 0)::bigint,
             coalesce(sum(sign) FILTER (WHERE 6 = ANY(inexact_positions)), 0)::bigint]
FROM (SELECT -1 AS sign, * FROM unnest(removed) UNION ALL SELECT 1, * FROM unnest(added)) c
GROUP BY account_id, date_trunc('month', day)::date, kind, marketplace_id, currency, status
ORDER BY 1, 2, 3, 4, 5, 6
ON CONFLICT (account_id, month, kind, marketplace_id, currency, status) DO UPDATE SET
    n = m.n + EXCLUDED.n, units = m.units + EXCLUDED.units, amount = trim_scale(m.amount + EXCLUDED.amount),
    n_converted = ARRAY[m.n_converted[1] + EXCLUDED.n_converted[1], m.n_converted[2] + EXCLUDED.n_converted[2],
                        m.n_converted[3] + EXCLUDED.n_converted[3], m.n_converted[4] + EXCLUDED.n_converted[4],
                        m.n_converted[5] + EXCLUDED.n_converted[5], m.n_converted[6] + EXCLUDED.n_converted[6]],
    n_unconverted = ARRAY[m.n_unconverted[1] + EXCLUDED.n_unconverted[1], m.n_unconverted[2] + EXCLUDED.n_unconverted[2],
                          m.n_unconverted[3] + EXCLUDED.n_unconverted[3], m.n_unconverted[4] + EXCLUDED.n_unconverted[4],
                          m.n_unconverted[5] + EXCLUDED.n_unconverted[5], m.n_unconverted[6] + EXCLUDED.n_unconverted[6]],
    amount_unconverted = ARRAY[trim_scale(m.amount_unconverted[1] + EXCLUDED.amount_unconverted[1]),
                               trim_scale(m.amount_unconverted[2] + EXCLUDED.amount_unconverted[2]),
                               trim_scale(m.amount_unconverted[3] + EXCLUDED.amount_unconverted[3]),
                               trim_scale(m.amount_unconverted[4] + EXCLUDED.amount_unconverted[4]),
                               trim_scale(m.amount_unconverted[5] + EXCLUDED.amount_unconverted[5]),
                               trim_scale(m.amount_unconverted[6] + EXCLUDED.amount_unconverted[6])],
    reporting_units = ARRAY[trim_scale(m.reporting_units[1] + EXCLUDED.reporting_units[1]),
                            trim_scale(m.reporting_units[2] + EXCLUDED.reporting_units[2]),
                            trim_scale(m.reporting_units[3] + EXCLUDED.reporting_units[3]),
                            trim_scale(m.reporting_units[4] + EXCLUDED.reporting_units[4]),
                            trim_scale(m.reporting_units[5] + EXCLUDED.reporting_units[5]),
                            trim_scale(m.reporting_units[6] + EXCLUDED.reporting_units[6])],
    n_inexact = ARRAY[m.n_inexact[1] + EXCLUDED.n_inexact[1], m.n_inexact[2] + EXCLUDED.n_inexact[2],
                      m.n_inexact[3] + EXCLUDED.n_inexact[3], m.n_inexact[4] + EXCLUDED.n_inexact[4],
                      m.n_inexact[5] + EXCLUDED.n_inexact[5], m.n_inexact[6] + EXCLUDED.n_inexact[6]];
DELETE FROM order_month_summaries m
USING (SELECT DISTINCT account_id, date_trunc('month', day)::date AS month
       FROM (SELECT account_id, day FROM unnest(removed) UNION ALL SELECT account_id, day FROM unnest(added)) c) k
WHERE m.account_id = k.account_id AND m.month = k.month AND m.n = 0;
INSERT INTO order_day_lookups AS l
SELECT account_id, day, marketplace_id, currency,
       ARRAY[sum(sign * n_rate_lookups[1])::bigint, sum(sign * n_rate_lookups[2])::bigint,
             sum(sign * n_rate_lookups[3])::bigint, sum(sign * n_rate_lookups[4])::bigint,
             sum(sign * n_rate_lookups[5])::bigint, sum(sign * n_rate_lookups[6])::bigint]
FROM (SELECT -1 AS sign, * FROM unnest(removed) UNION ALL SELECT 1, * FROM unnest(added)) c
GROUP BY account_id, day, marketplace_id, currency
ORDER BY 1, 2, 3, 4
ON CONFLICT (account_id, day, marketplace_id, currency) DO UPDATE SET
    n_rate_lookups = ARRAY[l.n_rate_lookups[1] + EXCLUDED.n_rate_lookups[1], l.n_rate_lookups[2] + EXCLUDED.n_rate_lookups[2],
                           l.n_rate_lookups[3] + EXCLUDED.n_rate_lookups[3], l.n_rate_lookups[4] + EXCLUDED.n_rate_lookups[4],
                           l.n_rate_lookups[5] + EXCLUDED.n_rate_lookups[5], l.n_rate_lookups[6] + EXCLUDED.n_rate_lookups[6]];
DELETE FROM order_day_lookups l
USING (SELECT DISTINCT account_id, day
       FROM (SELECT account_id, day FROM unnest(removed) UNION ALL SELECT account_id, day FROM unnest(added)) c) k
WHERE l.account_id = k.account_id AND l.day = k.day AND l.n_rate_lookups = '{0,0,0,0,0,0}';
END
$$;

CREATE FUNCTION order_day_summaries_rollup() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    removed order_day_summaries[];
    added order_day_summaries[];
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        removed := ARRAY(SELECT o FROM old_rows o);
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        added := ARRAY(SELECT r FROM new_rows r);
    END IF;
    IF cardinality(removed) > 0 OR cardinality(added) > 0 THEN
        PERFORM order_rollup_apply(coalesce(removed, '{}'), coalesce(added, '{}'));
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER order_day_summaries_rollup_insert AFTER INSERT ON order_day_summaries
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION order_day_summaries_rollup();
CREATE TRIGGER order_day_summaries_rollup_update AFTER UPDATE ON order_day_summaries
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION order_day_summaries_rollup();
CREATE TRIGGER order_day_summaries_rollup_delete AFTER DELETE ON order_day_summaries
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION order_day_summaries_rollup();
CREATE FUNCTION order_day_summaries_truncated() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    TRUNCATE order_month_summaries, order_day_lookups;
    RETURN NULL;
END
$$;
CREATE TRIGGER order_day_summaries_rollup_truncate AFTER TRUNCATE ON order_day_summaries
    FOR EACH STATEMENT EXECUTE FUNCTION order_day_summaries_truncated();

-- A generation built before these tables gets them filled from its day rows, one account at a time (a new
-- generation has none yet).
DO $$
DECLARE
    a UUID;
BEGIN
    FOR a IN SELECT DISTINCT account_id FROM order_day_summaries LOOP
        PERFORM order_rollup_apply('{}', ARRAY(SELECT d FROM order_day_summaries d WHERE d.account_id = a));
    END LOOP;
END
$$;
