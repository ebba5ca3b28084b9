-- The read model of one generation: this file and the later numbered files of this folder, applied in order
-- with search_path set to the generation's schema (generations.py). A new generation gets them all; an
-- existing one gets those it has not had yet. A change of the read model is a new numbered file here.
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
