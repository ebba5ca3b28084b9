"""Helpers for the orders tests: SP-API-shaped orders, a running regional instance, events read back."""

from __future__ import annotations

import random
from typing import Any
from uuid import UUID

from unified_shared.testing import SeenRecord, TopicWatcher

DE, FR, UK, US, JP = "A1PA6795UKMFR9", "A13V1IB3VIYZZH", "A1F83G8C2ARO7P", "ATVPDKIKX0DER", "A1VC38T7YXB528"
CURRENCY = {DE: "EUR", FR: "EUR", UK: "GBP", US: "USD", JP: "JPY"}


def order_id() -> str:
    return f"{random.randint(100, 999)}-{random.randint(0, 9999999):07d}-{random.randint(0, 9999999):07d}"


def order(
    oid: str | None = None,
    *,
    marketplace: str = DE,
    status: str = "Unshipped",
    purchased: str = "2026-09-01T10:00:00Z",
    updated: str = "2026-09-01T10:05:00Z",
    amount: str = "19.99",
    currency: str | None = None,
    channel: str = "MFN",
    shipped: int = 0,
    unshipped: int = 2,
) -> dict[str, Any]:
    return {
        "AmazonOrderId": oid or order_id(),
        "PurchaseDate": purchased,
        "LastUpdateDate": updated,
        "OrderStatus": status,
        "FulfillmentChannel": channel,
        "OrderTotal": {"CurrencyCode": currency or CURRENCY[marketplace], "Amount": amount},
        "NumberOfItemsShipped": shipped,
        "NumberOfItemsUnshipped": unshipped,
        "MarketplaceId": marketplace,
    }


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def events_until_marker(watcher: TopicWatcher, account: UUID, marker_order_id: str) -> list[SeenRecord]:
    """Every event of ``account`` published before the marker's first event (see ``TopicWatcher.before_marker``)."""
    return await watcher.before_marker(str(account), "amazon_order_id", marker_order_id)
