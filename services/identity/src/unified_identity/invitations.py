"""Team invitations: invite, revoke, accept."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from uuid import UUID, uuid4

import asyncpg

from unified_identity import domain, mail, store
from unified_identity.base import Base
from unified_identity.passwords import common_passwords
from unified_shared.auth import Principal
from unified_shared.contracts.identity import (
    InvitationAccepted,
    InvitationRevoked,
    UserInvited,
)

log = logging.getLogger(__name__)


class Invitations(Base):
    # -- team: invitations and members -------------------------------------------------------------------------
    async def _actor(self, conn: asyncpg.Connection, principal: Principal, account_id: UUID) -> asyncpg.Record:
        """The caller's membership as it is now (not as the token says), and the right to manage users."""
        principal.require_account(account_id)
        actor = await store.membership(conn, account_id, principal.user_id)
        if actor is None:
            raise domain.NotFound(None, "no such account")
        domain.check_can_manage(actor["role"])
        return actor

    async def _locked_actor(self, conn: asyncpg.Connection, principal: Principal, account_id: UUID) -> asyncpg.Record:
        """The account locked first (the lock order of every team command), then the caller as ``_actor``."""
        if await store.lock_account(conn, account_id) is None:
            raise domain.NotFound(None, "no such account")
        return await self._actor(conn, principal, account_id)

    @staticmethod
    async def _member(conn: asyncpg.Connection, account_id: UUID, user_id: UUID) -> asyncpg.Record:
        member = await store.membership(conn, account_id, user_id)
        if member is None:
            raise domain.NotFound(None, "no such member")
        return member

    async def invite(
        self,
        principal: Principal,
        account_id: UUID,
        *,
        email: str,
        role: str,
        permissions: list[str],
        marketplaces: str | list[str],
        name: str | None = None,
    ) -> tuple[UUID, datetime]:
        """``name``: the invitee's name as the inviter typed it (kept for the member list)."""
        invitee_name = domain.person_name(name)
        domain.check_invitable_role(role)
        perms = domain.check_permissions(permissions)
        scope = domain.resolve_scope(marketplaces)
        email_norm = domain.normalize_email(email)
        token = domain.new_secret()
        invitation_id = uuid4()
        now = self.clock()
        expires_at = now + timedelta(seconds=self.settings.invitation_ttl_s)
        async with self.pool.acquire() as conn, conn.transaction():
            account = await store.lock_account(conn, account_id)
            actor = await self._actor(conn, principal, account_id)
            assert account is not None
            domain.check_may_invite(grant_of(actor), domain.Grant.of(role, perms, scope))
            existing = await store.user_by_email(conn, email_norm)
            if existing is not None and await store.membership_of_user(conn, existing["user_id"]) is not None:
                raise domain.Conflict("email", "this email already belongs to a member of an account")
            await store.insert_invitation(
                conn,
                invitation_id=invitation_id,
                account_id=account_id,
                email=email_norm,
                access=store.Access(role, perms, scope),
                token_hash=domain.secret_hash(token),
                invited_by=principal.user_id,
                created_at=now,
                expires_at=expires_at,
                name=invitee_name,
            )
            await self._append(
                conn,
                account_id,
                UserInvited(
                    account_id=account_id,
                    invitation_id=invitation_id,
                    email=email_norm,
                    **domain.event_grant(role, perms, scope),
                    invited_by=principal.user_id,
                    expires_at=expires_at,
                    name=invitee_name,
                ),
            )
            # Sent before commit: if the mail server refuses, nothing was created and the caller may retry.
            # The token exists only in this mail; the database keeps its hash.
            message = mail.invitation_message(
                sender=self.settings.mail_from,
                to=email_norm,
                account_name=account["legal_name"],
                invitee_name=invitee_name,
                role=role,
                link=f"{self.settings.issuer}/invitations/accept?token={token}",
                expires_at=expires_at,
            )
            await mail.send_or_refuse(self.settings, message, "invitation")
        self.runtime.notify_relay()
        return invitation_id, expires_at

    async def revoke_invitation(self, principal: Principal, account_id: UUID, invitation_id: UUID) -> None:
        now = self.clock()
        async with self.pool.acquire() as conn, conn.transaction():
            actor = await self._locked_actor(conn, principal, account_id)
            invitation = await store.invitation(conn, account_id, invitation_id)
            if invitation is None:
                raise domain.NotFound(None, "no such invitation")
            domain.check_may_revoke_invitation(grant_of(actor), invitation["role"])
            if invitation["accepted_at"] is not None:
                raise domain.Conflict(None, "the invitation was already accepted; remove the member instead")
            if invitation["revoked_at"] is not None:
                return  # already revoked: nothing new happened
            await self._revoke_invitation_row(conn, invitation, revoked_by=principal.user_id, at=now)
        self.runtime.notify_relay()

    async def accept_invitation(self, token: str, password: str) -> tuple[UUID, UUID]:
        """Single use: the row is locked, checked and marked in one transaction. The inviter's authority is
        checked again, as it is now: an invitation from someone since removed, or offering more than its sender
        may grant today, is revoked (and the revocation published) instead of accepted."""
        now = self.clock()
        token_hash = domain.secret_hash(token)
        lapsed: domain.DomainError | None = None
        user_id: UUID | None = None
        async with self.pool.acquire() as conn, conn.transaction():
            # The account first, then the invitation: the lock order of every team command.
            account_id = await store.invitation_account_by_token(conn, token_hash)
            if account_id is None:
                raise domain.NotFound(None, "no such invitation")
            await store.lock_account(conn, account_id)
            invitation = await store.invitation_by_token(conn, token_hash)
            if invitation is None:
                raise domain.NotFound(None, "no such invitation")
            if invitation["revoked_at"] is not None:
                raise domain.Gone(None, "this invitation was revoked")
            if invitation["accepted_at"] is not None:
                raise domain.Gone(None, "this invitation was already used")
            if invitation["expires_at"] <= now:
                raise domain.Gone(None, "this invitation has expired")
            inviter = await store.membership(conn, account_id, invitation["invited_by"])
            lapsed = domain.inviter_refusal(grant_of(inviter) if inviter else None, grant_of(invitation))
            if lapsed is not None:
                # Remembered and published although the caller gets an error: the transaction commits.
                await self._revoke_invitation_row(conn, invitation, revoked_by=invitation["invited_by"], at=now)
            else:
                user_id = await self._join(conn, invitation, password, now)
        self.runtime.notify_relay()
        if lapsed is not None:
            raise lapsed
        assert user_id is not None
        return account_id, user_id

    async def _join(self, conn: asyncpg.Connection, invitation: asyncpg.Record, password: str, now: datetime) -> UUID:
        """The invited person becomes a member (a new user, or an existing user without a membership)."""
        email = invitation["email"]
        account_id = invitation["account_id"]
        domain.check_password(password, email=email, common=common_passwords())
        password_hash = await self.passwords.hash(password)
        user = await store.user_by_email(conn, email, for_update=True)
        if user is not None:
            if await store.membership_of_user(conn, user["user_id"]) is not None:
                raise domain.Conflict(None, "this email already belongs to a member of an account")
            user_id: UUID = user["user_id"]
            await store.set_password(conn, user_id, password_hash, email_verified=True)
            await store.name_user(conn, user_id, invitation["name"])
        else:
            user_id = uuid4()
            await store.insert_user(conn, user_id, email, password_hash, email_verified=True, name=invitation["name"])
        scope = invitation["marketplaces"]
        await store.insert_membership(
            conn,
            account_id=account_id,
            user_id=user_id,
            access=store.Access(invitation["role"], invitation["permissions"], scope),
            joined_at=now,
        )
        await store.mark_invitation_accepted(conn, invitation["invitation_id"], user_id, now)
        await self._append(
            conn,
            account_id,
            InvitationAccepted(
                account_id=account_id,
                invitation_id=invitation["invitation_id"],
                user_id=user_id,
                email=email,
                **domain.event_grant(invitation["role"], invitation["permissions"], scope),
                accepted_at=now,
                name=invitation["name"],
            ),
        )
        return user_id

    async def _revoke_invitation_row(
        self, conn: asyncpg.Connection, invitation: asyncpg.Record, *, revoked_by: UUID, at: datetime
    ) -> None:
        await store.mark_invitation_revoked(conn, invitation["invitation_id"], at)
        account_id = invitation["account_id"]
        await self._append(
            conn,
            account_id,
            InvitationRevoked(
                account_id=account_id, invitation_id=invitation["invitation_id"], revoked_by=revoked_by, revoked_at=at
            ),
        )

    async def _revoke_invitations_sent_by(
        self,
        conn: asyncpg.Connection,
        account_id: UUID,
        sender: UUID,
        sender_now: domain.Grant | None,
        *,
        revoked_by: UUID,
        at: datetime,
    ) -> None:
        """After a member's removal (``sender_now`` None) or change: the pending invitations it sent that it
        could not send any more are revoked, each published as InvitationRevoked."""
        for invitation in await store.pending_invitations_sent_by(conn, account_id, sender, at):
            if domain.inviter_refusal(sender_now, grant_of(invitation)) is not None:
                await self._revoke_invitation_row(conn, invitation, revoked_by=revoked_by, at=at)


def grant_of(membership: asyncpg.Record) -> domain.Grant:
    """A membership or invitation row as the domain's Grant (read from the database, not from a token)."""
    return domain.Grant.of(membership["role"], membership["permissions"], membership["marketplaces"])
