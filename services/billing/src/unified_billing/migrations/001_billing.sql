-- Billing's own tables. Inputs are recorded as facts (never folded destructively), so a late event simply
-- sorts into its timeline and the rule is recomputed from the facts.

-- Accounts as identity announced them: the home marketplace decides the first period's charge.
CREATE TABLE billing_accounts (
    account_id          UUID PRIMARY KEY,
    home_marketplace_id TEXT NOT NULL,
    legal_name          TEXT NOT NULL DEFAULT '',
    registered_at       TIMESTAMPTZ,
    event_id            UUID NOT NULL,
    recorded_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Subscription, listing and participation events per account and marketplace, with their effective time.
CREATE TABLE subscription_facts (
    seq            BIGSERIAL NOT NULL UNIQUE,          -- arrival order, breaks ties of equal effective times
    event_id       UUID PRIMARY KEY,                   -- a replayed event is recorded once
    account_id     UUID NOT NULL,
    marketplace_id TEXT NOT NULL,
    kind           TEXT NOT NULL,
    at             TIMESTAMPTZ NOT NULL,
    recorded_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX subscription_facts_account ON subscription_facts (account_id, at);

-- ECB euro reference rates (units per 1 EUR), every revision of every day; the highest revision counts.
CREATE TABLE fx_publications (
    rate_date   DATE NOT NULL,
    revision    INT NOT NULL,
    source      TEXT NOT NULL,
    event_id    UUID NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (rate_date, revision)
);
CREATE TABLE fx_rates (
    rate_date DATE NOT NULL,
    revision  INT NOT NULL,
    currency  TEXT NOT NULL,
    rate      NUMERIC NOT NULL CHECK (rate > 0),
    derived   TEXT,
    PRIMARY KEY (rate_date, revision, currency),
    FOREIGN KEY (rate_date, revision) REFERENCES fx_publications (rate_date, revision)
);

-- The fee schedule: a change of fee is a new row with its effective date, never an edit.
CREATE TABLE fee_schedule (
    row_id         BIGSERIAL PRIMARY KEY,
    marketplace_id TEXT NOT NULL,
    currency       TEXT NOT NULL,
    fee            NUMERIC NOT NULL CHECK (fee >= 0),
    effective_from DATE NOT NULL,
    note           TEXT NOT NULL DEFAULT '',
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX fee_schedule_lookup ON fee_schedule (marketplace_id, effective_from);
CREATE RULE fee_schedule_no_update AS ON UPDATE TO fee_schedule DO INSTEAD NOTHING;
CREATE RULE fee_schedule_no_delete AS ON DELETE TO fee_schedule DO INSTEAD NOTHING;

-- DESIGN section 3 fees as the first rows.
INSERT INTO fee_schedule (marketplace_id, currency, fee, effective_from, note) VALUES
    ('ATVPDKIKX0DER',  'USD', 39.99, '2000-01-01', 'DESIGN section 3 (Amazon)'),
    ('A2EUQ1WTGCTBG2', 'CAD', 29.99, '2000-01-01', 'DESIGN section 3'),
    ('A1AM78C64UM0Y8', 'MXN', 600,   '2000-01-01', 'DESIGN section 3 (Amazon)'),
    ('A2Q3Y263D00KWC', 'BRL', 19.00, '2000-01-01', 'DESIGN section 3'),
    ('A1F83G8C2ARO7P', 'GBP', 25.00, '2000-01-01', 'DESIGN section 3 (Amazon)'),
    ('A1PA6795UKMFR9', 'EUR', 39.00, '2000-01-01', 'DESIGN section 3 (Amazon)'),
    ('A13V1IB3VIYZZH', 'EUR', 39.00, '2000-01-01', 'DESIGN section 3 (Amazon)'),
    ('APJ6JRA9NG5V4',  'EUR', 39.00, '2000-01-01', 'DESIGN section 3 (Amazon)'),
    ('A1RKKUPIHCS9HS', 'EUR', 39.00, '2000-01-01', 'DESIGN section 3 (Amazon)'),
    ('A1805IZSGTT6HS', 'EUR', 39.00, '2000-01-01', 'DESIGN section 3 (Amazon)'),
    ('AMEN7PMS3EDWL',  'EUR', 39.00, '2000-01-01', 'DESIGN section 3'),
    ('A28R8C7NBKEWEA', 'EUR', 39.00, '2000-01-01', 'DESIGN section 3'),
    ('A2NODRKZP88ZB9', 'SEK', 449.00, '2000-01-01', 'DESIGN section 3'),
    ('A1C3SOZRARQ6R3', 'PLN', 179.00, '2000-01-01', 'DESIGN section 3'),
    ('A33AVAJ2PDY3EV', 'TRY', 99.99, '2000-01-01', 'DESIGN section 3'),
    ('A2VIGQ35RCS4UG', 'AED', 0,     '2000-01-01', 'DESIGN section 3 (Amazon: no fee now)'),
    ('A17E79C6D8DWNP', 'SAR', 0,     '2000-01-01', 'DESIGN section 3'),
    ('A21TJRUUN4KGV',  'INR', 0,     '2000-01-01', 'DESIGN section 3 (Amazon: no fee)'),
    ('A1VC38T7YXB528', 'JPY', 4900,  '2000-01-01', 'DESIGN section 3 (Amazon)'),
    ('A39IBJ37TRP1C6', 'AUD', 49.95, '2000-01-01', 'DESIGN section 3 (Amazon)'),
    ('A19VAU5U5O7RUS', 'SGD', 29.95, '2000-01-01', 'DESIGN section 3');

-- Where each account's period stands: closed (possibly dirty: late events arrived since) or held.
CREATE TABLE billing_periods (
    account_id UUID NOT NULL,
    period     TEXT NOT NULL CHECK (period ~ '^[0-9]{4}-[0-9]{2}$'),
    status     TEXT NOT NULL CHECK (status IN ('closed', 'held')),
    reason     TEXT,
    dirty      BOOLEAN NOT NULL DEFAULT false,
    first_run_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, period)
);
CREATE INDEX billing_periods_pending ON billing_periods (period) WHERE status = 'held' OR dirty;

-- Issued invoices, supplementary invoices and credit notes. Never updated.
CREATE TABLE billing_documents (
    document_id TEXT PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('invoice', 'supplementary', 'credit_note')),
    account_id  UUID NOT NULL,
    period      TEXT NOT NULL,
    currency    TEXT NOT NULL,
    invoice_id  TEXT NOT NULL,
    seq         INT NOT NULL,
    total       NUMERIC NOT NULL,
    discount    NUMERIC NOT NULL,
    reason      TEXT NOT NULL DEFAULT '',
    lines       JSONB NOT NULL,
    issued_at   TIMESTAMPTZ NOT NULL,
    UNIQUE (account_id, period, currency, kind, seq)
);
CREATE INDEX billing_documents_account ON billing_documents (account_id, period, currency);
CREATE RULE billing_documents_no_update AS ON UPDATE TO billing_documents DO INSTEAD NOTHING;
CREATE RULE billing_documents_no_delete AS ON DELETE TO billing_documents DO INSTEAD NOTHING;
