"""The identity rules' errors: what went wrong in domain terms, no HTTP. The app maps each kind to a status
once (``app.py``); ``extra`` (e.g. ``field``) travels into the problem body."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A rule was broken."""

    def __init__(self, detail: str, **extra: object) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra: dict[str, Any] = dict(extra)


class Invalid(DomainError):
    """The input breaks a rule (names ``field``)."""


class Unauthenticated(DomainError):
    """The caller's credential names nothing live."""


class Conflict(DomainError):
    """The request collides with what is stored."""


class Forbidden(DomainError):
    """The caller may not do this."""


class NotFound(DomainError):
    """No such thing (or not visible to the caller)."""


class Gone(DomainError):
    """It existed but may no longer be used (expired, revoked, used)."""


class TooManyRequests(DomainError):
    """A throttle: one more attempt is allowed after ``retry_after_s``."""

    def __init__(self, detail: str, retry_after_s: int) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class Unavailable(DomainError):
    """A system this command needs (the mail server) refused."""


class OAuthError(DomainError):
    """An RFC 6749 / OIDC error (``error`` code and description); the token and revocation endpoints answer it
    as ``{"error": ..., "error_description": ...}``, the browser endpoints as a page or an error redirect."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
