-- Commands run side by side: appends no longer serialize. Each row records the transaction that wrote it,
-- and the relay publishes in (txid, position) order, reading only rows of transactions older than every
-- transaction still running (pg_snapshot_xmin): no row can ever appear behind its cursor. Rows written
-- before this migration get txid 0, so they keep their position order and go first.
ALTER TABLE event_store ADD COLUMN txid xid8 NOT NULL DEFAULT '0';
ALTER TABLE event_store ALTER COLUMN txid SET DEFAULT pg_current_xact_id();
CREATE INDEX event_store_by_txid ON event_store (txid, position);
ALTER TABLE outbox_position ADD COLUMN txid xid8 NOT NULL DEFAULT '0';
