"""Rules about people: e-mail addresses, names and passwords."""

from __future__ import annotations

import re

from unified_identity.domain.errors import Invalid

PASSWORD_MIN_LENGTH = 12
PASSWORD_MAX_LENGTH = 256  # Argon2 accepts more; an upper bound keeps hashing cost bounded.

_EMAIL = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9-]{1,63})+$")


def normalize_email(email: str) -> str:
    """Trimmed and lowercased: the one form used for uniqueness, throttling and invitations."""
    value = email.strip().lower()
    if len(value) > 254 or not _EMAIL.match(value):
        raise Invalid("email", "email is not a valid address")
    return value


PERSON_NAME_MAX_LENGTH = 200


def person_name(value: str | None, *, field: str = "name") -> str | None:
    """A person's name as typed (trimmed; empty means none): printable text only, so it can go into a mail."""
    if value is None or not value.strip():
        return None
    name = " ".join(value.split())
    if len(name) > PERSON_NAME_MAX_LENGTH:
        raise Invalid(field, f"{field} must be at most {PERSON_NAME_MAX_LENGTH} characters")
    if not name.isprintable():
        raise Invalid(field, f"{field} must not contain control characters")
    return name


def _undecorated(password: str) -> set[str]:
    """The password without leading and/or trailing digits and symbols ("Password123!" -> "password")."""
    trailing = re.sub(r"[\d\W_]+$", "", password)
    leading = re.sub(r"^[\d\W_]+", "", password)
    return {trailing, leading, re.sub(r"^[\d\W_]+", "", trailing)}


def password_problems(password: str, *, email: str | None, common: frozenset[str]) -> list[str]:
    """What is wrong with a new password (empty list: acceptable)."""
    problems: list[str] = []
    if len(password) < PASSWORD_MIN_LENGTH:
        problems.append(f"must be at least {PASSWORD_MIN_LENGTH} characters long")
    if len(password) > PASSWORD_MAX_LENGTH:
        problems.append(f"must be at most {PASSWORD_MAX_LENGTH} characters long")
    lowered = password.lower()
    # A common password with a few characters of decoration around it is still a common password.
    cores = {c for c in _undecorated(lowered) if len(c) >= 4 and len(lowered) - len(c) <= 4}
    if lowered in common or any(c in common for c in cores):
        problems.append("is too common (it appears in a list of frequently used passwords)")
    if len(set(password)) <= 2:
        problems.append("repeats too few characters")
    if email and (lowered == email.lower() or lowered == email.lower().partition("@")[0]):
        problems.append("must not be your email address")
    return problems


def check_password(password: str, *, email: str | None, common: frozenset[str]) -> None:
    problems = password_problems(password, email=email, common=common)
    if problems:
        raise Invalid("password", "password " + "; ".join(problems))
