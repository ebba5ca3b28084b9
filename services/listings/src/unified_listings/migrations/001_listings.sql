-- Offers: the seller's own ('own') and those a link prices in a target marketplace ('linked'). The history of
-- each offer is its event stream (stream_id = 'offer:<account>:<marketplace>:<sku>', version kept here).
CREATE TABLE offers (
    account_id            UUID NOT NULL,
    sku                   TEXT NOT NULL,
    marketplace_id        TEXT NOT NULL,
    kind                  TEXT NOT NULL CHECK (kind IN ('own', 'linked')),
    currency              TEXT NOT NULL,
    price                 NUMERIC CHECK (price > 0),
    quantity              INT NOT NULL DEFAULT 0 CHECK (quantity >= 0),
    status                TEXT NOT NULL CHECK (status IN ('Active', 'Inactive', 'Stopped')),
    source_marketplace_id TEXT,
    source_price          NUMERIC,
    fx_rate               NUMERIC,
    fx_rate_date          DATE,
    rule                  JSONB,
    clamped               TEXT,
    stop_reason           TEXT,
    version               INT NOT NULL,
    updated_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, marketplace_id, sku)
);
CREATE INDEX offers_by_sku ON offers (account_id, sku);

-- International links: source marketplace -> targets with one rule each, for one SKU or all ('*').
CREATE TABLE links (
    account_id            UUID NOT NULL,
    source_marketplace_id TEXT NOT NULL,
    sku                   TEXT NOT NULL,
    targets               JSONB NOT NULL,
    version               INT NOT NULL,
    updated_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, source_marketplace_id, sku)
);

-- FX publications as consumed (units per EUR); the latest date (highest revision) prices the offers.
CREATE TABLE fx_publications (
    date     DATE NOT NULL,
    revision INT NOT NULL,
    rates    JSONB NOT NULL,
    source   TEXT NOT NULL,
    PRIMARY KEY (date, revision)
);
