"""The view's offers (listings.offers.v1): each SKU's offer per marketplace, own or priced by a link, with what
made a linked price (source price, rate day, clamp) so the view can flag stale and clamped prices.

Its table is created in a generation's schema on first use, so generations built before offers existed
follow the topic too (and a rebuild makes it part of every generation).
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from unified_shared.consumer import Apply, ReceivedEvent
from unified_shared.contracts import listings
from unified_shared.events import Event

OFFERS_DDL = """
CREATE TABLE IF NOT EXISTS offers (
    account_id            UUID NOT NULL,
    sku                   TEXT NOT NULL,
    marketplace_id        TEXT NOT NULL,
    kind                  TEXT NOT NULL,
    currency              TEXT NOT NULL,
    price                 NUMERIC,
    status                TEXT NOT NULL,
    source_marketplace_id TEXT,
    source_price          NUMERIC,
    fx_rate_date          DATE,
    clamped               TEXT,
    stop_reason           TEXT,
    at                    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (account_id, marketplace_id, sku)
)
"""


async def apply_offers(conn: asyncpg.Connection, events: Sequence[ReceivedEvent]) -> None:
    """Apply a batch's offer events in log order (the search_path is the generation's schema)."""
    await conn.execute(OFFERS_DDL)
    for received in events:
        event = received.event
        if isinstance(event, listings.OfferUpserted):
            await conn.execute(
                """INSERT INTO offers (account_id, sku, marketplace_id, kind, currency, price, status, at)
                   VALUES ($1, $2, $3, 'own', $4, $5, $6, $7)
                   ON CONFLICT (account_id, marketplace_id, sku) DO UPDATE SET kind = 'own',
                       price = EXCLUDED.price, status = EXCLUDED.status, at = EXCLUDED.at,
                       source_marketplace_id = NULL, source_price = NULL, fx_rate_date = NULL, clamped = NULL,
                       stop_reason = NULL""",
                event.account_id,
                event.sku,
                event.marketplace_id,
                event.currency,
                event.price,
                event.status,
                event.at,
            )
        elif isinstance(event, listings.OfferPriceChanged):
            await conn.execute(
                """INSERT INTO offers (account_id, sku, marketplace_id, kind, currency, price, status,
                                       source_marketplace_id, source_price, fx_rate_date, clamped, at)
                   VALUES ($1, $2, $3, 'linked', $4, $5, 'Active', $6, $7, $8, $9, $10)
                   ON CONFLICT (account_id, marketplace_id, sku) DO UPDATE SET kind = 'linked',
                       currency = EXCLUDED.currency, price = EXCLUDED.price, status = 'Active',
                       source_marketplace_id = EXCLUDED.source_marketplace_id, source_price = EXCLUDED.source_price,
                       fx_rate_date = EXCLUDED.fx_rate_date, clamped = EXCLUDED.clamped, stop_reason = NULL,
                       at = EXCLUDED.at""",
                event.account_id,
                event.sku,
                event.marketplace_id,
                event.currency,
                event.price,
                event.source_marketplace_id,
                event.source_price,
                event.fx_rate_date,
                event.clamped,
                event.at,
            )
        elif isinstance(event, listings.OfferStopped):
            await conn.execute(
                """UPDATE offers SET status = 'Stopped', stop_reason = $4, at = $5
                   WHERE account_id = $1 AND marketplace_id = $2 AND sku = $3""",
                event.account_id,
                event.marketplace_id,
                event.sku,
                event.reason,
                event.at,
            )


_OFFERS = Apply(apply_offers)
# Registered in handlers.SET_BASED: the offer types, one group (their log order kept).
HANDLERS: dict[type[Event], Apply] = {
    listings.OfferUpserted: _OFFERS,
    listings.OfferPriceChanged: _OFFERS,
    listings.OfferStopped: _OFFERS,
    listings.InternationalLinkSet: _OFFERS,
}
