-- Current state of each order of this regional instance; its history is its event stream
-- (stream_id = 'order:<account_id>:<amazon_order_id>', version kept here for the next append).
CREATE TABLE orders (
    account_id          UUID NOT NULL,
    amazon_order_id     TEXT NOT NULL,
    marketplace_id      TEXT NOT NULL,
    purchase_date       TIMESTAMPTZ NOT NULL,
    last_update_date    TIMESTAMPTZ NOT NULL,
    order_status        TEXT NOT NULL,
    fulfillment_channel TEXT NOT NULL,
    currency_code       TEXT NOT NULL,
    amount              NUMERIC NOT NULL CHECK (amount >= 0),
    items_shipped       INT NOT NULL CHECK (items_shipped >= 0),
    items_unshipped     INT NOT NULL CHECK (items_unshipped >= 0),
    refunded_amount     NUMERIC NOT NULL DEFAULT 0 CHECK (refunded_amount >= 0 AND refunded_amount <= amount),
    stream_version      INT NOT NULL,
    recorded_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, amazon_order_id)
);

-- Keyset pagination of getOrders: by purchase date (CreatedAfter) or by last update (LastUpdatedAfter).
CREATE INDEX orders_by_created ON orders (account_id, purchase_date, amazon_order_id);
CREATE INDEX orders_by_updated ON orders (account_id, last_update_date, amazon_order_id);

-- Every refund once: refund_id is the caller's RefundId or derived from (RefundedAt, amount).
CREATE TABLE order_refunds (
    account_id      UUID NOT NULL,
    amazon_order_id TEXT NOT NULL,
    refund_id       TEXT NOT NULL,
    currency_code   TEXT NOT NULL,
    amount          NUMERIC NOT NULL CHECK (amount > 0),
    refunded_at     TIMESTAMPTZ NOT NULL,
    recorded_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, amazon_order_id, refund_id),
    FOREIGN KEY (account_id, amazon_order_id) REFERENCES orders (account_id, amazon_order_id)
);
