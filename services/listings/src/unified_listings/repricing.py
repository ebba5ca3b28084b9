"""Recompute the target offers of some accounts (or all): one read of what they depend on, pure decisions,
one bulk write of the offers and one bulk append of their events, in the caller's transaction."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

import asyncpg
from prometheus_client import Counter

from unified_listings import store
from unified_listings.domain import Price, SourceOffer, Stop, TargetOffer, change_of, desired_target
from unified_shared import eventstore
from unified_shared.catalog import by_id
from unified_shared.contracts.listings import OfferPriceChanged, OfferStopped, RepriceCause, TargetRule
from unified_shared.events import Event

REPRICED = Counter("listings_offers_repriced_total", "Target offers (re)priced or stopped", ["cause", "outcome"])


@dataclass(frozen=True, slots=True)
class Outcome:
    priced: int
    stopped: int

    @property
    def published(self) -> int:
        return self.priced + self.stopped


def _pick_links(links: Sequence[store.Link]) -> dict[tuple[UUID, str], dict[str, store.Link]]:
    """(account, source marketplace) -> {sku or '*': link}."""
    out: dict[tuple[UUID, str], dict[str, store.Link]] = {}
    for link in links:
        out.setdefault((link.account_id, link.source_marketplace_id), {})[link.sku] = link
    return out


async def reprice(
    conn: asyncpg.Connection, account_ids: Sequence[UUID] | None, cause: RepriceCause, *, now: dt.datetime | None = None
) -> Outcome:
    """Bring every linked offer of ``account_ids`` (all accounts when None) in line with its link, source
    offer, the account's participations and the latest FX rates; publish what changed."""
    now = now or dt.datetime.now(dt.UTC)
    rates = await store.latest_rates(conn)
    by_source = _pick_links(await store.links(conn, account_ids))
    sources = await store.own_offers(conn, account_ids)
    own = await store.own_keys(conn, account_ids)
    current = await store.linked_offers(conn, account_ids)
    selling = await store.sells(conn, account_ids)
    wanted: dict[tuple[UUID, str, str], tuple[SourceOffer, TargetRule]] = {}
    for source in sources:
        for_source = by_source.get((source.account_id, source.marketplace_id))
        if not for_source:
            continue
        link = for_source.get(source.sku) or for_source.get("*")
        if link is None:
            continue
        for target in link.targets:
            key = (source.account_id, target.marketplace_id, source.sku)
            if key in own or target.marketplace_id == source.marketplace_id:
                continue  # the seller prices that one by hand
            wanted[key] = (source, target)
    rows: list[store.TargetRow] = []
    events: list[tuple[str, int, Event]] = []
    priced = stopped = 0
    rule_json: dict[int, dict[str, object]] = {}  # one dump per rule, not per offer
    for key, (source, target) in wanted.items():
        account_id, marketplace_id, sku = key
        desired = desired_target(source, target, sells=(account_id, marketplace_id) in selling, rates=rates)
        rule = rule_json.get(id(target))
        if rule is None:
            rule = rule_json[id(target)] = target.model_dump(mode="json")
        existing = current.get(key)
        if not change_of(existing, desired, source.price, rule):
            continue
        version = existing.version if existing else 0
        stream = store.offer_stream(account_id, marketplace_id, sku)
        if isinstance(desired, Price):
            event: Event = _price_event(source, target=target, desired=desired, existing=existing, cause=cause, now=now)
            state = _priced(source, desired)
            priced += 1
        else:
            event = OfferStopped(
                account_id=account_id, sku=sku, marketplace_id=marketplace_id, reason=desired.reason, at=now
            )
            state = _stopped(existing, desired)
            stopped += 1
        rows.append(_linked_row(source, target, rule, version + 1, state))
        events.append((stream, version, event))
    for key, existing in current.items():
        if key in wanted or existing.status == "Stopped":
            continue
        account_id, marketplace_id, sku = key
        reason = "no longer linked"
        events.append(
            (
                store.offer_stream(account_id, marketplace_id, sku),
                existing.version,
                OfferStopped(account_id=account_id, sku=sku, marketplace_id=marketplace_id, reason=reason, at=now),
            )
        )
        rows.append(_unlinked_row(existing, reason))
        stopped += 1
    await eventstore.append_batch(conn, events, occurred_at=now)
    await store.save_targets(conn, rows)
    REPRICED.labels(cause, "priced").inc(priced)
    REPRICED.labels(cause, "stopped").inc(stopped)
    return Outcome(priced, stopped)


def _price_event(
    source: SourceOffer,
    *,
    target: TargetRule,
    desired: Price,
    existing: TargetOffer | None,
    cause: RepriceCause,
    now: dt.datetime,
) -> OfferPriceChanged:
    previous = existing.price if existing is not None and existing.status == "Active" else None
    return OfferPriceChanged(
        account_id=source.account_id,
        sku=source.sku,
        marketplace_id=target.marketplace_id,
        currency=target.currency,
        previous=previous,
        quantity=source.quantity,
        source_marketplace_id=source.marketplace_id,
        source_currency=source.currency,
        source_price=source.price,
        rule=target,
        cause="opened" if previous is None and cause == "fx" else cause,
        at=now,
        **dataclasses.asdict(desired),  # the price and how it was made: a Price's fields are the event's
    )


@dataclass(frozen=True, slots=True)
class _TargetState:
    """What a priced and a stopped target row differ in: the status, the price and where it came from."""

    status: str
    price: Decimal | None
    source_price: Decimal | None
    fx_rate: Decimal | None
    fx_rate_date: dt.date | None
    clamped: str | None
    stop_reason: str | None


def _priced(source: SourceOffer, desired: Price) -> _TargetState:
    return _TargetState(
        "Active", desired.price, source.price, desired.fx_rate, desired.fx_rate_date, desired.clamped, None
    )


def _stopped(existing: TargetOffer | None, desired: Stop) -> _TargetState:
    """A stopped target keeps its last price, and the source price and rate day it came from."""
    if existing is None:
        return _TargetState("Stopped", None, None, None, None, None, desired.reason)
    return _TargetState(
        "Stopped", existing.price, existing.source_price, None, existing.fx_rate_date, None, desired.reason
    )


def _linked_row(
    source: SourceOffer, target: TargetRule, rule: dict[str, object], version: int, state: _TargetState
) -> store.TargetRow:
    """The row of ``source``'s offer in ``target``'s marketplace under ``rule``, in ``state``."""
    return store.TargetRow(
        account_id=source.account_id,
        sku=source.sku,
        marketplace_id=target.marketplace_id,
        currency=target.currency,
        quantity=source.quantity,
        source_marketplace_id=source.marketplace_id,
        rule=rule,
        version=version,
        **dataclasses.asdict(state),
    )


def _unlinked_row(existing: TargetOffer, reason: str) -> store.TargetRow:
    return store.TargetRow(
        existing.account_id,
        existing.sku,
        existing.marketplace_id,
        by_id(existing.marketplace_id).currency,
        existing.price,
        0,
        "Stopped",
        "",
        existing.source_price,
        None,
        existing.fx_rate_date,
        existing.rule,
        None,
        reason,
        existing.version + 1,
    )
