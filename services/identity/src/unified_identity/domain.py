"""Pure identity rules: roles and permissions, password policy, marketplace scope, PKCE, the sign-in
throttle and who may change whom. No I/O here, so every rule is unit tested directly."""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from unified_shared import catalog

OWNER = "owner"
ADMIN = "admin"
MEMBER = "member"
ROLES = (OWNER, ADMIN, MEMBER)
INVITABLE_ROLES = (ADMIN, MEMBER)
MEMBER_PERMISSIONS = ("orders", "messages", "reports", "listings")
BILLING = "billing"
OWNER_PERMISSIONS = (*MEMBER_PERMISSIONS, BILLING)

Scope = Literal["*"] | list[str]

PASSWORD_MIN_LENGTH = 12
PASSWORD_MAX_LENGTH = 256  # Argon2 accepts more; an upper bound keeps hashing cost bounded.

_EMAIL = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9-]{1,63})+$")
_PKCE_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
_SECRET = re.compile(r"^[A-Za-z0-9_\-]{43}$")  # what new_secret() makes: cookie values look like this


class DomainError(Exception):
    """A rule was broken; ``status`` is the HTTP status the API answers with."""

    status = 400
    title = "Bad request"

    def __init__(self, detail: str, **extra: object) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra: dict[str, Any] = dict(extra)


class Invalid(DomainError):
    status = 422
    title = "Invalid request"


class Unauthenticated(DomainError):
    status = 401
    title = "Unauthorized"


class Conflict(DomainError):
    status = 409
    title = "Conflict"


class Forbidden(DomainError):
    status = 403
    title = "Forbidden"


class NotFound(DomainError):
    status = 404
    title = "Not found"


class Gone(DomainError):
    status = 410
    title = "Gone"


class TooManyRequests(DomainError):
    status = 429
    title = "Too many requests"

    def __init__(self, detail: str, retry_after_s: int) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class Unavailable(DomainError):
    status = 502
    title = "Bad gateway"


# -- emails and passwords ---------------------------------------------------------------------------------
def normalize_email(email: str) -> str:
    """Trimmed and lowercased: the one form used for uniqueness, throttling and invitations."""
    value = email.strip().lower()
    if len(value) > 254 or not _EMAIL.match(value):
        raise Invalid("email is not a valid address", field="email")
    return value


PERSON_NAME_MAX_LENGTH = 200


def person_name(value: str | None, *, field: str = "name") -> str | None:
    """A person's name as typed (trimmed; empty means none): printable text only, so it can go into a mail."""
    if value is None or not value.strip():
        return None
    name = " ".join(value.split())
    if len(name) > PERSON_NAME_MAX_LENGTH:
        raise Invalid(f"{field} must be at most {PERSON_NAME_MAX_LENGTH} characters", field=field)
    if not name.isprintable():
        raise Invalid(f"{field} must not contain control characters", field=field)
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
        raise Invalid("password " + "; ".join(problems), field="password")


# -- roles, permissions and scope ---------------------------------------------------------------------------
def resolve_marketplace(ref: str, *, field: str = "home_marketplace") -> str:
    try:
        return catalog.resolve(ref).marketplace_id
    except catalog.UnknownMarketplace:
        raise Invalid(f"unknown marketplace {ref!r}", field=field) from None


def resolve_scope(value: str | Sequence[str]) -> Scope:
    """``"*"`` or a list of codes/IDs ("DE", "A13V1IB3VIYZZH") -> ``"*"`` or sorted unique SP-API IDs."""
    if isinstance(value, str):
        if value == "*":
            return "*"
        raise Invalid('marketplaces must be "*" or a list of marketplace codes or IDs', field="marketplaces")
    if "*" in value:
        return "*"
    ids = sorted({resolve_marketplace(ref, field="marketplaces") for ref in value})
    if not ids:
        raise Invalid('marketplaces must name at least one marketplace (or be "*")', field="marketplaces")
    return ids


def check_permissions(permissions: Iterable[str]) -> list[str]:
    perms = sorted(set(permissions))
    if BILLING in perms:
        raise Forbidden("only the owner holds the billing permission", field="permissions")
    unknown = [p for p in perms if p not in MEMBER_PERMISSIONS]
    if unknown:
        raise Invalid(f"unknown permissions: {', '.join(unknown)}", field="permissions")
    return perms


# The values the v1 identity events may carry in ``permissions`` (their schema is an enum): permissions
# added later travel in the optional ``extra_permissions``, so consumers of v1 never meet an unknown value.
EVENT_V1_PERMISSIONS = frozenset({"orders", "messages", "reports", BILLING})


