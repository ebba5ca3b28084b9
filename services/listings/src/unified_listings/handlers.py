"""Listings commands (own offers, international links) and the consumer handler (participations, FX days).

Every command and every consumed event that can move a target price ends in ``repricing.reprice`` for the
accounts concerned, in the same transaction: offers, their events and the outbox commit together.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg

from unified_listings import repricing, store
from unified_listings.domain import SourceOffer
from unified_shared import eventstore
from unified_shared.auth import Principal
from unified_shared.catalog import by_id
from unified_shared.consumer import ReceivedEvent
from unified_shared.contracts.listings import InternationalLinkSet, OfferUpserted, TargetRule
from unified_shared.contracts.regions import FxRatesPublished
from unified_shared.participations import apply_subscription_event, participations
from unified_shared.problems import Problem

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OfferInput:
    sku: str
    marketplace_id: str
    price: Decimal
    quantity: int
    status: str


@dataclass(frozen=True, slots=True)
class LinkInput:
    source_marketplace_id: str
    sku: str
    targets: list[TargetRule]


class Listings:
    def __init__(self, pool: Callable[[], asyncpg.Pool], notify: Callable[[], None]) -> None:
        self._pool = pool
        self._notify = notify

    async def upsert_offer(self, principal: Principal, offer: OfferInput) -> dict[str, Any]:
        """Record the seller's own offer; the targets linked to it follow in the same transaction."""
        principal.require("listings")
        principal.require_marketplace(offer.marketplace_id)
        now = dt.datetime.now(dt.UTC)
        currency = by_id(offer.marketplace_id).currency
        async with self._pool().acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", eventstore.APPEND_LOCK)
            row = await store.get_offer(conn, principal.account_id, offer.marketplace_id, offer.sku, for_update=True)
            if row is not None and row["kind"] == "linked" and row["status"] != "Stopped":
                raise Problem(
                    409,
                    "Conflict",
                    f"{offer.sku} in {by_id(offer.marketplace_id).code} is priced by the link from"
                    f" {by_id(row['source_marketplace_id']).code}: set a manual price in that link's rule",
                    field="marketplace_id",
                )
            version = row["version"] if row is not None else 0
            unchanged = (
                row is not None
                and row["kind"] == "own"
                and (row["price"], row["quantity"], row["status"]) == (offer.price, offer.quantity, offer.status)
            )
            outcome = None
            if not unchanged:
                event = OfferUpserted(
                    account_id=principal.account_id,
                    sku=offer.sku,
                    marketplace_id=offer.marketplace_id,
                    currency=currency,
                    price=offer.price,
                    quantity=offer.quantity,
                    status=offer.status,  # type: ignore[arg-type]
                    at=now,
                )
                stream = store.offer_stream(principal.account_id, offer.marketplace_id, offer.sku)
                await eventstore.append(conn, stream, version, [event], occurred_at=now)
                source = SourceOffer(
                    principal.account_id,
                    offer.sku,
                    offer.marketplace_id,
                    currency,
                    offer.price,
                    offer.quantity,
                    offer.status,
                )
                await store.save_own_offer(conn, principal.account_id, source, version + 1)
                outcome = await repricing.reprice(conn, [principal.account_id], "source_price", now=now)
        self._notify()
        return {
            "sku": offer.sku,
            "marketplace_id": offer.marketplace_id,
            "outcome": "unchanged" if unchanged else "recorded",
            "targets_repriced": outcome.priced if outcome else 0,
            "targets_stopped": outcome.stopped if outcome else 0,
        }

    async def set_link(self, principal: Principal, link: LinkInput) -> dict[str, Any]:
        """Replace the link of (source, SKU or '*'); every target must be open with active listings."""
        principal.require("listings")
        for marketplace_id in (link.source_marketplace_id, *(t.marketplace_id for t in link.targets)):
            principal.require_marketplace(marketplace_id)
        now = dt.datetime.now(dt.UTC)
        async with self._pool().acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", eventstore.APPEND_LOCK)
            known = await participations(conn, principal.account_id)
            for n, target in enumerate(link.targets):
                p = known.get(target.marketplace_id)
                if p is None or not p.sells:
                    code = by_id(target.marketplace_id).code
                    state = (
                        "not opened" if p is None else (p.status if p.status != "open" else "without active listings")
                    )
                    raise Problem(
                        422,
                        "Invalid link",
                        f"target {code} ({target.marketplace_id}) is {state}: a target must be a marketplace the"
                        " account participates in with active listings",
                        field=f"targets[{n}].marketplace_id",
                        marketplace_id=target.marketplace_id,
                    )
            existing = await store.get_link(conn, principal.account_id, link.source_marketplace_id, link.sku)
            version = existing.version if existing else 0
            event = InternationalLinkSet(
                account_id=principal.account_id,
                sku=link.sku,
                source_marketplace_id=link.source_marketplace_id,
                targets=link.targets,
                at=now,
            )
            stream = store.link_stream(principal.account_id, link.source_marketplace_id, link.sku)
            await eventstore.append(conn, stream, version, [event], occurred_at=now)
            await store.save_link(
                conn, store.Link(principal.account_id, link.source_marketplace_id, link.sku, link.targets, version + 1)
            )
            outcome = await repricing.reprice(conn, [principal.account_id], "rule", now=now)
        self._notify()
        return {"targets_repriced": outcome.priced, "targets_stopped": outcome.stopped, "version": version + 1}

    async def offers(
        self, principal: Principal, marketplace_ids: list[str] | None, sku: str | None
    ) -> list[dict[str, Any]]:
        principal.require("listings")
        async with self._pool().acquire() as conn:
            rows = await store.list_offers(conn, principal.account_id, marketplace_ids, sku)
        return [offer_json(r) for r in rows if principal.covers(r["marketplace_id"])]

    async def links(self, principal: Principal) -> list[dict[str, Any]]:
        principal.require("listings")
        async with self._pool().acquire() as conn:
            found = await store.links(conn, [principal.account_id])
        return [
            {
                "source_marketplace_id": link.source_marketplace_id,
                "sku": link.sku,
                "targets": [t.model_dump(mode="json") for t in link.targets if principal.covers(t.marketplace_id)],
                "version": link.version,
            }
            for link in found
            if principal.covers(link.source_marketplace_id)
        ]

    async def history(self, principal: Principal, marketplace_id: str, sku: str) -> list[dict[str, Any]]:
        """The offer's event stream: its price history."""
        principal.require("listings")
        if not principal.covers(marketplace_id):
            raise Problem(404, "Not found", f"no offer {sku} in {marketplace_id}", field="sku")
        async with self._pool().acquire() as conn:
            stored = await eventstore.read_stream(conn, store.offer_stream(principal.account_id, marketplace_id, sku))
        if not stored:
            raise Problem(404, "Not found", f"no offer {sku} in {marketplace_id}", field="sku")
        return [{"type": s.event_type, "version": s.version, **s.payload} for s in stored]


