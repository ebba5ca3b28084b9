"""Random order histories shared by the order tests: the day summaries against their reference
(test_summaries) and the set-based order handlers against the per-event ones (test_order_batches)."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from unified_shared.contracts import orders
from unified_shared.events import Event

from .support import DE, JP, UK, US

# Far from the days other tests use: test_summaries_consumer publishes these random rates, revised, on the
# shared FX topic, and any view or billing consuming it later takes the latest revision of a day. On 2026
# days they replaced the real ECB rates the end-to-end test computes its expectations from (it failed after
# the seller_view tests had run, on the same broker).
T0 = datetime(2011, 3, 1, tzinfo=UTC)
DAYS = 12
MARKETS = [(US, "USD", "NA"), (DE, "EUR", "EU"), (UK, "GBP", "EU"), (JP, "JPY", "FE")]


def order_events(
    rng: random.Random, account: uuid.UUID, n: int, *, ties: bool = False, days: int = DAYS, counts: bool = False
) -> list[Event]:
    """One order's events in the order they are published: its snapshot, then up to four status changes,
    refunds (some in another currency) or newer snapshots (some moving the purchase day), some older than
    the order's last update; now and then the snapshot comes after some of its changes (they are parked).
    ``ties``: every later event at the order's purchase time or an hour after, so that several share one
    last_update_date (their order is then decided by their sequence). ``days``: how many days from T0 the
    orders are placed in. ``counts``: status changes carry item counts now and then (both, or one of them),
    and some changes move only the counts."""
    order_id = f"{n:03d}-0000000-0000000"
    market, currency, region = rng.choice(MARKETS)
    if rng.random() < 0.15:
        currency = rng.choice(["USD", "EUR", "GBP", "SEK"])
    placed = T0 + timedelta(days=rng.randint(0, days - 1), hours=rng.choice([0, 11, 23]), minutes=rng.choice([0, 59]))

    order: dict[str, Any] = {
        "account_id": account,
        "marketplace_id": market,
        "amazon_order_id": order_id,
        "region": region,
    }  # what every event of the order carries

    def money(cur: str) -> orders.Money:
        places = 0 if cur == "JPY" else 2
        return orders.Money(currency_code=cur, amount=Decimal(rng.randint(1, 99999)).scaleb(-places))

    def snapshot(at: datetime, status: str, when: datetime = placed) -> orders.OrderPlaced:
        return orders.OrderPlaced(
            **order,
            purchase_date=when,
            last_update_date=at,
            order_status=status,  # type: ignore[arg-type]
            fulfillment_channel="MFN",
            order_total=money(currency),
            number_of_items=rng.randint(1, 4),
            number_of_items_unshipped=1,
        )

    events: list[Event] = [snapshot(placed, rng.choice(["Unshipped", "Pending"]))]
    for k in range(rng.randint(0, 4)):
        at = placed + timedelta(hours=rng.choice([0, 1]) if ties else rng.randint(-1, 40))
        pick = rng.random()
        if counts and pick < 0.1:  # the counts moved, the status did not
            events.append(
                orders.OrderItemCountsChanged(
                    **order,
                    last_update_date=at,
                    number_of_items_shipped=rng.randint(0, 3),
                    number_of_items_unshipped=rng.randint(0, 3),
                )
            )
        elif pick < 0.4:
            events.append(
                orders.OrderStatusChanged(
                    **order,
                    from_status="Unshipped",
                    to_status=rng.choice(["Shipped", "Canceled", "PartiallyShipped"]),  # type: ignore[arg-type]
                    last_update_date=at,
                    **(
                        _counts(rng) if counts else {"number_of_items_shipped": rng.choice([None, 1]) if ties else None}
                    ),
                )
            )
        elif pick < 0.8:
            cur = currency if rng.random() < 0.7 else rng.choice(["USD", "EUR", "GBP", "AED"])
            events.append(
                orders.OrderRefunded(
                    **order,
                    amount=money(cur),
                    refunded_at=at,
                    last_update_date=at + timedelta(seconds=0 if ties else k),
                )
            )
        else:  # a newer snapshot, now and then with another purchase day (the old day must be recomputed)
            moved = placed + timedelta(days=rng.choice([0, 0, 1, -1]))
            late = at + timedelta(minutes=0 if ties else 1)
            events.append(snapshot(late, rng.choice(["Shipped", "Pending"]), moved))
    if rng.random() < 0.3:  # changes before their order: parked, then applied
        events.insert(rng.randint(1, len(events)), events.pop(0))
    return events


def _counts(rng: random.Random) -> dict[str, int | None]:
    shipped, unshipped = rng.randint(0, 3), rng.randint(0, 3)
    return rng.choice(
        [
            {},
            {"number_of_items_shipped": shipped, "number_of_items_unshipped": unshipped},
            {"number_of_items_shipped": shipped},
            {"number_of_items_unshipped": unshipped},
        ]
    )


def interleave(rng: random.Random, queues: list[list[Event]]) -> list[Event]:
    """The histories mixed at random, each keeping its own order (as one partition holds them)."""
    mixed: list[Event] = []
    while queues:
        q = rng.choice(queues)
        mixed.append(q.pop(0))
        if not q:
            queues.remove(q)
    return mixed
