"""HTTP API of billing: invoices (owner with the billing permission only), preview, CSV, closing periods."""

from __future__ import annotations

import csv
import hmac
import io
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import AfterValidator, Field

from unified_billing.api_models import (
    AccountResultOut,
    CapOut,
    CloseOut,
    CloseRequest,
    DocumentOut,
    HoldOut,
    HoldsOut,
    InvoiceDetailOut,
    InvoicesOut,
    IssuedOut,
    PeriodsOut,
    PeriodStatusOut,
    PreviewInvoice,
    PreviewOut,
)
from unified_billing.domain import Period
from unified_billing.handlers import AccountOutcome, Billing, CloseIncomplete
from unified_billing.issuing import line_model
from unified_billing.results import Preview, StoredDocument
from unified_shared.auth import Principal, current_principal
from unified_shared.bounds import IDENT_PATTERN, check_period
from unified_shared.bounds import Period as PeriodParam
from unified_shared.catalog import UnknownMarketplace, by_id
from unified_shared.contracts.billing import InvoiceLine
from unified_shared.errors import Forbidden, Invalid, NotFound
from unified_shared.problems import Problem

router = APIRouter(tags=["billing"])

PERIOD_PATTERN = r"^[0-9]{4}-(0[1-9]|1[0-2])$"
PeriodPath = Annotated[
    str, Path(pattern=PERIOD_PATTERN, description="YYYY-MM, 2000 .. 2100"), AfterValidator(check_period)
]
CurrencyParam = Annotated[str, Field(pattern="^[A-Za-z]{3}$")]
DocumentIdPath = Annotated[str, Path(min_length=1, max_length=128, pattern=IDENT_PATTERN)]


# -- auth -----------------------------------------------------------------------------------------------
def _billing(request: Request) -> Billing:
    billing: Billing = request.app.state.handlers
    return billing


async def billing_owner(account_id: UUID, principal: Principal = Depends(current_principal)) -> Principal:
    """The account's owner, with the billing permission in the token: nobody else sees invoices."""
    principal.require_account(account_id)
    if principal.role != "owner" or "billing" not in principal.permissions:
        raise Forbidden(None, "billing is visible to the account owner with the 'billing' permission only")
    return principal


