"""Events on ``billing.invoices.v1``."""

from __future__ import annotations

import datetime as dt
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from unified_shared.events import AccountEvent, DecimalString, event_type
from unified_shared.topics import BILLING_INVOICES


class InvoiceLine(BaseModel):
    model_config = ConfigDict(frozen=True)
    marketplace_id: str
    currency: str
    fee: DecimalString
    ratio: DecimalString
    amount: DecimalString
    discount: DecimalString
    fx_rate_date: dt.date | None = None
    fx_rate_source: str | None = None
    fx_rate_usd: DecimalString | None = None  # USD per unit of the line's currency used for the cap
    description: str = ""
    fx_rate: DecimalString | None = None  # the ECB reference rate used: units of the line's currency per 1 EUR


class _BillingEvent(AccountEvent):
    """A billing document issued to one account (an invoice or a credit note): issued once, never changed."""

    DOMAIN: ClassVar[str] = "billing"
    TOPIC: ClassVar[str] = BILLING_INVOICES


@event_type
class InvoiceIssued(_BillingEvent):
    invoice_id: str
    period: str  # YYYY-MM
    currency: str
    lines: list[InvoiceLine]
    total: DecimalString
    discount: DecimalString
    issued_at: dt.datetime
    kind: str = "invoice"  # "invoice" or "supplementary" (an extra invoice after late events)


@event_type
class CreditNoteIssued(_BillingEvent):
    credit_note_id: str
    invoice_id: str
    period: str
    currency: str
    reason: str
    lines: list[InvoiceLine]
    total: DecimalString
    issued_at: dt.datetime
