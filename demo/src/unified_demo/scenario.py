"""The seller's story as data: seeded, pure, and independent of the platform that will ingest it.

Two months of a seller who registers with home marketplace US, opens six more marketplaces over the
first weeks, and sells with a weekly rhythm at local price levels; some orders are canceled or refunded;
buyers write, and the seller replies to most messages, some late, some marked "no response needed".
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from unified_shared import catalog
from unified_shared.money import quantum

# Relative order volume per marketplace and price range per order in local currency.
MARKET_WEIGHT = {"US": 1.0, "CA": 0.3, "MX": 0.2, "UK": 0.5, "DE": 0.6, "FR": 0.35, "JP": 0.4}
PRICE_RANGE = {
    "USD": (Decimal("12"), Decimal("140")),
    "CAD": (Decimal("15"), Decimal("180")),
    "MXN": (Decimal("250"), Decimal("2600")),
    "GBP": (Decimal("10"), Decimal("110")),
    "EUR": (Decimal("11"), Decimal("125")),
    "JPY": (Decimal("1500"), Decimal("19800")),
}
# Monday .. Sunday: weekends sell more.
WEEKDAY_WEIGHT = (0.85, 0.8, 0.9, 0.95, 1.1, 1.35, 1.3)
SUBJECTS = (
    "Where is my order?",
    "Question about size",
    "Item arrived damaged",
    "Can I change the delivery address?",
    "Is this compatible with my model?",
    "Request for invoice",
    "Return request",
)


@dataclass(frozen=True, slots=True)
class ScenarioConfig:
    seed: int = 7
    start: date = date(2026, 9, 1)
    days: int = 61
    orders_per_day: int = 24
    marketplaces: tuple[str, ...] = ("US", "CA", "MX", "UK", "DE", "FR", "JP")
    home: str = "US"


@dataclass(frozen=True, slots=True)
class PlanStep:
    """One regions command: open a participation, start the plan, activate listings."""

    marketplace: str  # code, e.g. "DE"
    action: str  # "open" | "start-subscription" | "activate-listings"
    at: datetime


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """What the seller's marketplace reports about an order, as SP-API shapes it, at one moment."""

    region: str
    payload: dict[str, object]

    @property
    def order_id(self) -> str:
        return str(self.payload["AmazonOrderId"])


@dataclass(frozen=True, slots=True)
class Refund:
    region: str
    order_id: str
    currency: str
    amount: Decimal
    at: datetime


@dataclass(frozen=True, slots=True)
class Message:
    region: str
    marketplace_id: str
    thread_id: str
    message_id: str
    order_id: str | None
    subject: str
    body: str
    received_at: datetime
    reply_at: datetime | None = None
    no_response_at: datetime | None = None


@dataclass(slots=True)
class Scenario:
    config: ScenarioConfig
    registered_at: datetime
    plan: list[PlanStep] = field(default_factory=list)
    placed: list[OrderRecord] = field(default_factory=list)  # first report of each order
    updates: list[OrderRecord] = field(default_factory=list)  # later status changes
    refunds: list[Refund] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.config.start + timedelta(days=self.config.days), time(0), tzinfo=UTC)

    def final_orders(self) -> dict[str, dict[str, object]]:
        """The last reported state of every order (what the unified view must end up with)."""
        final: dict[str, dict[str, object]] = {}
        for rec in [*self.placed, *self.updates]:
            final[rec.order_id] = rec.payload
        return final


def _at(day: date, hour: float) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC) + timedelta(hours=hour)


def _plan(cfg: ScenarioConfig, rng: random.Random) -> tuple[list[PlanStep], dict[str, datetime]]:
    """Home marketplace from day one; the others open one after another over the first six weeks."""
    steps: list[PlanStep] = []
    live_from: dict[str, datetime] = {}
    others = [m for m in cfg.marketplaces if m != cfg.home]
    span = max(1, min(cfg.days - 5, 40))
    for index, code in enumerate([cfg.home, *others]):
        if code == cfg.home:
            opened = _at(cfg.start, 8)
        else:
            offset = 3 + (index - 1) * span // max(1, len(others)) + rng.randint(0, 2)
            opened = _at(cfg.start + timedelta(days=offset), 9 + rng.random() * 6)
        if code != cfg.home:  # the home participation is opened by the registration itself
            steps.append(PlanStep(code, "open", opened))
        started = opened + timedelta(hours=1)
        listed = started + timedelta(hours=2 + rng.random() * 20)
        steps.append(PlanStep(code, "start-subscription", started))
        steps.append(PlanStep(code, "activate-listings", listed))
        live_from[code] = listed
    steps.sort(key=lambda s: s.at)
    return steps, live_from


def _order_id(rng: random.Random, used: set[str]) -> str:
    while True:
        oid = f"{rng.randint(100, 999)}-{rng.randint(0, 9999999):07d}-{rng.randint(0, 9999999):07d}"
        if oid not in used:
            used.add(oid)
            return oid