def offer_json(row: asyncpg.Record) -> dict[str, Any]:
    def text(value: Any) -> str | None:
        return None if value is None else format(value, "f")

    return {
        "sku": row["sku"],
        "marketplace_id": row["marketplace_id"],
        "marketplace": by_id(row["marketplace_id"]).code,
        "kind": row["kind"],
        "currency": row["currency"],
        "price": text(row["price"]),
        "quantity": row["quantity"],
        "status": row["status"],
        "source_marketplace_id": row["source_marketplace_id"],
        "source_price": text(row["source_price"]),
        "fx_rate": text(row["fx_rate"]),
        "fx_rate_date": row["fx_rate_date"].isoformat() if row["fx_rate_date"] else None,
        "clamped": row["clamped"],
        "stop_reason": row["stop_reason"],
        "rule": row["rule"],
        "version": row["version"],
    }


async def apply_event(conn: asyncpg.Connection, received: ReceivedEvent) -> None:
    """Consumer handler: participations and FX days; each re-prices what it affects, in this transaction."""
    event = received.event
    if isinstance(event, FxRatesPublished):
        if await store.record_fx(conn, event.date, event.revision, dict(event.rates), event.source):
            await conn.execute("SELECT pg_advisory_xact_lock($1)", eventstore.APPEND_LOCK)
            outcome = await repricing.reprice(conn, None, "fx")
            log.info("re-priced after FX day", extra={"date": event.date.isoformat(), "published": outcome.published})
        return
    changed = await apply_subscription_event(conn, event)
    if changed is not None:
        await conn.execute("SELECT pg_advisory_xact_lock($1)", eventstore.APPEND_LOCK)
        await repricing.reprice(conn, [changed.account_id], "opened")
