"""What billing's commands and queries hand upward (typed, never wire dicts or database rows): close outcomes,
stored documents, period states, holds and the preview."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from uuid import UUID

from unified_billing.domain import ChargeLine, Period


@dataclass(slots=True)
class IssuedRef:
    document_id: str
    kind: str
    currency: str
    total: str


@dataclass(slots=True)
class AccountOutcome:
    account_id: UUID
    period: str
    status: str  # "closed" or "held"
    reason: str | None = None
    issued: list[IssuedRef] = field(default_factory=list)


@dataclass(slots=True)
class CloseFailure:
    account_id: UUID
    period: str
    busy: bool  # the account's locks were not free in time (else an error)
    error: str


@dataclass(frozen=True, slots=True)
class StoredDocument:
    """An issued invoice, supplementary invoice or credit note as stored (``lines``: their JSON form)."""

    document_id: str
    kind: str
    account_id: UUID
    period: str
    currency: str
    invoice_id: str
    total: Decimal
    discount: Decimal
    reason: str
    issued_at: dt.datetime
    lines: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class PeriodStatus:
    period: str
    status: str  # "closed" or "held"
    reason: str | None
    dirty: bool
    updated_at: dt.datetime


@dataclass(frozen=True, slots=True)
class HeldPeriod:
    account_id: UUID
    period: str
    reason: str | None
    updated_at: dt.datetime


@dataclass(frozen=True, slots=True)
class PreviewInvoice:
    currency: str
    invoice_id: str
    total: Decimal
    discount: Decimal
    lines: tuple[ChargeLine, ...]


@dataclass(frozen=True, slots=True)
class Preview:
    """What would be charged if the period closed now (``status`` "held": ``held_reason`` says why not)."""

    account_id: UUID
    period: Period
    as_of: dt.date
    final: bool
    cap_amount: Decimal
    cap_currency: str
    status: str = "preview"
    held_reason: str | None = None
    first_period: bool = False
    billable_marketplaces: tuple[str, ...] = ()
    invoices: tuple[PreviewInvoice, ...] = ()
