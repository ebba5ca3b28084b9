-- The version of each group of an order's fields (order_versions.GROUPS): the event that set the group last.
-- An event sets a group only when newer than it, so each group ends at its newest setter whatever the
-- arrival order (a snapshot after a newer change still sets its own fields; an older change's item counts
-- still count after a newer change that carries none). NULL (rows from before this step, or written without
-- them): the group is at the row's version, what the row reflected then; no rewrite of existing rows.
ALTER TABLE orders
    ADD COLUMN snapshot_at TIMESTAMPTZ, ADD COLUMN snapshot_sequence BIGINT, ADD COLUMN snapshot_event_id UUID,
    ADD COLUMN status_at TIMESTAMPTZ, ADD COLUMN status_sequence BIGINT, ADD COLUMN status_event_id UUID,
    ADD COLUMN shipped_at TIMESTAMPTZ, ADD COLUMN shipped_sequence BIGINT, ADD COLUMN shipped_event_id UUID,
    ADD COLUMN unshipped_at TIMESTAMPTZ, ADD COLUMN unshipped_sequence BIGINT, ADD COLUMN unshipped_event_id UUID;