def event_permissions(permissions: Iterable[str]) -> dict[str, list[str]]:
    """``permissions`` and ``extra_permissions`` of an identity event for this set of permissions."""
    perms = sorted(set(permissions))
    return {
        "permissions": [p for p in perms if p in EVENT_V1_PERMISSIONS],
        "extra_permissions": [p for p in perms if p not in EVENT_V1_PERMISSIONS],
    }


def token_permissions(role: str, permissions: Iterable[str]) -> list[str]:
    """What the access token says: the owner holds every permission, billing included."""
    if role == OWNER:
        return list(OWNER_PERMISSIONS)
    return sorted(p for p in set(permissions) if p in MEMBER_PERMISSIONS)


def can_manage_users(role: str) -> bool:
    return role in (OWNER, ADMIN)


def check_can_manage(actor_role: str) -> None:
    if not can_manage_users(actor_role):
        raise Forbidden("only the owner or an admin manages users")


def check_invitable_role(role: str) -> None:
    if role not in INVITABLE_ROLES:
        raise Invalid("role must be 'admin' or 'member' (an account has exactly one owner)", field="role")


def check_change_target(target_role: str) -> None:
    """The owner cannot be demoted or removed: there is always exactly one."""
    if target_role == OWNER:
        raise Forbidden("the owner cannot be removed or demoted")


# -- who may manage whom, and grant what -------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Grant:
    """What a membership or an invitation holds: a role, permissions and a marketplace scope."""

    role: str
    permissions: frozenset[str]
    marketplaces: Literal["*"] | frozenset[str]

    @classmethod
    def of(cls, role: str, permissions: Iterable[str], marketplaces: str | Iterable[str]) -> Grant:
        scope: Literal["*"] | frozenset[str]
        if isinstance(marketplaces, str):
            scope = "*" if marketplaces == "*" else frozenset({marketplaces})
        else:
            scope = frozenset(marketplaces)
        return cls(role, frozenset(permissions), scope)

    def effective_permissions(self) -> frozenset[str]:
        """The owner holds every permission whatever its row says; everyone else what was granted."""
        return frozenset(OWNER_PERMISSIONS) if self.role == OWNER else self.permissions

    def effective_scope(self) -> Literal["*"] | frozenset[str]:
        return "*" if self.role == OWNER else self.marketplaces


def _codes(marketplace_ids: Iterable[str]) -> str:
    """Marketplace IDs as their store codes for messages ("A1PA6795UKMFR9" -> "DE")."""
    out = []
    for mid in sorted(marketplace_ids):
        try:
            out.append(catalog.by_id(mid).code)
        except catalog.UnknownMarketplace:
            out.append(mid)
    return ", ".join(out)


def widens(old: Grant | None, new: Grant) -> bool:
    """Whether ``new`` gives anything ``old`` did not: a permission or a marketplace (None: nothing held)."""
    if old is None:
        return True
    if new.permissions - old.permissions:
        return True
    if new.marketplaces == "*":
        return old.marketplaces != "*"
    return old.marketplaces != "*" and bool(new.marketplaces - old.marketplaces)


def check_grant_within(actor: Grant, new: Grant, old: Grant | None = None) -> None:
    """An admin grants only what it holds itself. When a change gives the target anything new, the whole
    resulting grant must lie within the admin's permissions and scope (a new permission would otherwise reach
    marketplaces the admin does not cover, and a new marketplace permissions it does not hold); a change that
    only takes away is always allowed. The owner holds everything, so it may grant anything."""
    if actor.role == OWNER or not widens(old, new):
        return
    held = actor.effective_permissions()
    missing = new.permissions - held
    if missing:
        raise Forbidden(
            f"you can grant only permissions you hold yourself; you do not hold: {', '.join(sorted(missing))}",
            field="permissions",
        )
    scope = actor.effective_scope()
    if scope == "*":
        return
    if new.marketplaces == "*":
        raise Forbidden(
            'you can grant "*" (every marketplace) only if your own scope is "*"; yours is: ' + _codes(scope),
            field="marketplaces",
        )
    outside = new.marketplaces - scope
    if outside:
        raise Forbidden(
            f"you can grant only marketplaces within your own scope; outside it: {_codes(outside)}",
            field="marketplaces",
        )


def check_may_invite(actor: Grant, invited: Grant) -> None:
    """The owner invites anyone; an admin invites only members, with no more than it holds itself."""
    check_can_manage(actor.role)
    check_invitable_role(invited.role)
    if invited.role == ADMIN and actor.role != OWNER:
        raise Forbidden("only the owner invites admins", field="role")
    check_grant_within(actor, invited)


