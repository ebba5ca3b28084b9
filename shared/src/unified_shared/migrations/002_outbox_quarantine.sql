-- Event-store rows the outbox relay could not publish after bounded retries ('failed'), and the later rows
-- of the same partition key that wait behind them ('held'): per-key order is a promise to consumers, every
-- other key goes on. An operator repairs a failed row and releases it ('released': the relay tries it again,
-- then the held rows in position order) or gives it up ('skipped': never published, the held rows go on).
-- Published rows leave the table.
CREATE TABLE outbox_quarantine (
    relay          TEXT NOT NULL,
    position       BIGINT NOT NULL,
    partition_key  TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('failed', 'held', 'released', 'skipped')),
    reason         TEXT NOT NULL,
    quarantined_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (relay, position)
);
CREATE INDEX outbox_quarantine_by_key ON outbox_quarantine (relay, partition_key, position);
