-- Each order's status history, one row per order event (placed, status changed, refunded), keyed by the event
-- ID so a replay or a redelivery adds nothing. Kept apart from the orders row (which holds the latest status
-- only); written by order_history.py in the consumer's transaction. A generation built before it gets it
-- from now on (its history starts then; a rebuild fills the past).
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
