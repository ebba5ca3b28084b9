"""SQL migrations of the orders service (applied after the shared event-store tables)."""
