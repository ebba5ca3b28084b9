-- 1. order_contributions (see readmodel.sql) in every generation that has the day summaries. A generation
--    with orders gets its rows from the service at start-up (summaries.fill_contributions: every day
--    recomputed, one transaction per generation), before its consumer runs.
-- 2. order_month_summaries and order_day_lookups are kept by the statements that write order_day_summaries
--    (a batch's difference moves all three in one statement; a recomputed day calls order_rollup_apply), no
--    longer by triggers: the triggers are dropped (their rows stay as they are, exact).
-- New generations get the table, and no triggers, from readmodel.sql.
DO $migration$
DECLARE
    s TEXT;
BEGIN
    FOR s IN SELECT schema_name FROM view_generations
             WHERE to_regclass(quote_ident(schema_name) || '.order_day_summaries') IS NOT NULL
    LOOP
        EXECUTE format($ddl$
            CREATE TABLE IF NOT EXISTS %I.order_contributions (
                account_id              UUID NOT NULL,
                amazon_order_id         TEXT NOT NULL,
                day                     DATE NOT NULL,
                kind                    TEXT NOT NULL,
                marketplace_id          TEXT NOT NULL,
                currency                TEXT NOT NULL,
                status                  TEXT NOT NULL,
                n                       BIGINT NOT NULL,
                units                   BIGINT,
                amount                  NUMERIC,
                n_unconverted           BIGINT[] NOT NULL,
                amount_unconverted      NUMERIC[] NOT NULL,
                n_rate_lookups          BIGINT[] NOT NULL,
                n_converted             BIGINT[] NOT NULL,
                reporting_units         NUMERIC[] NOT NULL,
                inexact_positions       INT[],
                inexact_amounts         NUMERIC[],
                inexact_local_rates     NUMERIC[],
                inexact_reporting_rates NUMERIC[],
                PRIMARY KEY (account_id, amazon_order_id, kind, currency)
            )$ddl$, s);
        EXECUTE format('DROP FUNCTION IF EXISTS %I.order_day_summaries_rollup() CASCADE', s);
        EXECUTE format('DROP FUNCTION IF EXISTS %I.order_day_summaries_truncated() CASCADE', s);
    END LOOP;
END
$migration$;
