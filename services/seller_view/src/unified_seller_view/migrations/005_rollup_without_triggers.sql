-- order_month_summaries and order_day_lookups are kept by the statements that write order_day_summaries (a
-- batch's difference moves all three in one statement; a recomputed day calls order_rollup_apply), no longer by
-- triggers: the triggers of every generation that has them are dropped (their rows stay as they are, exact).
-- New generations get no triggers from readmodel.sql.
DO $migration$
DECLARE
    s TEXT;
BEGIN
    FOR s IN SELECT schema_name FROM view_generations
             WHERE to_regclass(quote_ident(schema_name) || '.order_day_summaries') IS NOT NULL
    LOOP
        EXECUTE format('DROP FUNCTION IF EXISTS %I.order_day_summaries_rollup() CASCADE', s);
        EXECUTE format('DROP FUNCTION IF EXISTS %I.order_day_summaries_truncated() CASCADE', s);
    END LOOP;
END
$migration$;
