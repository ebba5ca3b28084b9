"""OAuth and OpenID Connect rules: secrets, PKCE, redirect URIs, scopes, the forms' CSRF token and single
sign-on (prompt, max_age, whether the browser session may be used)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from unified_identity.domain.errors import Invalid

_PKCE_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
_SECRET = re.compile(r"^[A-Za-z0-9_\-]{43}$")  # what new_secret() makes: cookie values look like this


def new_secret() -> str:
    """A random, URL-safe single-use secret (256 bits)."""
    return secrets.token_urlsafe(32)


def secret_hash(secret: str) -> bytes:
    """Secrets are high-entropy random values, so a plain SHA-256 is the right storage form."""
    return hashlib.sha256(secret.encode()).digest()


def s256_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def pkce_ok(verifier: str | None, challenge: str) -> bool:
    """RFC 7636 S256: BASE64URL(SHA256(verifier)) == challenge, compared in constant time."""
    if not verifier or not _PKCE_VERIFIER.match(verifier):
        return False
    return hmac.compare_digest(s256_challenge(verifier), challenge)


def valid_code_challenge(challenge: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z0-9\-_]{43}", challenge))


def redirect_uri_registered(redirect_uri: str, registered: Sequence[str]) -> bool:
    """Exact string match, as OAuth 2.0 Security BCP requires: no prefix, no normalisation."""
    return any(hmac.compare_digest(redirect_uri.encode(), r.encode()) for r in registered)


def scope_has(scope: str, value: str) -> bool:
    return value in scope.split()


# -- the sign-in form's CSRF token (signed double submit) ------------------------------------------------------
SIGN_IN_FORM = b"unified-identity/sign-in-form/v1"
SIGN_OUT_FORM = b"unified-identity/sign-out-form/v1"
CSRF_CLOCK_SKEW_S = 60


def looks_like_secret(value: str | None) -> bool:
    """A cookie value this service could have issued (anything else is ignored, never echoed or stored)."""
    return bool(value and _SECRET.match(value))


def csrf_token(key: bytes, binding: str, issued_at: int, *, purpose: bytes = SIGN_IN_FORM) -> str:
    """``<issued_at>.<HMAC(key, purpose | browser cookie | issued_at)>``: only this server can make one, and it
    is only good together with the browser cookie it was made for, so another site can neither forge nor
    plant a working sign-in form (login CSRF) or sign-out form (logout CSRF). ``purpose`` keeps a token of
    one form from being accepted by the other."""
    message = b"\x00".join((purpose, binding.encode(), str(issued_at).encode()))
    mac = hmac.new(key, message, hashlib.sha256).digest()
    return f"{issued_at}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


def csrf_token_ok(
    key: bytes,
    binding: str | None,
    token: str | None,
    *,
    now: int,
    ttl_s: int,
    purpose: bytes = SIGN_IN_FORM,
) -> bool:
    """The form's token matches the browser's cookie and the form, was made here and is not older than
    ``ttl_s``."""
    if not looks_like_secret(binding) or not token:
        return False
    assert binding is not None
    issued, _, _ = token.partition(".")
    # ASCII digits only: str.isdigit() also accepts "²" or "١", which int() then rejects (a 500, not a 403).
    if not re.fullmatch(r"[0-9]{1,12}", issued):
        return False
    issued_at = int(issued)
    if issued_at > now + CSRF_CLOCK_SKEW_S or now - issued_at > ttl_s:
        return False
    return hmac.compare_digest(csrf_token(key, binding, issued_at, purpose=purpose).encode(), token.encode())


# -- single sign-on: prompt, max_age and whether the browser session may be used -------------------------------
SsoOutcome = Literal["reuse_session", "show_form", "login_required"]


def parse_prompt(value: str | None) -> frozenset[str]:
    """OIDC Core 3.1.2.1: space-separated; ``none`` stands alone. Unknown values are ignored."""
    values = frozenset((value or "").split())
    if "none" in values and len(values) > 1:
        raise Invalid("prompt", "prompt=none cannot be combined with other prompt values")
    return values


def parse_max_age(value: str | None) -> int | None:
    """Seconds since the user last typed the password beyond which a new sign-in is required."""
    if value is None or value == "":
        return None
    if not re.fullmatch(r"\d{1,10}", value):
        raise Invalid("max_age", "max_age must be a non-negative whole number of seconds")
    return int(value)


def sso_outcome(
    *,
    prompt: frozenset[str],
    max_age: int | None,
    login_hint: str | None,
    session_auth_time: datetime | None,
    session_email: str | None,
    now: datetime,
) -> SsoOutcome:
    """What an authorization request gets, given the browser's (valid) session or None.

    The session is reused unless the client asks for a fresh sign-in (prompt=login or select_account),
    the password was typed longer than ``max_age`` ago, or ``login_hint`` names someone else. prompt=none
    never shows the form: without a usable session the answer is login_required."""
    usable = session_auth_time is not None and not ({"login", "select_account"} & prompt)
    if usable and max_age is not None:
        assert session_auth_time is not None
        usable = (now - session_auth_time).total_seconds() <= max_age
    if usable and login_hint and session_email is not None:
        usable = login_hint.strip().lower() == session_email.lower()
    if usable:
        return "reuse_session"
    return "login_required" if "none" in prompt else "show_form"