def _price(rng: random.Random, currency: str) -> Decimal:
    low, high = PRICE_RANGE[currency]
    raw = low + (high - low) * Decimal(str(round(rng.betavariate(1.6, 4.0), 6)))
    return raw.quantize(quantum(currency))


def build(cfg: ScenarioConfig) -> Scenario:
    rng = random.Random(cfg.seed)
    registered = _at(cfg.start, 7)
    plan, live_from = _plan(cfg, rng)
    scenario = Scenario(cfg, registered, plan)
    used: set[str] = set()
    total_weight = sum(MARKET_WEIGHT[m] for m in cfg.marketplaces)
    thread_no = 0
    for day_index in range(cfg.days):
        day = cfg.start + timedelta(days=day_index)
        for code in cfg.marketplaces:
            market = catalog.resolve(code)
            expected = cfg.orders_per_day * WEEKDAY_WEIGHT[day.weekday()] * MARKET_WEIGHT[code] / total_weight
            count = int(expected) + (1 if rng.random() < expected - int(expected) else 0)
            for _ in range(count):
                purchased = _at(day, rng.uniform(0, 23.9))
                if purchased < live_from[code]:
                    continue
                oid = _order_id(rng, used)
                items = rng.choices((1, 2, 3, 4), weights=(70, 20, 7, 3))[0]
                total = _price(rng, market.currency) * items
                channel = "AFN" if rng.random() < 0.55 else "MFN"
                first = "Pending" if rng.random() < 0.5 else "Unshipped"
                base: dict[str, object] = {
                    "AmazonOrderId": oid,
                    "PurchaseDate": purchased.isoformat().replace("+00:00", "Z"),
                    "LastUpdateDate": purchased.isoformat().replace("+00:00", "Z"),
                    "OrderStatus": first,
                    "FulfillmentChannel": channel,
                    "OrderTotal": {"CurrencyCode": market.currency, "Amount": format(total, "f")},
                    "NumberOfItemsShipped": 0,
                    "NumberOfItemsUnshipped": items,
                    "MarketplaceId": market.marketplace_id,
                }
                scenario.placed.append(OrderRecord(market.region.value, base))
                fate = rng.random()
                updated = purchased + timedelta(hours=rng.uniform(2, 40))
                if updated >= scenario.end:
                    pass  # still open at the end of the story
                elif fate < 0.05:
                    scenario.updates.append(
                        OrderRecord(market.region.value, _update(base, "Canceled", updated, shipped=0, unshipped=0))
                    )
                else:
                    scenario.updates.append(
                        OrderRecord(market.region.value, _update(base, "Shipped", updated, shipped=items, unshipped=0))
                    )
                    refunded = updated + timedelta(days=rng.uniform(2, 12))
                    if fate > 0.96 and refunded < scenario.end:
                        share = Decimal(rng.choice(("1", "0.5", "0.3")))
                        amount = (total * share).quantize(quantum(market.currency))
                        scenario.refunds.append(Refund(market.region.value, oid, market.currency, amount, refunded))
                if rng.random() < 0.14:
                    thread_no += 1
                    scenario.messages.append(_message(rng, cfg, market, oid, purchased, thread_no, scenario.end))
    return scenario


def _update(base: dict[str, object], status: str, at: datetime, *, shipped: int, unshipped: int) -> dict[str, object]:
    updated = dict(base)
    updated["OrderStatus"] = status
    updated["LastUpdateDate"] = at.isoformat().replace("+00:00", "Z")
    updated["NumberOfItemsShipped"] = shipped
    updated["NumberOfItemsUnshipped"] = unshipped
    return updated


def _message(  # noqa: PLR0917
    rng: random.Random,
    cfg: ScenarioConfig,
    market: catalog.Marketplace,
    order_id: str,
    purchased: datetime,
    thread_no: int,
    end: datetime,
) -> Message:
    received = purchased + timedelta(hours=rng.uniform(3, 96))
    subject = rng.choice(SUBJECTS)
    body = f"Hello, about order {order_id}: {subject.lower()} Thank you."
    thread = f"T-{cfg.seed}-{thread_no:05d}"
    roll = rng.random()
    reply_at: datetime | None = None
    no_response_at: datetime | None = None
    if roll < 0.72:
        reply_at = received + timedelta(hours=rng.uniform(0.3, 20))  # on time
    elif roll < 0.84:
        reply_at = received + timedelta(hours=rng.uniform(25, 60))  # late
    elif roll < 0.93:
        no_response_at = received + timedelta(hours=rng.uniform(0.5, 10))
    # else: never answered
    if reply_at and reply_at >= end:
        reply_at = None
    if no_response_at and no_response_at >= end:
        no_response_at = None
    return Message(
        region=market.region.value,
        marketplace_id=market.marketplace_id,
        thread_id=thread,
        message_id=f"{thread}-M1",
        order_id=order_id,
        subject=subject,
        body=body,
        received_at=received,
        reply_at=reply_at,
        no_response_at=no_response_at,
    )
