"""The public event contract: one module per topic. Importing this package registers every event type."""

from unified_shared.contracts import billing, identity, messages, orders, regions

__all__ = ["billing", "identity", "messages", "orders", "regions"]
