-- The event store of the service: append-only, and at the same time its transactional outbox.
-- unique (stream_id, version) gives optimistic concurrency; position order equals commit order because
-- appends take a transaction-scoped advisory lock before they draw a position (see eventstore.py).
CREATE TABLE event_store (
    position     BIGSERIAL PRIMARY KEY,
    event_id     UUID NOT NULL UNIQUE,
    stream_id    TEXT NOT NULL,
    version      INT NOT NULL CHECK (version >= 1),
    event_type   TEXT NOT NULL,
    topic        TEXT NOT NULL,
    partition_key TEXT NOT NULL,
    payload      JSONB NOT NULL,
    occurred_at  TIMESTAMPTZ NOT NULL,
    recorded_at  TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    traceparent  TEXT,
    UNIQUE (stream_id, version)
);

-- Where each outbox relay has got to: the last position it published (and saw acknowledged).
CREATE TABLE outbox_position (
    relay        TEXT PRIMARY KEY,
    position     BIGINT NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Idempotent consumers: every applied (or dead-lettered) event ID, and the Kafka offsets, written in the
-- same transaction as the consumer's own change.
CREATE TABLE consumer_processed_events (
    consumer     TEXT NOT NULL,
    event_id     UUID NOT NULL,
    outcome      TEXT NOT NULL,
    processed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

CREATE TABLE consumer_offsets (
    consumer     TEXT NOT NULL,
    topic        TEXT NOT NULL,
    partition    INT NOT NULL,
    next_offset  BIGINT NOT NULL,
    last_event_time TIMESTAMPTZ,
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, topic, partition)
);
