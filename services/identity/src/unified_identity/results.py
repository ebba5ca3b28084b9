"""What the commands return or raise (typed results, never wire dicts or database rows): sign-in outcomes,
sessions, sign-out, clients, tokens, user info, the team."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from unified_identity.domain.errors import OAuthError, RateLimited, Unauthorized
from unified_identity.domain.team import token_permissions

log = logging.getLogger(__name__)


class SignInFailed(Unauthorized):
    """Unknown email or wrong password: deliberately one answer for both."""

    def __init__(self) -> None:
        super().__init__("password", "incorrect email or password")


class SignInThrottled(RateLimited):
    """Too many failed sign-ins along one of the throttle's lines: one more is allowed after ``retry_after``."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(None, f"too many failed sign-ins; retry after {retry_after_s} s", retry_after=retry_after_s)


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
    """Who signed in, when, and through which browser session (None: not by single sign-on's cookie): what an
    authorization code is issued for."""

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


def scope_of(stored: str | list[str]) -> str | tuple[str, ...]:
    """A stored marketplace scope (``"*"`` or a list of IDs) as a result carries it."""
    return stored if isinstance(stored, str) else tuple(stored)


def access_of(membership: Mapping[str, Any]) -> dict[str, Any]:
    """A stored membership's role, permissions and marketplaces as the results (and tokens) say them."""
    return {
        "role": membership["role"],
        "permissions": tuple(token_permissions(membership["role"], membership["permissions"])),
        "marketplaces": scope_of(membership["marketplaces"]),
    }


@dataclass(frozen=True, slots=True)
class Client:
    """A registered OAuth client (``secret_hash`` None: a public client, PKCE only)."""

    client_id: str
    name: str
    redirect_uris: tuple[str, ...]
    post_logout_redirect_uris: tuple[str, ...]
    secret_hash: bytes | None


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """What the token endpoint issues: an access token, a refresh token and, for ``openid``, an ID token."""

    access_token: str
    expires_in: int
    scope: str
    refresh_token: str
    id_token: str | None = None
    token_type: str = "Bearer"


@dataclass(frozen=True, slots=True)
class UserInfo:
    """The signed-in user as userinfo tells it: the membership as it is now."""

    user_id: UUID
    email: str
    email_verified: bool
    name: str | None
    account_id: UUID
    account_name: str
    role: str
    permissions: tuple[str, ...]
    marketplaces: str | tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Member:
    """One member of the team as the member list shows it (permissions as the token would say them)."""

    user_id: UUID
    email: str
    name: str | None
    email_verified: bool
    role: str
    permissions: tuple[str, ...]
    marketplaces: str | tuple[str, ...]
    joined_at: datetime


@dataclass(frozen=True, slots=True)
class PendingInvitation:
    """An invitation that can still be accepted, as the team view lists it (permissions as granted)."""

    invitation_id: UUID
    email: str
    name: str | None
    role: str
    permissions: tuple[str, ...]
    marketplaces: str | tuple[str, ...]
    invited_by: UUID
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Team:
    """An account's members and its pending invitations: the team view."""

    account_id: UUID
    members: tuple[Member, ...]
    invitations: tuple[PendingInvitation, ...]


@dataclass(frozen=True, slots=True)
class VerificationMail:
    """The outcome of asking for a verification mail (``sent`` False: the address was verified already)."""

    email: str
    email_verified: bool
    sent: bool
    expires_in: int | None = None
