-- Which update an order row reflects, beyond its last_update_date: the envelope sequence and event ID of the
-- newest order event applied to it. Order events of one order are totally ordered by (last_update_date,
-- sequence, event_id) (order_versions.py); a tied event that comes later but ranks lower no longer overwrites.
-- Nullable: rows written before this step rank below any event of the same last_update_date.
ALTER TABLE orders ADD COLUMN version_sequence BIGINT, ADD COLUMN version_event_id UUID;
