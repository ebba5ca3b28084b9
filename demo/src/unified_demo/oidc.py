"""Sign in like a browser-less client: authorization code + PKCE (S256) with authlib's OAuth 2.0 client."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin

import httpx
from authlib.common.security import generate_token
from authlib.deprecate import AuthlibDeprecationWarning

with warnings.catch_warnings():  # authlib 1.9 announces a future httpx2 move on import; nothing to act on here
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.integrations.httpx_client import AsyncOAuth2Client


@dataclass(frozen=True, slots=True)
class Tokens:
    access_token: str
    refresh_token: str | None
    id_token: str | None

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


class _FormParser(HTMLParser):
    """The sign-in page's form: its action and the values of its inputs (hidden request fields too)."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form" and self.action is None:
            self.action = values.get("action", "")
        elif tag == "input" and values.get("name"):
            self.fields[values["name"]] = values.get("value", "")


async def sign_in(identity_url: str, client_id: str, redirect_uri: str, email: str, password: str) -> Tokens:
    async with httpx.AsyncClient(timeout=10) as http:
        discovery = (await http.get(f"{identity_url}/.well-known/openid-configuration")).json()
    async with AsyncOAuth2Client(
        client_id=client_id,
        redirect_uri=redirect_uri,
        scope="openid profile email offline_access",
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
        timeout=30,
    ) as client:
        verifier = generate_token(64)
        url, state = client.create_authorization_url(
            discovery["authorization_endpoint"], code_verifier=verifier, nonce=generate_token(16)
        )
        page = await client.request("GET", url, withhold_token=True)
        page.raise_for_status()
        form = _FormParser()
        form.feed(page.text)
        fields: dict[str, Any] = dict(form.fields)
        fields.update({"email": email, "password": password})
        action = urljoin(str(page.url), form.action or "")
        answer = await client.request("POST", action, data=fields, follow_redirects=False, withhold_token=True)
        if answer.status_code not in (302, 303):
            raise RuntimeError(f"sign-in failed for {email}: HTTP {answer.status_code} {answer.text[:200]}")
        callback = answer.headers["location"]
        token: dict[str, Any] = await client.fetch_token(
            discovery["token_endpoint"], authorization_response=callback, code_verifier=verifier, state=state
        )
    return Tokens(token["access_token"], token.get("refresh_token"), token.get("id_token"))
