"""What the listings commands and queries hand upward (typed, never wire dicts or database rows)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from unified_shared.contracts.listings import TargetRule


@dataclass(frozen=True, slots=True)
class OfferRecorded:
    """What recording an own offer did: stored or unchanged, and how many linked targets moved."""

    sku: str
    marketplace_id: str
    outcome: str  # "recorded" or "unchanged"
    targets_repriced: int
    targets_stopped: int


@dataclass(frozen=True, slots=True)
class LinkSaved:
    """What saving a link did: the targets it priced or stopped, and the link's new version."""

    targets_repriced: int
    targets_stopped: int
    version: int


@dataclass(frozen=True, slots=True)
class Offer:
    """An own or linked offer as stored (a linked one with where its price came from)."""

    sku: str
    marketplace_id: str
    kind: str
    currency: str
    price: Decimal | None
    quantity: int
    status: str
    source_marketplace_id: str | None
    source_price: Decimal | None
    fx_rate: Decimal | None
    fx_rate_date: dt.date | None
    clamped: bool | None
    stop_reason: str | None
    rule: Any
    version: int


@dataclass(frozen=True, slots=True)
class Link:
    """A link as the API shows it: its source, its targets' rules and its version."""

    source_marketplace_id: str
    sku: str
    targets: tuple[TargetRule, ...]
    version: int


@dataclass(frozen=True, slots=True)
class OfferEvent:
    """One event of an offer's stream (its price history)."""

    event_type: str
    version: int
    payload: dict[str, Any]
