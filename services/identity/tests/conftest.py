"""Fixtures: the identity service on a real socket against a fresh database and the real Kafka, an in-process
SMTP sink (aiosmtpd) writing .eml files, and an OAuth client's callback server."""

from __future__ import annotations

import contextlib
import email
import email.policy
import re
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI, Request

from unified_identity.app import create_service_app
from unified_identity.keys import new_key_encryption_key
from unified_identity.mail import sink_controller
from unified_identity.settings import Settings
from unified_shared.db import connect
from unified_shared.testing import serve_app

STRONG_PASSWORD = "correct horse battery staple 42"
KEY_ENCRYPTION_KEY = new_key_encryption_key()
CLI_CLIENT = "unified-seller-cli"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class FormParser(HTMLParser):
    """Collects a page's <input> names and values and its error message, as a browser would see them."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}
        self.action: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form":
            self.action = a.get("action")
        if tag == "input" and a.get("name"):
            self.fields[str(a["name"])] = a.get("value") or ""


def form_fields(html: str) -> dict[str, str]:
    parser = FormParser()
    parser.feed(html)
    return parser.fields


@dataclass
class Sink:
    directory: Path
    port: int

    def mails(self) -> list[email.message.EmailMessage]:
        out = []
        for path in sorted(self.directory.glob("*.eml")):
            msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            out.append(msg)  # type: ignore[arg-type]
        return out

    def wait_for_mail_to(self, address: str, timeout_s: float = 10.0) -> email.message.EmailMessage:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for msg in self.mails():
                if msg["To"] == address:
                    return msg
            time.sleep(0.05)
        raise AssertionError(f"no mail to {address} in {self.directory}")

    def link_to(self, address: str) -> str:
        msg = self.wait_for_mail_to(address)
        body = msg.get_body(preferencelist=("plain",))
        assert body is not None
        match = re.search(r"(http://\S+/invitations/accept\?token=[A-Za-z0-9_\-]+)", body.get_content())
        assert match, body.get_content()
        return match.group(1)


@pytest.fixture
def smtp_sink(tmp_path: Path) -> Iterator[Sink]:
    port = free_port()
    controller = sink_controller(tmp_path / "mail", port=port)
    controller.start()
    try:
        yield Sink(tmp_path / "mail", port)
    finally:
        controller.stop()


@dataclass
class Callback:
    """The OAuth client's redirect URI: a real HTTP endpoint that records what the browser brought back."""

    url: str
    received: list[dict[str, str]] = field(default_factory=list)


@pytest.fixture
async def callback() -> AsyncIterator[Callback]:
    app = FastAPI()
    holder: list[Callback] = []

    @app.get("/callback")
    async def cb(request: Request) -> dict[str, Any]:
        params = dict(request.query_params)
        holder[0].received.append(params)
        return {"received": True}

    async with serve_app(app) as base:
        cb_obj = Callback(f"{base}/callback")
        holder.append(cb_obj)
        yield cb_obj


@dataclass
class Service:
    base: str
    settings: Settings
    dsn: str
    sink: Sink
    callback: Callback

    async def db(self) -> asyncpg.Connection:
        return await connect(self.dsn)

    async def register(
        self, client: httpx.AsyncClient, *, email_addr: str | None = None, home: str = "DE", name: str = "Acme GmbH"
    ) -> tuple[str, str, str]:
        """Register an account; returns (account_id, user_id, email)."""
        email_addr = email_addr or f"owner-{uuid.uuid4().hex[:10]}@example.com"
        r = await client.post(
            f"{self.base}/v1/accounts",
            json={"legal_name": name, "home_marketplace": home, "email": email_addr, "password": STRONG_PASSWORD},
        )
        assert r.status_code == 201, r.text
        body = r.json()
        return body["account_id"], body["user_id"], email_addr

    async def refresh(
        self, client: httpx.AsyncClient, refresh_token: str, client_id: str = CLI_CLIENT
    ) -> httpx.Response:
        """POST /token with the refresh_token grant of a public client (no secret): the holder's next tokens."""
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id}
        return await client.post(f"{self.base}/token", data=form)

    def authorize_params(self, **extra: str) -> dict[str, str]:
        """A valid authorization request of the default client (fixed PKCE challenge)."""
        return {
            "response_type": "code",
            "client_id": CLI_CLIENT,
            "redirect_uri": self.callback.url,
            "scope": "openid",
            "state": "st",
            "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "code_challenge_method": "S256",
            **extra,
        }

    async def authorize_get(self, client: httpx.AsyncClient, **extra: str) -> tuple[httpx.Response, dict[str, str]]:
        """GET /authorize as a browser (cookies stay in ``client``): the answer and its form's fields, if any."""
        r = await client.get(f"{self.base}/authorize", params=self.authorize_params(**extra))
        return r, form_fields(r.text) if r.status_code != 302 else {}


