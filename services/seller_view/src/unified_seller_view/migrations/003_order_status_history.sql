-- order_status_history (see readmodel.sql) in every generation built before it existed: new generations get
-- it from readmodel.sql. An older generation records history from now on; `rebuild` fills its past.
DO $$
DECLARE
    s TEXT;
BEGIN
    FOR s IN SELECT schema_name FROM view_generations
             WHERE EXISTS (SELECT 1 FROM information_schema.schemata WHERE schema_name = view_generations.schema_name)
    LOOP
        EXECUTE format($f$
            CREATE TABLE IF NOT EXISTS %I.order_status_history (
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
            )$f$, s);
        EXECUTE format(
            'CREATE INDEX IF NOT EXISTS order_status_history_order ON %I.order_status_history (account_id, amazon_order_id, at)',
            s);
    END LOOP;
END
$$;
