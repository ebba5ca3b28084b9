"""getOrders parameters and their NextToken: what the first request asked, validated into an ``OrderQuery``.

As in SP-API, a NextToken carries the filters of the first request plus the keyset position; it is opaque to
clients (``unified_shared.cursors``) and refused with 422 on ``NextToken`` when it is not one of ours.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from unified_orders.domain import STATUSES, parse_time
from unified_orders.store import OrderQuery, SortKey
from unified_shared.bounds import check_query_instant
from unified_shared.cursors import decode_cursor, encode_cursor, key_json, parse_key
from unified_shared.errors import Invalid

MAX_PAGE = 100


@dataclass(frozen=True, slots=True)
class OrdersParams:
    """getOrders query parameters as received (strings), validated by ``to_query``."""

    marketplace_ids: list[str]
    created_after: str | None = None
    created_before: str | None = None
    last_updated_after: str | None = None
    last_updated_before: str | None = None
    order_statuses: list[str] = field(default_factory=list)
    max_results: int | None = None
    next_token: str | None = None

    def to_query(self) -> OrderQuery:
        if self.next_token:
            # As in SP-API: with NextToken the filters of the first request apply.
            return decode_token(self.next_token)
        if not self.marketplace_ids:
            raise Invalid("MarketplaceIds", "MarketplaceIds is required")
        if len(self.marketplace_ids) > 50:
            raise Invalid("MarketplaceIds", "at most 50 MarketplaceIds")
        if (self.created_after is None) == (self.last_updated_after is None):
            raise Invalid("CreatedAfter", "exactly one of CreatedAfter or LastUpdatedAfter is required")
        if self.created_after is None and self.created_before is not None:
            raise Invalid("CreatedBefore", "CreatedBefore needs CreatedAfter")
        if self.last_updated_after is None and self.last_updated_before is not None:
            raise Invalid("LastUpdatedBefore", "LastUpdatedBefore needs LastUpdatedAfter")
        for status in self.order_statuses:
            if status not in STATUSES:
                raise Invalid("OrderStatuses", f"unknown OrderStatuses value {status!r}")
        limit = MAX_PAGE if self.max_results is None else self.max_results
        if not 1 <= limit <= MAX_PAGE:
            raise Invalid("MaxResultsPerPage", f"MaxResultsPerPage must be 1 to {MAX_PAGE}")
        if self.created_after is not None:
            sort: SortKey = "created"
            after = parse_time(self.created_after, "CreatedAfter")
            before = parse_time(self.created_before, "CreatedBefore") if self.created_before else None
        else:
            sort = "updated"
            after = parse_time(self.last_updated_after, "LastUpdatedAfter")
            before = parse_time(self.last_updated_before, "LastUpdatedBefore") if self.last_updated_before else None
        return OrderQuery(self.marketplace_ids, sort, after, before, list(dict.fromkeys(self.order_statuses)), limit)


def encode_token(query: OrderQuery, key: tuple[datetime, str]) -> str:
    """The first request's filters plus the keyset position."""
    return encode_cursor(
        {
            "m": list(query.marketplace_ids),
            "s": query.sort,
            "a": query.after.isoformat(),
            "b": query.before.isoformat() if query.before else None,
            "o": list(query.statuses),
            "n": query.limit,
            "k": key_json(key),
        }
    )


def _query_of(data: dict[str, Any]) -> OrderQuery:
    sort = data["s"]
    if sort not in ("created", "updated"):
        raise ValueError(sort)
    limit = int(data["n"])
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(limit)
    statuses = [str(s) for s in data["o"]]
    if any(s not in STATUSES for s in statuses):
        raise ValueError(statuses)
    return OrderQuery(
        marketplace_ids=[str(m) for m in data["m"]],
        sort=sort,
        after=check_query_instant(datetime.fromisoformat(data["a"])),
        before=check_query_instant(datetime.fromisoformat(data["b"])) if data["b"] else None,
        statuses=statuses,
        limit=limit,
        after_key=parse_key(data["k"]),
    )


def decode_token(token: str) -> OrderQuery:
    return decode_cursor(token, "NextToken", _query_of)


def plus_one(query: OrderQuery) -> OrderQuery:
    """Fetch one more row than the page holds: it tells whether a next page exists."""
    return OrderQuery(
        query.marketplace_ids, query.sort, query.after, query.before, query.statuses, query.limit + 1, query.after_key
    )


def next_token(query: OrderQuery, rows: list[Any]) -> str | None:
    """The NextToken after ``rows`` (fetched with ``plus_one``), or None on the last page."""
    if len(rows) <= query.limit:
        return None
    last = rows[query.limit - 1]
    key_time = last.purchase_date if query.sort == "created" else last.last_update_date
    return encode_token(query, (key_time, last.amazon_order_id))
