"""The public event contract: one module per topic. Importing this package registers every event type."""

from unified_shared.contracts import billing, identity, listings, messages, orders, regions

__all__ = ["billing", "identity", "listings", "messages", "orders", "regions"]
