-- Accounts known from identity.accounts.v1 (AccountRegistered): commands for other accounts get 404.
CREATE TABLE accounts (
    account_id          UUID PRIMARY KEY,
    legal_name          TEXT NOT NULL,
    home_marketplace_id TEXT NOT NULL,
    owner_user_id       UUID NOT NULL,
    registered_at       TIMESTAMPTZ NOT NULL,
    known_since         TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Read model of each participation stream (participation-<account>-<marketplace>), written in the same
-- transaction as the stream's events; the event store stays the truth the commands decide on.
CREATE TABLE participations (
    account_id        UUID NOT NULL REFERENCES accounts (account_id),
    marketplace_id    TEXT NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('open', 'suspended', 'closed')),
    subscribed        BOOLEAN NOT NULL,
    listings_active   BOOLEAN NOT NULL,
    suspension_reason TEXT,
    last_at           TIMESTAMPTZ NOT NULL,
    version           INT NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, marketplace_id)
);

-- The latest published revision of each ECB day (stream fx-<date>); rates are decimal strings per 1 EUR.
CREATE TABLE fx_rates (
    rate_date   DATE PRIMARY KEY,
    rates       JSONB NOT NULL,
    derived     JSONB NOT NULL,
    source      TEXT NOT NULL,
    revision    INT NOT NULL CHECK (revision >= 1),
    imported_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
