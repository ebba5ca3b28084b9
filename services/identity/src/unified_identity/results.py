"""What the commands return or raise: OAuth errors, sign-in outcomes, sessions, sign-out."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


class OAuthError(Exception):
    """An RFC 6749 / OIDC error: ``{"error": ..., "error_description": ...}``."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status


class SignInFailed(Exception):
    """Unknown email or wrong password: deliberately one answer for both."""


class SignInThrottled(Exception):
    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"too many failed sign-ins; retry after {retry_after_s} s")
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class AuthorizeRequest:
    """The validated parameters of an authorization request (PKCE S256 only)."""

    client_id: str
    redirect_uri: str
    scope: str
    state: str | None
    nonce: str | None
    code_challenge: str
    prompt: frozenset[str] = frozenset()
    max_age: int | None = None
    login_hint: str | None = None


@dataclass(frozen=True, slots=True)
class SignedIn:
    user_id: UUID
    account_id: UUID
    auth_time: datetime
    browser_session_id: UUID | None = None


@dataclass(frozen=True, slots=True)
class BrowserSession:
    """A live single sign-on session, as named by the browser's cookie."""

    browser_session_id: UUID
    user_id: UUID
    account_id: UUID
    email: str
    auth_time: datetime
    expires_at: datetime

    def signed_in(self) -> SignedIn:
        return SignedIn(self.user_id, self.account_id, self.auth_time, self.browser_session_id)


@dataclass(frozen=True, slots=True)
class SignedOut:
    """End-session's outcome. ``confirm``: nothing was ended, the browser's signed-in user must confirm first
    (no ID token of theirs came with the request). Else the sessions are ended; ``refused`` if the post-logout
    URI is not followed; ``clear_cookie`` unless the cookie names a live session that was left alone."""

    redirect_to: str | None
    refused: OAuthError | None = None
    clear_cookie: bool = True
    confirm: BrowserSession | None = None


CSRF_SECRET_NAME = "sign-in-form-csrf"
