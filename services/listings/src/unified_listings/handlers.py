"""Listings commands (own offers, international links) and the consumer handler (participations, FX days).

Every command and every consumed event that can move a target price ends in ``repricing.reprice`` for the
accounts concerned, in the same transaction: offers, their events and the outbox commit together.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal

import asyncpg

from unified_listings import repricing, store
from unified_listings.domain import SourceOffer
from unified_listings.results import Link, LinkSaved, Offer, OfferEvent, OfferRecorded
from unified_shared import eventstore
from unified_shared.auth import Principal
from unified_shared.catalog import by_id
from unified_shared.clock import Clock, system_clock
from unified_shared.consumer import ReceivedEvent
from unified_shared.contracts.listings import InternationalLinkSet, OfferUpserted, TargetRule
from unified_shared.contracts.regions import FxRatesPublished
from unified_shared.errors import Conflict, Invalid, NotFound
from unified_shared.participations import apply_subscription_event, participations

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
    def __init__(
        self, pool: Callable[[], asyncpg.Pool], notify: Callable[[], None], *, clock: Clock = system_clock
    ) -> None:
        self._pool = pool
        self._notify = notify
        self.clock = clock

    async def upsert_offer(self, principal: Principal, offer: OfferInput) -> OfferRecorded:
        """Record the seller's own offer; the targets linked to it follow in the same transaction."""
        principal.require("listings")
        principal.require_marketplace(offer.marketplace_id)
        now = self.clock()
        currency = by_id(offer.marketplace_id).currency
        async with self._pool().acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", eventstore.APPEND_LOCK)
            row = await store.get_offer(conn, principal.account_id, offer.marketplace_id, offer.sku, for_update=True)
            if row is not None and row["kind"] == "linked" and row["status"] != "Stopped":
                raise Conflict(
                    "marketplace_id",
                    f"{offer.sku} in {by_id(offer.marketplace_id).code} is priced by the link from"
                    f" {by_id(row['source_marketplace_id']).code}: set a manual price in that link's rule",
                )
            version = row["version"] if row is not None else 0
            unchanged = (
                row is not None
                and row["kind"] == "own"
                and (row["price"], row["quantity"], row["status"]) == (offer.price, offer.quantity, offer.status)
            )
            outcome = None
            if not unchanged:
                source = SourceOffer(
                    principal.account_id,
                    offer.sku,
                    offer.marketplace_id,
                    currency,
                    offer.price,
                    offer.quantity,
                    offer.status,
                )
                event = OfferUpserted(**dataclasses.asdict(source), at=now)  # the offer's fields are the event's
                stream = store.offer_stream(principal.account_id, offer.marketplace_id, offer.sku)
                await eventstore.append(conn, stream, version, [event], occurred_at=now)
                await store.save_own_offer(conn, principal.account_id, source, version + 1)
                outcome = await repricing.reprice(conn, [principal.account_id], "source_price", now=now)
        self._notify()
        return OfferRecorded(
            sku=offer.sku,
            marketplace_id=offer.marketplace_id,
            outcome="unchanged" if unchanged else "recorded",
            targets_repriced=outcome.priced if outcome else 0,
            targets_stopped=outcome.stopped if outcome else 0,
        )

    async def set_link(self, principal: Principal, link: LinkInput) -> LinkSaved:
        """Replace the link of (source, SKU or '*'); every target must be open with active listings."""
        principal.require("listings")
        for marketplace_id in (link.source_marketplace_id, *(t.marketplace_id for t in link.targets)):
            principal.require_marketplace(marketplace_id)
        now = self.clock()
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
                    raise Invalid(
                        f"targets[{n}].marketplace_id",
                        f"target {code} ({target.marketplace_id}) is {state}: a target must be a marketplace the"
                        " account participates in with active listings",
                        title="Invalid link",
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
        return LinkSaved(targets_repriced=outcome.priced, targets_stopped=outcome.stopped, version=version + 1)

    async def offers(self, principal: Principal, marketplace_ids: list[str] | None, sku: str | None) -> list[Offer]:
        principal.require("listings")
        async with self._pool().acquire() as conn:
            rows = await store.list_offers(conn, principal.account_id, marketplace_ids, sku)
        return [offer_of(r) for r in rows if principal.covers(r["marketplace_id"])]

    async def links(self, principal: Principal) -> list[Link]:
        principal.require("listings")
        async with self._pool().acquire() as conn:
            found = await store.links(conn, [principal.account_id])
        return [
            Link(
                source_marketplace_id=link.source_marketplace_id,
                sku=link.sku,
                targets=tuple(t for t in link.targets if principal.covers(t.marketplace_id)),
                version=link.version,
            )
            for link in found
            if principal.covers(link.source_marketplace_id)
        ]

    async def history(self, principal: Principal, marketplace_id: str, sku: str) -> list[OfferEvent]:
        """The offer's event stream: its price history."""
        principal.require("listings")
        if not principal.covers(marketplace_id):
            raise NotFound("sku", f"no offer {sku} in {marketplace_id}")
        async with self._pool().acquire() as conn:
            stored = await eventstore.read_stream(conn, store.offer_stream(principal.account_id, marketplace_id, sku))
        if not stored:
            raise NotFound("sku", f"no offer {sku} in {marketplace_id}")
        return [OfferEvent(s.event_type, s.version, s.payload) for s in stored]


def offer_of(row: asyncpg.Record) -> Offer:
    return Offer(**{name: row[name] for name in Offer.__dataclass_fields__})


def event_handler(clock: Clock = system_clock) -> Callable[[asyncpg.Connection, ReceivedEvent], Awaitable[None]]:
    """The consumer's handler, re-pricing at ``clock``'s time."""

    async def apply_event(conn: asyncpg.Connection, received: ReceivedEvent) -> None:
        """Participations and FX days; each re-prices what it affects, in this transaction."""
        event = received.event
        if isinstance(event, FxRatesPublished):
            if await store.record_fx(conn, event.date, event.revision, dict(event.rates), event.source):
                await conn.execute("SELECT pg_advisory_xact_lock($1)", eventstore.APPEND_LOCK)
                outcome = await repricing.reprice(conn, None, "fx", now=clock())
                log.info(
                    "re-priced after FX day", extra={"date": event.date.isoformat(), "published": outcome.published}
                )
            return
        changed = await apply_subscription_event(conn, event)
        if changed is not None:
            await conn.execute("SELECT pg_advisory_xact_lock($1)", eventstore.APPEND_LOCK)
            await repricing.reprice(conn, [changed.account_id], "opened", now=clock())

    return apply_event


apply_event = event_handler()  # at the system's time (tests feed events through it)
