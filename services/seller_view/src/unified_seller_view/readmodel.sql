-- The read model of one generation. Executed with search_path set to the generation's schema.
-- Rows hold only what the events say (no now(), no serials): the same history gives the same bytes.

CREATE TABLE accounts (
    account_id          UUID PRIMARY KEY,
    legal_name          TEXT NOT NULL,
    home_marketplace_id TEXT NOT NULL,
    owner_user_id       UUID NOT NULL,
    owner_email         TEXT NOT NULL,
    registered_at       TIMESTAMPTZ NOT NULL
);

CREATE TABLE members (
    account_id        UUID NOT NULL,
    user_id           UUID NOT NULL,
    email             TEXT,
    role              TEXT NOT NULL,
    permissions       TEXT[] NOT NULL,
    marketplace_scope JSONB NOT NULL,
    changed_at        TIMESTAMPTZ NOT NULL,
    removed_at        TIMESTAMPTZ,
    PRIMARY KEY (account_id, user_id)
);

-- Every participation/subscription/listing event; the current state is a fold of it in effective-time order.
CREATE TABLE participation_events (
    account_id     UUID NOT NULL,
    marketplace_id TEXT NOT NULL,
    event_id       UUID NOT NULL,
    event_type     TEXT NOT NULL,
    at             TIMESTAMPTZ NOT NULL,
    sequence       INT,
    reason         TEXT,
    PRIMARY KEY (account_id, marketplace_id, event_id)
);

CREATE TABLE participations (
    account_id       UUID NOT NULL,
    marketplace_id   TEXT NOT NULL,
    participation    TEXT NOT NULL,
    subscription     TEXT NOT NULL,
    listings         TEXT NOT NULL,
    opened_at        TIMESTAMPTZ,
    subscribed_since TIMESTAMPTZ,
    last_change_at   TIMESTAMPTZ NOT NULL,
    suspended_reason TEXT,
    PRIMARY KEY (account_id, marketplace_id)
);

-- One row per published day (its latest revision) and that revision's rates (units per 1 EUR).
CREATE TABLE fx_days (
    date     DATE PRIMARY KEY,
    revision INT NOT NULL,
    source   TEXT NOT NULL,
    derived  JSONB NOT NULL
);

CREATE TABLE fx_rates (
    currency TEXT NOT NULL,
    date     DATE NOT NULL REFERENCES fx_days (date) ON DELETE CASCADE,
    rate     NUMERIC NOT NULL CHECK (rate > 0),
    PRIMARY KEY (currency, date)
);

CREATE TABLE orders (
    account_id          UUID NOT NULL,
    amazon_order_id     TEXT NOT NULL,
    marketplace_id      TEXT NOT NULL,
    region              TEXT NOT NULL,
    purchase_date       TIMESTAMPTZ NOT NULL,
    last_update_date    TIMESTAMPTZ NOT NULL,
    status              TEXT NOT NULL,
    fulfillment_channel TEXT NOT NULL,
    currency            TEXT NOT NULL,
    amount              NUMERIC NOT NULL,
    number_of_items     INT NOT NULL,
    items_shipped       INT NOT NULL,
    items_unshipped     INT NOT NULL,
    PRIMARY KEY (account_id, amazon_order_id)
);
CREATE INDEX orders_keyset ON orders (account_id, purchase_date DESC, amazon_order_id DESC);

CREATE TABLE order_refunds (
    account_id      UUID NOT NULL,
    event_id        UUID NOT NULL,
    amazon_order_id TEXT NOT NULL,
    currency        TEXT NOT NULL,
    amount          NUMERIC NOT NULL,
    refunded_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (account_id, event_id)
);
CREATE INDEX order_refunds_order ON order_refunds (account_id, amazon_order_id);

-- Status changes and refunds that arrived before their OrderPlaced: applied (and deleted) when it arrives.
CREATE TABLE parked_order_events (
    account_id       UUID NOT NULL,
    event_id         UUID NOT NULL,
    amazon_order_id  TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    last_update_date TIMESTAMPTZ NOT NULL,
    sequence         INT,
    payload          JSONB NOT NULL,
    PRIMARY KEY (account_id, event_id)
);
CREATE INDEX parked_order_events_order ON parked_order_events (account_id, amazon_order_id);

CREATE TABLE threads (
    account_id       UUID NOT NULL,
    thread_id        TEXT NOT NULL,
    marketplace_id   TEXT NOT NULL,
    region           TEXT NOT NULL,
    amazon_order_id  TEXT,
    subject          TEXT NOT NULL,
    first_message_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (account_id, thread_id)
);

CREATE TABLE thread_messages (
    account_id UUID NOT NULL,
    thread_id  TEXT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('buyer', 'seller')),
    message_id TEXT NOT NULL,
    at         TIMESTAMPTZ NOT NULL,
    subject    TEXT,
    body       TEXT NOT NULL,
    PRIMARY KEY (account_id, thread_id, kind, message_id)
);

-- "No response needed" marks, keyed like the messages service keys them (mark:<thread>:<instant in UTC>).
-- With thread_messages they are the thread's whole timeline, from which its waits are recomputed.
CREATE TABLE thread_marks (
    account_id UUID NOT NULL,
    thread_id  TEXT NOT NULL,
    mark_id    TEXT NOT NULL,
    at         TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (account_id, thread_id, mark_id)
);

