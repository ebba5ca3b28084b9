"""Commands of the identity service: each is one transaction over its own tables plus, where the fact is
public, an event appended to the account's stream (the outbox). OAuth errors are returned as values inside
a transaction and raised after it commits, so what must be remembered (a used code, a revoked family, a
failed sign-in) is remembered even though the caller gets an error.

The commands live in one module per job (accounts, sign-in, authorize, tokens, sessions, invitations,
members); ``Identity`` is all of them, bound to the runtime and settings."""

from __future__ import annotations

from unified_identity.accounts import Accounts
from unified_identity.authorize import Authorize
from unified_identity.invitations import grant_of
from unified_identity.members import Members, member_of
from unified_identity.results import (
    CSRF_SECRET_NAME,
    AuthorizeRequest,
    BrowserSession,
    SignedIn,
    SignedOut,
    SignInFailed,
    SignInThrottled,
)
from unified_identity.sessions import Sessions
from unified_identity.verification import EmailVerification

__all__ = [
    "CSRF_SECRET_NAME",
    "AuthorizeRequest",
    "BrowserSession",
    "Identity",
    "SignInFailed",
    "SignInThrottled",
    "SignedIn",
    "SignedOut",
    "grant_of",
    "member_of",
]


class Identity(Accounts, EmailVerification, Authorize, Sessions, Members):
    """The service's command handlers, bound to its runtime (pool, relay) and settings."""
