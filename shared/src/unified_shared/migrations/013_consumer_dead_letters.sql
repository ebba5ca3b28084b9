-- Dead letters are an outbox: recorded in the batch transaction that gave up on the record, sent to the DLQ
-- topic after the commit (and again after a crash until marked sent). Keyed by a scope (a service's consumer
-- family: every generation of a rebuildable view shares one) and the record's identity, so a replay or a
-- rebuild never dead-letters the same record twice.
CREATE TABLE consumer_dead_letters (
    scope         TEXT NOT NULL,
    record_key    UUID NOT NULL,
    consumer      TEXT NOT NULL,
    topic         TEXT NOT NULL,
    partition     INT NOT NULL,
    "offset"      BIGINT NOT NULL,
    event_id      TEXT,
    reason        TEXT NOT NULL,
    kafka_key     BYTEA,
    kafka_value   BYTEA,
    header_keys   TEXT[] NOT NULL,
    header_values BYTEA[] NOT NULL,
    recorded_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at       TIMESTAMPTZ,
    PRIMARY KEY (scope, record_key)
);
CREATE INDEX consumer_dead_letters_unsent ON consumer_dead_letters (scope) WHERE sent_at IS NULL;
