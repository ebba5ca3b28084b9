-- What a service has learned from regions.subscriptions.v1 about where each account may sell: the
-- participation's status and whether its listings are active. Last event applied wins (one account's events
-- arrive in order: one key, one partition).
CREATE TABLE participations (
    account_id      UUID NOT NULL,
    marketplace_id  TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('open', 'suspended', 'closed')),
    listings_active BOOLEAN NOT NULL DEFAULT false,
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, marketplace_id)
);
