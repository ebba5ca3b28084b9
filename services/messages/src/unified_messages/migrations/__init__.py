"""SQL migrations of the messages service (applied after the shared event-store tables)."""
