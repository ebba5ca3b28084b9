-- The read model lives in a PostgreSQL schema per generation (view_1, view_2, ...), each filled by its own
-- consumer name (its own offsets and processed event IDs in the shared consumer tables). The API reads the
-- generation named by view_pointer on every request; a rebuild fills a new generation and then moves the
-- pointer in one transaction, so readers switch atomically and never see a half-built view.
CREATE TABLE view_generations (
    generation    INT PRIMARY KEY,
    schema_name   TEXT NOT NULL UNIQUE,
    consumer_name TEXT NOT NULL UNIQUE,
    state         TEXT NOT NULL CHECK (state IN ('building', 'live', 'retired', 'failed')),
    -- Where this view's history begins: {"topic": {"partition": offset}}; {} means each topic's log start.
    origin        JSONB NOT NULL DEFAULT '{}'::jsonb,
    ddl_checksum  TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    switched_at   TIMESTAMPTZ
);

CREATE TABLE view_pointer (
    singleton   BOOLEAN PRIMARY KEY DEFAULT true CHECK (singleton),
    generation  INT NOT NULL REFERENCES view_generations (generation),
    switched_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
