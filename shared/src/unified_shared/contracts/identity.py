"""Events on ``identity.accounts.v1``."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal
from uuid import UUID

from unified_shared.events import AccountEvent, event_type
from unified_shared.topics import IDENTITY_ACCOUNTS

Role = Literal["owner", "admin", "member"]
Permission = Literal["orders", "messages", "reports", "billing"]


class _IdentityEvent(AccountEvent):
    """What the identity service tells about one account's team (registration, invitations, members) and its
    sign-in sessions. Keyed by the account: a consumer sees one account's team changes in the order made."""

    DOMAIN: ClassVar[str] = "identity"
    TOPIC: ClassVar[str] = IDENTITY_ACCOUNTS


@event_type
class AccountRegistered(_IdentityEvent):
    legal_name: str
    home_marketplace_id: str
    owner_user_id: UUID
    owner_email: str
    registered_at: datetime


@event_type
class UserInvited(_IdentityEvent):
    invitation_id: UUID
    email: str
    role: Role
    permissions: list[Permission]
    extra_permissions: list[str] = []  # permissions newer than this enum (e.g. "listings")
    marketplace_scope: list[str] | Literal["*"]
    invited_by: UUID
    expires_at: datetime
    # The invitee's name as the inviter typed it (optional: added later, older events have none).
    name: str | None = None


@event_type
class InvitationAccepted(_IdentityEvent):
    invitation_id: UUID
    user_id: UUID
    email: str
    role: Role
    permissions: list[Permission]
    extra_permissions: list[str] = []  # permissions newer than this enum (e.g. "listings")
    marketplace_scope: list[str] | Literal["*"]
    accepted_at: datetime
    name: str | None = None


@event_type
class InvitationRevoked(_IdentityEvent):
    invitation_id: UUID
    revoked_by: UUID
    revoked_at: datetime


@event_type
class MemberRoleChanged(_IdentityEvent):
    user_id: UUID
    role: Role
    permissions: list[Permission]
    extra_permissions: list[str] = []  # permissions newer than this enum (e.g. "listings")
    marketplace_scope: list[str] | Literal["*"]
    changed_by: UUID
    changed_at: datetime


@event_type
class MemberRemoved(_IdentityEvent):
    user_id: UUID
    removed_by: UUID
    removed_at: datetime


@event_type
class SessionRevoked(_IdentityEvent):
    """A sign-in session (one refresh-token family) ended: signed out, revoked by its client (``/revoke``), or
    its refresh token or code was reused. Every service refuses the access tokens whose ``sid`` claim names it
    from then on, without waiting for them to expire. (Removal and role changes end access by user and issue
    time instead: MemberRemoved, MemberRoleChanged.)"""

    user_id: UUID
    session_id: UUID
    reason: str
    revoked_at: datetime
