"""The platform's public APIs, called with the signed-in user's access token. Knows which service and which
region answers what, so the browser never has to (the backend-for-frontend's one job)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import quote

import httpx

from unified_shared import catalog
from unified_web.settings import Settings


class UpstreamError(Exception):
    """A refusal or failure of a platform API, with what the page may show."""

    def __init__(self, status: int, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.field = field


class NotAllowed(UpstreamError):
    """403: the token does not allow it."""


class NotFound(UpstreamError):
    """404: absent, or outside the account (the platform does not say which)."""


class SignedOut(UpstreamError):
    """401: the access token is no longer accepted."""


class Unavailable(UpstreamError):
    """5xx or unreachable."""


def _raise_for(answer: httpx.Response) -> None:
    if answer.status_code < 400:
        return
    detail, field = answer.reason_phrase, None
    try:
        body = answer.json()
        if isinstance(body, dict):
            detail = str(body.get("detail") or body.get("title") or body.get("error_description") or detail)
            field = body.get("field")
    except ValueError:
        pass
    status = answer.status_code
    kind: type[UpstreamError] = UpstreamError
    if status == 401:
        kind = SignedOut
    elif status == 403:
        kind = NotAllowed
    elif status == 404:
        kind = NotFound
    elif status >= 500:
        kind = Unavailable
    raise kind(status, detail, field if isinstance(field, str) else None)


def region_of(marketplace: str) -> str:
    return catalog.resolve(marketplace).region.value


@dataclass(slots=True)
class Platform:
    """One user's view of the platform: every call carries that user's access token."""

    http: httpx.AsyncClient
    settings: Settings
    access_token: str
    account_id: str

    @property
    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}

    async def _call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            answer = await self.http.request(method, url, headers=self._auth, **kwargs)
        except httpx.HTTPError as exc:
            raise Unavailable(503, f"the platform did not answer ({type(exc).__name__})") from None
        _raise_for(answer)
        return answer

    async def _json(self, method: str, url: str, **kwargs: Any) -> Any:
        answer = await self._call(method, url, **kwargs)
        return answer.json() if answer.content else None

    # -- seller_view: the unified view ----------------------------------------------------------------
    def _view(self, path: str) -> str:
        return f"{self.settings.seller_view_url}/v1/accounts/{self.account_id}/{path}"

    async def overview(self, currency: str) -> dict[str, Any]:
        return dict(await self._json("GET", self._view("overview"), params={"currency": currency}))

    async def timeseries(self, currency: str, granularity: str, start: date, end: date) -> dict[str, Any] | None:
        """Sales per marketplace and bucket; None where seller_view does not serve the time series."""
        params = {"currency": currency, "granularity": granularity, "from": start.isoformat(), "to": end.isoformat()}
        try:
            data = await self._json("GET", self._view("overview/timeseries"), params=params)
        except NotFound:
            return None
        return dict(data)

    async def freshness(self) -> dict[str, Any]:
        return dict(await self._json("GET", self._view("freshness")))

    async def offers(self, currency: str) -> dict[str, Any]:
        """Every SKU's offers in the caller's marketplaces, with prices converted into ``currency``."""
        return dict(await self._json("GET", self._view("offers"), params={"currency": currency}))

    async def orders(self, params: dict[str, str]) -> dict[str, Any]:
        return dict(await self._json("GET", self._view("orders"), params=params))

    async def order_detail(self, amazon_order_id: str) -> dict[str, Any]:
        """One order of the unified view with its refunds and status history (each status with its time)."""
        return dict(await self._json("GET", self._view(f"orders/{quote(amazon_order_id, safe='')}")))

    async def messages_overview(self) -> dict[str, Any]:
        return dict(await self._json("GET", self._view("messages")))

    async def subscriptions(self) -> dict[str, Any]:
        return dict(await self._json("GET", self._view("subscriptions")))

    # -- regional services --------------------------------------------------------------------------
    async def order(self, amazon_order_id: str, marketplace: str) -> dict[str, Any]:
        base = self.settings.orders_url(region_of(marketplace))
        return dict((await self._json("GET", f"{base}/orders/v0/orders/{quote(amazon_order_id)}"))["payload"])

    def _thread(self, marketplace: str, thread_id: str) -> str:
        base = self.settings.messages_url(region_of(marketplace))
        return f"{base}/messaging/v1/threads/{quote(thread_id, safe='')}"

    async def thread(self, marketplace: str, thread_id: str) -> dict[str, Any]:
        return dict(await self._json("GET", self._thread(marketplace, thread_id)))

    async def reply(self, marketplace: str, thread_id: str, body: str) -> dict[str, Any]:
        return dict(await self._json("POST", f"{self._thread(marketplace, thread_id)}/replies", json={"body": body}))

    async def no_response_needed(self, marketplace: str, thread_id: str) -> dict[str, Any]:
        return dict(await self._json("POST", f"{self._thread(marketplace, thread_id)}/no-response-needed", json={}))

    # -- regions: participations --------------------------------------------------------------------
    async def marketplaces(self) -> list[dict[str, Any]]:
        return list((await self._json("GET", f"{self.settings.regions_url}/v1/marketplaces"))["marketplaces"])

    async def participations(self) -> list[dict[str, Any]]:
        url = f"{self.settings.regions_url}/v1/accounts/{self.account_id}/participations"
        return list((await self._json("GET", url))["participations"])

    async def open_marketplace(self, marketplace: str) -> dict[str, Any]:
        url = f"{self.settings.regions_url}/v1/accounts/{self.account_id}/participations"
        return dict(await self._json("POST", url, json={"marketplace": marketplace}))

    async def participation_action(self, marketplace: str, action: str) -> dict[str, Any]:
        url = f"{self.settings.regions_url}/v1/accounts/{self.account_id}/participations/{quote(marketplace)}/{action}"
        return dict(await self._json("POST", url, json={}))

    # -- identity: the team -------------------------------------------------------------------------
    def _team(self, path: str) -> str:
        return f"{self.settings.identity_issuer.rstrip('/')}/v1/accounts/{self.account_id}/{path}"

    async def members(self) -> dict[str, Any]:
        return dict(await self._json("GET", self._team("members")))

    async def invite(self, body: dict[str, Any]) -> dict[str, Any]:
        return dict(await self._json("POST", self._team("invitations"), json=body))

    async def revoke_invitation(self, invitation_id: str) -> None:
        await self._call("DELETE", self._team(f"invitations/{quote(invitation_id)}"))

    async def change_member(self, user_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return dict(await self._json("PATCH", self._team(f"members/{quote(user_id)}"), json=body))

    async def remove_member(self, user_id: str) -> None:
        await self._call("DELETE", self._team(f"members/{quote(user_id)}"))

    # -- billing ------------------------------------------------------------------------------------
    def _billing(self, path: str) -> str:
        return f"{self.settings.billing_url}/v1/accounts/{self.account_id}/{path}"

    async def invoices(self, params: dict[str, str]) -> dict[str, Any]:
        return dict(await self._json("GET", self._billing("invoices"), params=params))

    async def invoice(self, invoice_id: str) -> dict[str, Any]:
        return dict(await self._json("GET", self._billing(f"invoices/{quote(invoice_id)}")))

    async def invoices_csv(self, params: dict[str, str]) -> bytes:
        return (await self._call("GET", self._billing("invoices.csv"), params=params)).content

    async def preview(self) -> dict[str, Any]:
        return dict(await self._json("GET", self._billing("billing/preview")))
