"""Roles, permissions, marketplace scope, and who may invite, change or remove whom."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from unified_identity.domain.errors import DomainError, Forbidden, Gone, Invalid
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


def resolve_marketplace(ref: str, *, field: str = "home_marketplace") -> str:
    try:
        return catalog.resolve(ref).marketplace_id
    except catalog.UnknownMarketplace:
        raise Invalid(field, f"unknown marketplace {ref!r}") from None


def resolve_scope(value: str | Sequence[str]) -> Scope:
    """``"*"`` or a list of codes/IDs ("DE", "A13V1IB3VIYZZH") -> ``"*"`` or sorted unique SP-API IDs."""
    if isinstance(value, str):
        if value == "*":
            return "*"
        raise Invalid("marketplaces", 'marketplaces must be "*" or a list of marketplace codes or IDs')
    if "*" in value:
        return "*"
    ids = sorted({resolve_marketplace(ref, field="marketplaces") for ref in value})
    if not ids:
        raise Invalid("marketplaces", 'marketplaces must name at least one marketplace (or be "*")')
    return ids


def check_permissions(permissions: Iterable[str]) -> list[str]:
    perms = sorted(set(permissions))
    if BILLING in perms:
        raise Forbidden("permissions", "only the owner holds the billing permission")
    unknown = [p for p in perms if p not in MEMBER_PERMISSIONS]
    if unknown:
        raise Invalid("permissions", f"unknown permissions: {', '.join(unknown)}")
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


def event_grant(role: str, permissions: Iterable[str], scope: str | Sequence[str]) -> dict[str, Any]:
    """The grant fields of a team event (UserInvited, InvitationAccepted, MemberRoleChanged): the role, the
    permissions as ``event_permissions`` splits them, and the marketplace scope (``"*"`` or IDs) as given."""
    return {"role": role, **event_permissions(permissions), "marketplace_scope": scope}


def token_permissions(role: str, permissions: Iterable[str]) -> list[str]:
    """What the access token says: the owner holds every permission, billing included."""
    if role == OWNER:
        return list(OWNER_PERMISSIONS)
    return sorted(p for p in set(permissions) if p in MEMBER_PERMISSIONS)


def can_manage_users(role: str) -> bool:
    return role in (OWNER, ADMIN)


def check_can_manage(actor_role: str) -> None:
    if not can_manage_users(actor_role):
        raise Forbidden(None, "only the owner or an admin manages users")


def check_invitable_role(role: str) -> None:
    if role not in INVITABLE_ROLES:
        raise Invalid("role", "role must be 'admin' or 'member' (an account has exactly one owner)")


def check_change_target(target_role: str) -> None:
    """The owner cannot be demoted or removed: there is always exactly one."""
    if target_role == OWNER:
        raise Forbidden(None, "the owner cannot be removed or demoted")


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
            "permissions",
            f"you can grant only permissions you hold yourself; you do not hold: {', '.join(sorted(missing))}",
        )
    scope = actor.effective_scope()
    if scope == "*":
        return
    if new.marketplaces == "*":
        raise Forbidden(
            "marketplaces",
            'you can grant "*" (every marketplace) only if your own scope is "*"; yours is: ' + _codes(scope),
        )
    outside = new.marketplaces - scope
    if outside:
        raise Forbidden(
            "marketplaces", f"you can grant only marketplaces within your own scope; outside it: {_codes(outside)}"
        )


def check_may_invite(actor: Grant, invited: Grant) -> None:
    """The owner invites anyone; an admin invites only members, with no more than it holds itself."""
    check_can_manage(actor.role)
    check_invitable_role(invited.role)
    if invited.role == ADMIN and actor.role != OWNER:
        raise Forbidden("role", "only the owner invites admins")
    check_grant_within(actor, invited)


def inviter_refusal(inviter: Grant | None, invited: Grant) -> DomainError | None:
    """Why an invitation may no longer be accepted because of who sent it (None: it still may): the invite
    rule applied again to the inviter's membership as it is now. An invitation carries its sender's authority;
    once the sender is gone, or no longer may grant what it offers, neither may the invitation."""
    if inviter is None:
        return Gone(
            None, "the person who sent this invitation is no longer a member of the team; the invitation was revoked"
        )
    try:
        check_may_invite(inviter, invited)
    except DomainError as exc:
        return Forbidden(
            None,
            f"the person who sent this invitation may no longer grant what it offers ({exc.detail}); "
            "the invitation was revoked",
        )
    return None


def check_may_change(actor: Grant, target: Grant, new: Grant, *, is_self: bool) -> None:
    """The owner changes anyone but itself; an admin changes only members, never into admins, and widens their
    access only within its own; nobody changes their own role, permissions or scope."""
    check_can_manage(actor.role)
    check_change_target(target.role)
    if is_self:
        raise Forbidden(None, "nobody changes their own role, permissions or marketplace scope")
    check_invitable_role(new.role)
    if actor.role != OWNER:
        if target.role != MEMBER:
            raise Forbidden(None, "an admin manages only members; only the owner changes an admin")
        if new.role == ADMIN:
            raise Forbidden("role", "only the owner makes someone an admin")
    check_grant_within(actor, new, target)


def check_may_remove(actor: Grant, target_role: str, *, is_self: bool) -> None:
    """The owner removes anyone but itself; an admin removes only members, not itself."""
    check_can_manage(actor.role)
    check_change_target(target_role)
    if is_self:
        raise Forbidden(None, "nobody removes themselves from the account; the owner can remove you")
    if actor.role != OWNER and target_role != MEMBER:
        raise Forbidden(None, "an admin removes only members; only the owner removes an admin")


def check_may_revoke_invitation(actor: Grant, invited_role: str) -> None:
    """An admin manages only members, so it revokes only invitations of members (the owner revokes any)."""
    check_can_manage(actor.role)
    if actor.role != OWNER and invited_role != MEMBER:
        raise Forbidden(None, "an admin revokes only invitations of members; only the owner revokes an admin's")
