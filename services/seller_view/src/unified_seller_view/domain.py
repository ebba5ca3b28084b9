"""Pure rules of the unified view: no I/O. Folding participations, the marketplace scope and the opaque keyset
page token. The overview's rules are in ``overview_rules``, the buyer messages' in ``reply_wait_rules``."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from unified_shared import catalog
from unified_shared.bounds import check_line, check_query_instant, cursor_json

# -- participations ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ParticipationChange:
    event_type: str  # the contract NAME, e.g. "ParticipationOpened"
    at: datetime
    sequence: int | None
    event_id: str
    reason: str | None = None


@dataclass(slots=True)
class ParticipationState:
    participation: str = "none"  # none | open | suspended | closed
    subscription: str = "none"  # none | active | ended
    listings: str = "inactive"  # active | inactive
    opened_at: datetime | None = None
    subscribed_since: datetime | None = None
    last_change_at: datetime | None = None
    suspended_reason: str | None = None


def fold_participation(changes: Iterable[ParticipationChange]) -> ParticipationState:
    """Current state from every change in effective-time order (late, backdated events land in place)."""
    state = ParticipationState()
    ordered = sorted(changes, key=lambda c: (c.at, c.sequence if c.sequence is not None else 0, c.event_id))
    for c in ordered:
        kind = c.event_type
        if kind == "ParticipationOpened":
            state.participation = "open"
            state.opened_at = state.opened_at or c.at
            state.suspended_reason = None
        elif kind == "ParticipationSuspended":
            state.participation = "suspended"
            state.suspended_reason = c.reason
        elif kind == "ParticipationReinstated":
            state.participation = "open"
            state.suspended_reason = None
        elif kind == "ParticipationClosed":
            state.participation = "closed"
        elif kind == "SubscriptionStarted":
            if state.subscription != "active":
                state.subscribed_since = c.at
            state.subscription = "active"
        elif kind == "SubscriptionEnded":
            state.subscription = "ended"
        elif kind == "ListingsActivated":
            state.listings = "active"
        elif kind == "ListingsDeactivated":
            state.listings = "inactive"
        state.last_change_at = c.at
    return state


# -- scope ------------------------------------------------------------------------------------------


def normalize_marketplaces(refs: Iterable[str]) -> list[str]:
    """Marketplace IDs from IDs or codes ("UK" and "GB" both mean the UK store); raises UnknownMarketplace."""
    out: list[str] = []
    for ref in refs:
        for part in ref.split(","):
            if part.strip():
                mid = catalog.resolve(part).marketplace_id
                if mid not in out:
                    out.append(mid)
    return out


def visible_marketplaces(scope: Any, requested: Sequence[str] | None = None) -> list[str] | None:
    """Marketplace IDs the caller may see (None = all) narrowed to ``requested`` when given."""
    allowed: list[str] | None
    if scope == "*":
        allowed = None
    else:
        allowed = []
        for ref in scope:
            try:
                allowed.extend(m for m in normalize_marketplaces([ref]) if m not in allowed)
            except catalog.UnknownMarketplace:
                continue  # a scope entry this view does not know covers nothing
    if requested is None:
        return allowed
    if allowed is None:
        return list(requested)
    return [m for m in requested if m in allowed]


# -- page tokens ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrdersQuery:
    """Which orders of an account a page lists (None: no filter), passed whole from the API to the store; a
    page token is tied to it (``filters``) so a token never continues another question's pages."""

    account_id: UUID
    marketplaces: list[str] | None = None
    statuses: list[str] | None = None
    purchased_after: datetime | None = None
    purchased_before: datetime | None = None
    order_ids: list[str] | None = None

    def filters(self, max_results: int) -> dict[str, Any]:
        return {
            "m": self.marketplaces,
            "s": sorted(self.statuses) if self.statuses else None,
            "a": self.purchased_after.isoformat() if self.purchased_after else None,
            "b": self.purchased_before.isoformat() if self.purchased_before else None,
            "o": sorted(self.order_ids) if self.order_ids else None,
            "n": max_results,
        }


class BadPageToken(ValueError):
    pass


def filters_fingerprint(filters: dict[str, Any]) -> str:
    raw = json.dumps(filters, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def encode_page_token(purchase_date: datetime, amazon_order_id: str, filters: dict[str, Any]) -> str:
    """Opaque keyset token: the last row's sort key plus a fingerprint of the filters it belongs to."""
    body = {"d": purchase_date.isoformat(), "o": amazon_order_id, "f": filters_fingerprint(filters)}
    return base64.urlsafe_b64encode(json.dumps(body, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_page_token(token: str, filters: dict[str, Any]) -> tuple[datetime, str]:
    try:
        body = cursor_json(token)  # refuses NaN/Infinity
        when = check_query_instant(datetime.fromisoformat(body["d"]))
        order_id = check_line(str(body["o"]))
        fingerprint = body["f"]
    except (ValueError, KeyError, TypeError, OverflowError) as exc:
        raise BadPageToken("NextToken is not valid") from exc
    if when.tzinfo is None:
        raise BadPageToken("NextToken is not valid")
    if fingerprint != filters_fingerprint(filters):
        raise BadPageToken("NextToken belongs to a request with other filters")
    return when, order_id
