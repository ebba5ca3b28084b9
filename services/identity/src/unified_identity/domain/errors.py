"""The identity rules' errors: the shared HTTP-free hierarchy (``unified_shared.errors``) plus the two refusals
only identity makes, ``Gone`` (a link or invitation that was used, revoked or expired) and ``MailRefused`` (the
mail server refused the message), and ``OAuthError`` (an RFC 6749 error code). Their statuses are decided once,
at the edge (``unified_identity.problems``; OAuth errors in ``oidc_web``)."""

from __future__ import annotations

from unified_shared.errors import Conflict, DomainError, Forbidden, Invalid, NotFound, RateLimited, Unauthorized

__all__ = [
    "Conflict",
    "DomainError",
    "Forbidden",
    "Gone",
    "Invalid",
    "MailRefused",
    "NotFound",
    "OAuthError",
    "RateLimited",
    "Unauthorized",
]


class Gone(DomainError):
    """It existed but may no longer be used (expired, revoked, already used)."""

    title = "Gone"


class MailRefused(DomainError):
    """The mail server refused the message this command must send (nothing was kept: the caller may retry)."""

    title = "Bad gateway"


class OAuthError(DomainError):
    """An RFC 6749 / OIDC error (``error`` code and description); the token and revocation endpoints answer it
    as ``{"error": ..., "error_description": ...}``, the browser endpoints as a page or an error redirect."""

    title = "OAuth error"

    def __init__(self, error: str, description: str) -> None:
        super().__init__(None, description)
        self.error = error
        self.description = description