def inviter_refusal(inviter: Grant | None, invited: Grant) -> DomainError | None:
    """Why an invitation may no longer be accepted because of who sent it (None: it still may): the invite
    rule applied again to the inviter's membership as it is now. An invitation carries its sender's authority;
    once the sender is gone, or no longer may grant what it offers, neither may the invitation."""
    if inviter is None:
        return Gone("the person who sent this invitation is no longer a member of the team; the invitation was revoked")
    try:
        check_may_invite(inviter, invited)
    except DomainError as exc:
        return Forbidden(
            f"the person who sent this invitation may no longer grant what it offers ({exc.detail}); "
            "the invitation was revoked"
        )
    return None


def check_may_change(actor: Grant, target: Grant, new: Grant, *, is_self: bool) -> None:
    """The owner changes anyone but itself; an admin changes only members, never into admins, and widens their
    access only within its own; nobody changes their own role, permissions or scope."""
    check_can_manage(actor.role)
    check_change_target(target.role)
    if is_self:
        raise Forbidden("nobody changes their own role, permissions or marketplace scope")
    check_invitable_role(new.role)
    if actor.role != OWNER:
        if target.role != MEMBER:
            raise Forbidden("an admin manages only members; only the owner changes an admin")
        if new.role == ADMIN:
            raise Forbidden("only the owner makes someone an admin", field="role")
    check_grant_within(actor, new, target)


def check_may_remove(actor: Grant, target_role: str, *, is_self: bool) -> None:
    """The owner removes anyone but itself; an admin removes only members, not itself."""
    check_can_manage(actor.role)
    check_change_target(target_role)
    if is_self:
        raise Forbidden("nobody removes themselves from the account; the owner can remove you")
    if actor.role != OWNER and target_role != MEMBER:
        raise Forbidden("an admin removes only members; only the owner removes an admin")


def check_may_revoke_invitation(actor: Grant, invited_role: str) -> None:
    """An admin manages only members, so it revokes only invitations of members (the owner revokes any)."""
    check_can_manage(actor.role)
    if actor.role != OWNER and invited_role != MEMBER:
        raise Forbidden("an admin revokes only invitations of members; only the owner revokes an admin's")


# -- secrets, PKCE and redirect URIs ------------------------------------------------------------------------
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


# -- sign-in throttle ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    max_failures: int
    window: timedelta


def retry_after_s(failures: Sequence[datetime], now: datetime, policy: ThrottlePolicy) -> int | None:
    """Seconds until one more attempt is allowed, or None if it is allowed now.

    ``failures`` are the failed attempts for one email; those older than the window no longer count.
    Blocked while ``max_failures`` or more fall within the window; it opens when enough of them age out.
    """
    recent = sorted(f for f in failures if f > now - policy.window)
    if len(recent) < policy.max_failures:
        return None
    # Allowed again once only max_failures - 1 remain: when the (len - max + 1)-th oldest ages out.
    opens_at = recent[len(recent) - policy.max_failures] + policy.window
    return max(1, math.ceil((opens_at - now).total_seconds()))


@dataclass(frozen=True, slots=True)
class SignInLimits:
    """Failed sign-ins counted along four lines, each with its own ceiling (DESIGN 11): per email and source
    address (the owner's own typos, and one attacker on one e-mail), per address (spraying many e-mails from
    one place), per e-mail from anywhere (a higher ceiling: a distributed attack on one account) and per
    client. An attacker hammering an e-mail from one address exhausts its own pair and address, not the
    owner's: the owner still signs in from elsewhere."""

    per_email_and_address: ThrottlePolicy
    per_address: ThrottlePolicy
    per_email: ThrottlePolicy
    per_client: ThrottlePolicy


def longest_wait(counted: Iterable[tuple[Sequence[datetime], ThrottlePolicy]], now: datetime) -> int | None:
    """The wait the strictest line imposes (None: every line allows one more attempt now)."""
    waits = [w for failures, policy in counted if (w := retry_after_s(failures, now, policy)) is not None]
    return max(waits) if waits else None


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
        raise Invalid("prompt=none cannot be combined with other prompt values", field="prompt")
    return values


def parse_max_age(value: str | None) -> int | None:
    """Seconds since the user last typed the password beyond which a new sign-in is required."""
    if value is None or value == "":
        return None
    if not re.fullmatch(r"\d{1,10}", value):
        raise Invalid("max_age must be a non-negative whole number of seconds", field="max_age")
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
