"""The one place identity's domain errors become HTTP: the shared mapping (``unified_shared.problems``) plus the
statuses of identity's own refusals (410 Gone, 502 when the mail server refused) and the Bearer challenge on a
401."""

from __future__ import annotations

from unified_identity import domain
from unified_shared import problems
from unified_shared.problems import Problem

_OWN: list[tuple[type[domain.DomainError], int]] = [(domain.Gone, 410), (domain.MailRefused, 502)]


def status_of(exc: domain.DomainError) -> int:
    return next((status for kind, status in _OWN if isinstance(exc, kind)), None) or problems.status_of(exc)


def problem_of(exc: domain.DomainError) -> Problem:
    own = next((status for kind, status in _OWN if isinstance(exc, kind)), None)
    if own is None:
        problem = problems.problem_of(exc)
    else:
        problem = Problem(own, exc.title, exc.detail, **({"field": exc.field} if exc.field else {}), **exc.extra)
    if isinstance(exc, domain.Unauthorized):
        problem.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    return problem