def make_settings(dsn: str, kafka: str, sink: Sink, callback_url: str, port: int, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": dsn,
        "kafka_bootstrap_servers": kafka,
        "public_url": f"http://127.0.0.1:{port}",
        "smtp_port": sink.port,
        "smtp_sink_dir": str(sink.directory),
        "cli_redirect_uris": callback_url,
        "cli_post_logout_redirect_uris": callback_url.replace("/callback", "/signed-out"),
        # Cheaper Argon2id than production so the suite stays fast; still Argon2id.
        "argon2_time_cost": 1,
        "argon2_memory_kib": 8192,
        "argon2_parallelism": 1,
        "relay_poll_interval_s": 0.1,
        # Generated per test run, as the state folder's secrets are: never a committed value.
        "identity_key_encryption_key": KEY_ENCRYPTION_KEY,
        **overrides,
    }
    return Settings(**values)


@pytest.fixture
async def service(fresh_db: str, kafka_bootstrap: str, smtp_sink: Sink, callback: Callback) -> AsyncIterator[Service]:
    port = free_port()
    settings = make_settings(fresh_db, kafka_bootstrap, smtp_sink, callback.url, port)
    async with serve_app(create_service_app(settings), port=port) as base:
        yield Service(base, settings, fresh_db, smtp_sink, callback)


@pytest.fixture
def other_instance(service: Service) -> Any:
    """Starts a second instance of the service on the same database (as another process would be)."""

    @contextlib.asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[str]:
        port = free_port()
        settings = service.settings.model_copy(update={"http_port": port, **overrides})
        async with serve_app(create_service_app(settings), port=port) as base:
            yield base

    return start


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=20.0) as client:
        yield client


@dataclass
class SignIn:
    """A complete code + PKCE sign-in driven by authlib's OAuth 2.0 client, as a browser-less app would."""

    service: Service

    def client(self) -> Any:
        from authlib.integrations.httpx_client import AsyncOAuth2Client

        return AsyncOAuth2Client(
            client_id=CLI_CLIENT,
            redirect_uri=self.service.callback.url,
            scope="openid email offline_access",
            code_challenge_method="S256",
            token_endpoint_auth_method="none",
            timeout=20.0,
        )

    async def authorize(self, client: Any, email_addr: str, password: str) -> tuple[httpx.Response, str, str, str]:
        """GET /authorize, POST the form, follow the redirect. Returns (final response, verifier, state, nonce)."""
        from authlib.common.security import generate_token

        base = self.service.base
        verifier = generate_token(64)
        nonce = generate_token(16)
        url, state = client.create_authorization_url(f"{base}/authorize", code_verifier=verifier, nonce=nonce)
        page = await client.request("GET", url, withhold_token=True)
        assert page.status_code == 200, page.text
        fields = form_fields(page.text)
        fields.update({"email": email_addr, "password": password})
        final = await client.request(
            "POST", f"{base}/authorize", data=fields, follow_redirects=True, withhold_token=True
        )
        return final, verifier, state, nonce

    async def new_owner(self, http: httpx.AsyncClient, **account: Any) -> tuple[str, str, str, dict[str, Any]]:
        """A newly registered account whose owner signed in: (account_id, user_id, email, token)."""
        account_id, user_id, email_addr = await self.service.register(http, **account)
        client, token = await self(email_addr)
        await client.aclose()
        return account_id, user_id, email_addr, token

    async def __call__(self, email_addr: str, password: str = STRONG_PASSWORD) -> tuple[Any, dict[str, Any]]:
        client = self.client()
        final, verifier, state, _ = await self.authorize(client, email_addr, password)
        assert final.status_code == 200, final.text
        token = await client.fetch_token(
            f"{self.service.base}/token", authorization_response=str(final.url), code_verifier=verifier, state=state
        )
        return client, dict(token)


@pytest.fixture
def sign_in(service: Service) -> SignIn:
    return SignIn(service)