-- One row per wait for a reply: from the first unanswered buyer message until a reply or a
-- "no response needed" mark. The deadline is 24 h of calendar time after it started. Derived: the rows of a
-- thread are recomputed from its whole timeline (thread_messages + thread_marks) in time order whenever an
-- entry is added, so they do not depend on the order the events arrived in.
CREATE TABLE response_cycles (
    account_id     UUID NOT NULL,
    thread_id      TEXT NOT NULL,
    opened_by      TEXT NOT NULL,
    marketplace_id TEXT NOT NULL,
    started_at     TIMESTAMPTZ NOT NULL,
    deadline       TIMESTAMPTZ NOT NULL,
    closed_at      TIMESTAMPTZ,
    closed_by      TEXT CHECK (closed_by IN ('reply', 'no_response')),
    PRIMARY KEY (account_id, thread_id, opened_by)
);
CREATE INDEX response_cycles_deadline ON response_cycles (account_id, deadline);

CREATE TABLE invoices (
    account_id UUID NOT NULL,
    invoice_id TEXT NOT NULL,
    period     TEXT NOT NULL,
    currency   TEXT NOT NULL,
    kind       TEXT NOT NULL,
    total      NUMERIC NOT NULL,
    discount   NUMERIC NOT NULL,
    issued_at  TIMESTAMPTZ NOT NULL,
    lines      JSONB NOT NULL,
    PRIMARY KEY (account_id, invoice_id)
);

CREATE TABLE credit_notes (
    account_id     UUID NOT NULL,
    credit_note_id TEXT NOT NULL,
    invoice_id     TEXT NOT NULL,
    period         TEXT NOT NULL,
    currency       TEXT NOT NULL,
    reason         TEXT NOT NULL,
    total          NUMERIC NOT NULL,
    issued_at      TIMESTAMPTZ NOT NULL,
    lines          JSONB NOT NULL,
    PRIMARY KEY (account_id, credit_note_id)
);

-- Each order's status history, one row per order event (placed, status changed, refunded), keyed by the event
-- ID so a replay or a redelivery adds nothing. Kept apart from the orders row (which holds the latest status
-- only); written by order_history.py in the consumer's transaction. Migration 003 adds it to generations
-- built before it existed (their history starts then; a rebuild fills the past).
CREATE TABLE order_status_history (
    account_id      UUID NOT NULL,
    event_id        UUID NOT NULL,
    amazon_order_id TEXT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('placed', 'status_changed', 'refunded')),
    at              TIMESTAMPTZ NOT NULL,
    from_status     TEXT,
    to_status       TEXT,
    currency        TEXT,
    amount          NUMERIC,
    sequence        BIGINT,
    PRIMARY KEY (account_id, event_id)
);
CREATE INDEX order_status_history_order ON order_status_history (account_id, amazon_order_id, at);

-- Derived: per (account, purchase day (UTC), kind, marketplace, currency, status) what the overview sums of
-- that day's orders ('order') and of their refunds ('refund', status ''), each order converted and rounded on
-- its own (summaries.py). What depends on the reporting currency is an array, one element per currency of
-- summaries.REPORTING_CURRENCIES in its order: CAD EUR GBP JPY MXN USD (the CHECK ties the two). Recomputed
-- from the day's orders and the rates whenever an order of the day or the rate that decides the day changes,
-- so replays give the same rows.
CREATE TABLE order_day_summaries (
    account_id              UUID NOT NULL,
    day                     DATE NOT NULL,
    kind                    TEXT NOT NULL CHECK (kind IN ('order', 'refund')),
    marketplace_id          TEXT NOT NULL,
    currency                TEXT NOT NULL,
    status                  TEXT NOT NULL,
    n                       BIGINT NOT NULL,
    units                   BIGINT,
    amount                  NUMERIC,
    n_converted             BIGINT[] NOT NULL CHECK (cardinality(n_converted) = 6),
    n_unconverted           BIGINT[] NOT NULL,
    n_rate_lookups          BIGINT[] NOT NULL,
    amount_unconverted      NUMERIC[] NOT NULL,
    reporting_units         NUMERIC[] NOT NULL,
    inexact_positions       INT[],
    inexact_amounts         NUMERIC[],
    inexact_local_rates     NUMERIC[],
    inexact_reporting_rates NUMERIC[],
    PRIMARY KEY (account_id, day, kind, marketplace_id, currency, status)
);
CREATE INDEX order_day_summaries_by_day ON order_day_summaries (day);

-- Derived: each order's contribution to order_day_summaries as last summed (its 'order' row and a 'refund' row
-- per refund currency, with the day rows' columns), so that a batch takes the old sums of the orders it
-- changes from here rather than computing them again (contribution_sql.py); a day's rows are the sums of its
-- orders' contributions. Stored with the day rows, by the same statements.
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

-- Derived from order_day_summaries (kept by the statements that write it: summary_sql.py), so the overview
-- reads months rather than days: per (account, month, kind, marketplace, currency, status) the sums of that
-- month's day rows (arrays in the same reporting-currency order; n_inexact: how many day rows hold an inexact
-- entry of each currency, whose values the read then takes from the day rows). order_day_lookups: per
-- (account, day, marketplace, currency) the days' rate look-ups, which the overview lists per day. Rows whose
-- counts reach 0 are deleted and amounts have their trailing zeros trimmed, so the same history gives the same
-- bytes whatever the batches.
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

-- Adds ``added`` and takes out ``removed`` (day rows as they were) in both derived tables, set-based (called by the
-- statements that recompute days whole; a batch's difference moves them itself, summary_sql.py): one
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

