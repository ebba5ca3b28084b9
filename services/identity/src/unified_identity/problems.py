"""The one place identity's domain errors become HTTP: each kind's status and title, and the problem+json
answer (with ``WWW-Authenticate`` or ``Retry-After`` where the kind calls for one)."""

from __future__ import annotations

from unified_identity import domain
from unified_shared.problems import Problem

_STATUS: list[tuple[type[domain.DomainError], int, str]] = [
    (domain.Invalid, 422, "Invalid request"),
    (domain.Unauthenticated, 401, "Unauthorized"),
    (domain.Conflict, 409, "Conflict"),
    (domain.Forbidden, 403, "Forbidden"),
    (domain.NotFound, 404, "Not found"),
    (domain.Gone, 410, "Gone"),
    (domain.TooManyRequests, 429, "Too many requests"),
    (domain.Unavailable, 502, "Bad gateway"),
]


def status_of(exc: domain.DomainError) -> tuple[int, str]:
    """(HTTP status, title) of a domain error; an unlisted kind is a bad request."""
    for kind, status, title in _STATUS:
        if isinstance(exc, kind):
            return status, title
    return 400, "Bad request"


def problem_of(exc: domain.DomainError) -> Problem:
    status, title = status_of(exc)
    problem = Problem(status, title, exc.detail, **exc.extra)
    if isinstance(exc, domain.Unauthenticated):
        problem.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    if isinstance(exc, domain.TooManyRequests):
        problem.headers["Retry-After"] = str(exc.retry_after_s)
    return problem
