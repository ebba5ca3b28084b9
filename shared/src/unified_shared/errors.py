"""The domain's refusals, free of HTTP: raised by domain rules and handlers, mapped to problem+json once.

Each error names the request ``field`` at fault (None when no single field is) and a ``detail`` for people;
``extra`` carries facts a client can act on (the right region, a limit). The HTTP status of each class lives
in ``unified_shared.problems`` (``problem_of``), which the shared app installs as an exception handler.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class DomainError(Exception):
    """A command or query refused by a rule. ``title`` overrides the class's short title."""

    title = "Invalid request"

    def __init__(self, field: str | None, detail: str, *, title: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.field = field
        self.detail = detail
        if title is not None:
            self.title = title
        self.extra = extra


class Invalid(DomainError):
    """The input breaks a rule on its own (a malformed or out-of-range value)."""


class Unauthorized(DomainError):
    """The caller is not who it must be (no or bad credentials)."""

    title = "Unauthorized"


class Forbidden(DomainError):
    """The caller is known but may not do this (outside its role or marketplace scope)."""

    title = "Forbidden"


class NotFound(DomainError):
    """No such thing, or none the caller may see (outside the scope looks like absent)."""

    title = "Not found"


class Conflict(DomainError):
    """The input is fine but clashes with the stored state (an older update, another content for an ID)."""

    title = "Conflict"


class Unavailable(DomainError):
    """Not possible yet, worth retrying after ``retry_after`` seconds (a fact not learned yet)."""

    title = "Temporarily unavailable"

    def __init__(self, field: str | None, detail: str, *, retry_after: int = 1, **extra: Any) -> None:
        super().__init__(field, detail, **extra)
        self.retry_after = retry_after


class RateLimited(Unavailable):
    """Too many attempts: wait ``retry_after`` seconds."""

    title = "Too many requests"


@contextmanager
def adding(**facts: Any) -> Iterator[None]:
    """Domain errors raised inside also carry ``facts`` (e.g. which order of a request was refused)."""
    try:
        yield
    except DomainError as exc:
        exc.extra = {**exc.extra, **facts}
        raise
