-- Derived: each order's contribution to order_day_summaries as last summed (its 'order' row and a 'refund' row
-- per refund currency, with the day rows' columns), so that a batch takes the old sums of the orders it
-- changes from here rather than computing them again (contribution_sql.py); a day's rows are the sums of its
-- orders' contributions. Stored with the day rows, by the same statements. A generation that had orders before
-- this step gets its rows at start-up (summaries.fill_contributions: every day recomputed once).
CREATE TABLE order_contributions (
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
);

-- order_month_summaries and order_day_lookups (step 004) are kept by the statements that write
-- order_day_summaries from now on (a batch's difference moves all three in one statement; a day recomputed whole
-- calls order_rollup_apply), no longer by triggers: dropped (the rows they kept stay as they are, exact).
DROP FUNCTION IF EXISTS order_day_summaries_rollup() CASCADE;
DROP FUNCTION IF EXISTS order_day_summaries_truncated() CASCADE;
