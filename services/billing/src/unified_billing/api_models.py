"""The wire models of billing's HTTP API (what the OpenAPI document shows)."""

from __future__ import annotations

import datetime as dt
from typing import Literal
from uuid import UUID

from pydantic import BaseModel

from unified_shared.contracts.billing import InvoiceLine


class DocumentOut(BaseModel):
    document_id: str
    document_type: Literal["invoice", "credit_note"]
    kind: Literal["invoice", "supplementary", "credit_note"]
    account_id: UUID
    period: str
    currency: str
    invoice_id: str  # the period's invoice in this currency (itself for an invoice)
    total: str
    discount: str
    reason: str
    issued_at: dt.datetime
    lines: list[InvoiceLine]


class InvoicesOut(BaseModel):
    account_id: UUID
    invoices: list[DocumentOut]
    credit_notes: list[DocumentOut]


class InvoiceDetailOut(DocumentOut):
    adjustments: list[DocumentOut]  # supplementary invoices and credit notes issued against this invoice


class PreviewInvoice(BaseModel):
    currency: str
    invoice_id: str
    total: str
    discount: str
    lines: list[InvoiceLine]


class CapOut(BaseModel):
    amount: str
    currency: str


class PreviewOut(BaseModel):
    account_id: UUID
    period: str
    as_of: dt.date
    final: bool
    status: Literal["preview", "held"]
    held_reason: str | None
    first_period: bool
    billable_marketplaces: list[str]
    cap: CapOut
    invoices: list[PreviewInvoice]


class CloseRequest(BaseModel):
    account_id: UUID | None = None


class IssuedOut(BaseModel):
    document_id: str
    kind: str
    currency: str
    total: str


class AccountResultOut(BaseModel):
    account_id: UUID
    period: str
    status: Literal["closed", "held"]
    reason: str | None
    issued: list[IssuedOut]


class CloseOut(BaseModel):
    period: str
    results: list[AccountResultOut]


class PeriodStatusOut(BaseModel):
    period: str
    status: Literal["closed", "held"]
    reason: str | None
    dirty: bool  # late events arrived since it was closed: the next run recomputes it
    updated_at: dt.datetime


class PeriodsOut(BaseModel):
    account_id: UUID
    periods: list[PeriodStatusOut]


class HoldOut(BaseModel):
    account_id: UUID
    period: str
    reason: str | None
    updated_at: dt.datetime


class HoldsOut(BaseModel):
    holds: list[HoldOut]