def _bearer(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _is_operator(request: Request) -> bool:
    """The platform operator: ``X-Operator-Token`` like the regions service, or the same secret as a bearer."""
    expected = _billing(request).settings.operator_token
    token = request.headers.get("x-operator-token") or _bearer(request)
    return bool(expected) and bool(token) and hmac.compare_digest(token.encode(), str(expected).encode())


async def _operator(request: Request) -> None:
    if not _is_operator(request):
        raise Forbidden(None, "this call needs the operator credential")


def _period(text: str) -> Period:
    try:
        return Period.parse(text)
    except ValueError as exc:
        raise Invalid("period", str(exc), title="Invalid period") from None


# -- conversions ----------------------------------------------------------------------------------------
def _document_out(doc: StoredDocument) -> DocumentOut:
    kind = doc.kind
    return DocumentOut(
        document_id=doc.document_id,
        document_type="credit_note" if kind == "credit_note" else "invoice",
        kind=kind,  # type: ignore[arg-type]
        account_id=doc.account_id,
        period=doc.period,
        currency=doc.currency,
        invoice_id=doc.invoice_id,
        total=format(doc.total, "f"),
        discount=format(doc.discount, "f"),
        reason=doc.reason,
        issued_at=doc.issued_at,
        lines=[InvoiceLine.model_validate(line) for line in doc.lines],
    )


def preview_out(p: Preview) -> PreviewOut:
    return PreviewOut(
        account_id=p.account_id,
        period=str(p.period),
        as_of=p.as_of,
        final=p.final,
        status="held" if p.status == "held" else "preview",
        held_reason=p.held_reason,
        first_period=p.first_period,
        billable_marketplaces=list(p.billable_marketplaces),
        cap=CapOut(amount=format(p.cap_amount, "f"), currency=p.cap_currency),
        invoices=[
            PreviewInvoice(
                currency=i.currency,
                invoice_id=i.invoice_id,
                total=format(i.total, "f"),
                discount=format(i.discount, "f"),
                lines=[line_model(line) for line in i.lines],
            )
            for i in p.invoices
        ],
    )


def _outcome_out(outcome: AccountOutcome) -> AccountResultOut:
    return AccountResultOut(
        account_id=outcome.account_id,
        period=outcome.period,
        status="held" if outcome.status == "held" else "closed",
        reason=outcome.reason,
        issued=[
            IssuedOut(document_id=i.document_id, kind=i.kind, currency=i.currency, total=i.total)
            for i in outcome.issued
        ],
    )


# -- routes ---------------------------------------------------------------------------------------------
@router.post("/v1/billing/periods/{period}/close", response_model=CloseOut)
async def close_period(period: PeriodPath, request: Request, body: CloseRequest | None = None) -> CloseOut:
    """Close an ended month: the operator credential for all (or one) accounts, an owner for its own."""
    billing = _billing(request)
    target = _period(period)
    account_id = body.account_id if body else None
    if not _is_operator(request):
        principal = await current_principal(request)
        if account_id is not None:
            principal.require_account(account_id)
        if principal.role != "owner" or "billing" not in principal.permissions:
            raise Forbidden(None, "closing a period needs the owner's billing permission or the operator")
        account_id = principal.account_id
    try:
        outcomes = await billing.close_period(target, account_id)
    except CloseIncomplete as exc:
        raise _incomplete_problem(billing, exc) from None
    return CloseOut(period=str(target), results=[_outcome_out(o) for o in outcomes])


def _incomplete_problem(billing: Billing, exc: CloseIncomplete) -> Problem:
    """503 + Retry-After if only busy accounts kept periods open (retrying will do), else 500. Both list the
    periods closed anyway (``results``) and the ones that stay due (``failed``)."""
    failed = [{"account_id": str(f.account_id), "period": f.period, "busy": f.busy} for f in exc.failures]
    results = [_outcome_out(o).model_dump(mode="json") for o in exc.outcomes]
    names = ", ".join(sorted({f"{f['account_id']} {f['period']}" for f in failed}))
    if exc.only_busy:
        retry_after = billing.retry_after_s()
        problem = Problem(
            503,
            "Account busy",
            f"the account is busy (its events are being recorded, or another close runs): {names} not closed,"
            f" still due; retry in {retry_after} s (the scheduler also retries)",
            failed=failed,
            results=results,
        )
        problem.headers["Retry-After"] = str(retry_after)
        return problem
    return Problem(
        500,
        "Close failed",
        f"closing failed for {names}; these stay due and are retried",
        failed=failed,
        results=results,
    )


@router.get("/v1/billing/holds", response_model=HoldsOut, dependencies=[Depends(_operator)])
async def holds(request: Request) -> HoldsOut:
    """Every held account period and why (operator)."""
    held = await _billing(request).holds()
    return HoldsOut(
        holds=[
            HoldOut(account_id=h.account_id, period=h.period, reason=h.reason, updated_at=h.updated_at) for h in held
        ]
    )


@dataclass(frozen=True, slots=True)
class _Listing:
    """The owner's documents under a listing's filters: what the JSON and the CSV listings both show."""

    period: str | None
    rows: list[StoredDocument]


async def _listing(
    account_id: UUID,
    request: Request,
    period: PeriodParam | None = Query(None),
    currency: CurrencyParam | None = Query(None),
    _: Principal = Depends(billing_owner),
) -> _Listing:
    rows = await _billing(request).documents(account_id, period=period, currency=currency.upper() if currency else None)
    return _Listing(period, rows)


@router.get("/v1/accounts/{account_id}/invoices", response_model=InvoicesOut)
async def list_invoices(account_id: UUID, listing: _Listing = Depends(_listing)) -> InvoicesOut:
    docs = [_document_out(r) for r in listing.rows]
    return InvoicesOut(
        account_id=account_id,
        invoices=[d for d in docs if d.document_type == "invoice"],
        credit_notes=[d for d in docs if d.document_type == "credit_note"],
    )


@router.get("/v1/accounts/{account_id}/invoices.csv", response_class=Response)
async def export_csv(account_id: UUID, listing: _Listing = Depends(_listing)) -> Response:
    """One row per document line; credit-note amounts are negative so that a column sums to the net."""
    period, rows = listing.period, listing.rows
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        [
            "document_id", "document_type", "kind", "invoice_id", "period", "currency", "marketplace_id",
            "marketplace_code", "fee", "ratio", "amount", "discount", "fx_rate", "fx_rate_date", "fx_rate_source",
            "fx_rate_usd", "issued_at", "description",
        ]
    )  # fmt: skip
    for row in rows:
        sign = Decimal(-1) if row.kind == "credit_note" else Decimal(1)
        for line in row.lines:
            try:
                code = by_id(line["marketplace_id"]).code
            except UnknownMarketplace:
                code = ""
            writer.writerow(
                [
                    row.document_id, "credit_note" if row.kind == "credit_note" else "invoice", row.kind,
                    row.invoice_id, row.period, row.currency, line["marketplace_id"], code, line["fee"],
                    line["ratio"], format(sign * Decimal(line["amount"]), "f"), line["discount"],
                    line.get("fx_rate") or "", line.get("fx_rate_date") or "", line.get("fx_rate_source") or "",
                    line.get("fx_rate_usd") or "", row.issued_at.isoformat(), line.get("description", ""),
                ]
            )  # fmt: skip
    filename = f"invoices-{account_id}{'-' + period if period else ''}.csv"
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/v1/accounts/{account_id}/invoices/{invoice_id}", response_model=InvoiceDetailOut)
async def get_invoice(
    account_id: UUID, invoice_id: DocumentIdPath, request: Request, _: Principal = Depends(billing_owner)
) -> InvoiceDetailOut:
    """One invoice or credit note; an invoice comes with the adjustments issued against it."""
    found = await _billing(request).document(account_id, invoice_id)
    if found is None:
        raise NotFound(None, f"no invoice {invoice_id}")
    row, related = found
    doc = _document_out(row)
    return InvoiceDetailOut(**doc.model_dump(), adjustments=[_document_out(r) for r in related])


@router.get("/v1/accounts/{account_id}/billing/preview", response_model=PreviewOut)
async def preview(
    account_id: UUID,
    request: Request,
    period: PeriodParam | None = Query(None),
    _: Principal = Depends(billing_owner),
) -> PreviewOut:
    """What would be charged if the open period (or ``period``) closed now."""
    result = await _billing(request).preview(account_id, _period(period) if period else None)
    return preview_out(result)


@router.get("/v1/accounts/{account_id}/billing/periods", response_model=PeriodsOut)
async def periods(account_id: UUID, request: Request, _: Principal = Depends(billing_owner)) -> PeriodsOut:
    """Each period's state: closed, or held with the reason (missing FX rate, unknown home marketplace...)."""
    rows = await _billing(request).period_statuses(account_id)
    return PeriodsOut(
        account_id=account_id,
        periods=[
            PeriodStatusOut(
                period=r.period,
                status="held" if r.status == "held" else "closed",
                reason=r.reason,
                dirty=r.dirty,
                updated_at=r.updated_at,
            )
            for r in rows
        ],
    )
