"""Where a caller may act in a regional service: the marketplace is known, of this instance's region, inside
the caller's scope, and (for new orders and threads) opened by the account. Pure: raises domain errors."""

from __future__ import annotations

from typing import Any

from unified_shared.auth import Scope
from unified_shared.catalog import ApiRegion, Marketplace, UnknownMarketplace, by_id
from unified_shared.errors import DomainError, Forbidden, Invalid, Unavailable
from unified_shared.participations import Verdict

# How long a client waits before asking again about a marketplace not learned yet.
RETRY_AFTER_S = 1


def check_marketplace(marketplace_id: Any, region: ApiRegion, scope: Scope, field: str) -> Marketplace:
    """Known, of this instance's region (else 422 naming the right one), and inside the caller's scope (403)."""
    if not isinstance(marketplace_id, str) or not marketplace_id:
        raise Invalid(field, f"{field} is required")
    try:
        marketplace = by_id(marketplace_id)
    except UnknownMarketplace:
        raise Invalid(field, f"{field} {marketplace_id!r} is not a known marketplace") from None
    if marketplace.region != region:
        raise Invalid(
            field,
            f"marketplace {marketplace_id} ({marketplace.code}) belongs to the {marketplace.region.value} region; "
            f"this is the {region.value} instance: send it to the {marketplace.region.value} instance",
            region=marketplace.region.value,
        )
    if scope != "*" and marketplace_id not in scope:
        raise Forbidden(field, f"marketplace {marketplace_id} ({marketplace.code}) is outside your marketplace scope")
    return marketplace


def participation_refusal(marketplace_id: str, verdict: tuple[Verdict, str], field: str) -> DomainError | None:
    """None where something new may start in the marketplace; else why not: never opened (422), or not
    learned yet (503, retry after ``RETRY_AFTER_S``)."""
    kind, why = verdict
    if kind == "open":
        return None
    code = by_id(marketplace_id).code
    if kind == "not-open":
        return Invalid(
            field,
            f"the account has not opened marketplace {code} ({marketplace_id}): {why}",
            marketplace_id=marketplace_id,
        )
    return Unavailable(
        field,
        f"marketplace {code} ({marketplace_id}) is not known to be open for this account yet (a fresh opening"
        f" takes a moment to arrive): retry after {RETRY_AFTER_S} s",
        title="Not known yet",
        retry_after=RETRY_AFTER_S,
        marketplace_id=marketplace_id,
    )
