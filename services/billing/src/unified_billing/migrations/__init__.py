"""SQL migrations of the billing service (applied in order by unified_shared.db.apply_migrations)."""
