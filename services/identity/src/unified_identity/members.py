"""Team members: list, change, remove."""

from __future__ import annotations

import logging
from uuid import UUID

import asyncpg

from unified_identity import domain, session_store, store
from unified_identity.invitations import Invitations, grant_of
from unified_identity.results import Member, PendingInvitation, Team, access_of, scope_of
from unified_shared.auth import Principal
from unified_shared.contracts.identity import (
    MemberRemoved,
    MemberRoleChanged,
)

log = logging.getLogger(__name__)


class Members(Invitations):
    async def members(self, principal: Principal, account_id: UUID) -> Team:
        now = self.clock()
        async with self.pool.acquire() as conn:
            await self._actor(conn, principal, account_id)
            rows = await store.members(conn, account_id)
            pending = await store.pending_invitations(conn, account_id, now)
        return Team(
            account_id=account_id,
            members=tuple(member_of(r) for r in rows),
            invitations=tuple(
                PendingInvitation(
                    invitation_id=i["invitation_id"],
                    email=i["email"],
                    name=i["name"],
                    role=i["role"],
                    permissions=tuple(i["permissions"]),
                    marketplaces=scope_of(i["marketplaces"]),
                    invited_by=i["invited_by"],
                    created_at=i["created_at"],
                    expires_at=i["expires_at"],
                )
                for i in pending
            ),
        )

    async def change_member(
        self,
        principal: Principal,
        account_id: UUID,
        user_id: UUID,
        *,
        role: str | None,
        permissions: list[str] | None,
        marketplaces: str | list[str] | None,
    ) -> Member:
        now = self.clock()
        async with self.pool.acquire() as conn, conn.transaction():
            actor = await self._locked_actor(conn, principal, account_id)
            target = await self._member(conn, account_id, user_id)
            domain.check_change_target(target["role"])
            new_role = target["role"] if role is None else role
            domain.check_invitable_role(new_role)
            perms = domain.check_permissions(target["permissions"] if permissions is None else permissions)
            scope = target["marketplaces"] if marketplaces is None else domain.resolve_scope(marketplaces)
            domain.check_may_change(
                grant_of(actor),
                grant_of(target),
                domain.Grant.of(new_role, perms, scope),
                is_self=user_id == principal.user_id,
            )
            await store.update_membership(
                conn,
                account_id=account_id,
                user_id=user_id,
                access=store.Access(new_role, perms, scope),
                at=now,
            )
            await self._append(
                conn,
                account_id,
                MemberRoleChanged(
                    account_id=account_id,
                    user_id=user_id,
                    **domain.event_grant(new_role, perms, scope),
                    changed_by=principal.user_id,
                    changed_at=now,
                ),
            )
            # A demoted admin's invitations (or those now beyond its narrower grant) go with its authority.
            await self._revoke_invitations_sent_by(
                conn,
                account_id,
                user_id,
                domain.Grant.of(new_role, perms, scope),
                revoked_by=principal.user_id,
                at=now,
            )
            updated = await store.membership(conn, account_id, user_id)
        self.runtime.notify_relay()
        assert updated is not None
        return member_of(updated)

    async def remove_member(self, principal: Principal, account_id: UUID, user_id: UUID) -> None:
        now = self.clock()
        async with self.pool.acquire() as conn, conn.transaction():
            actor = await self._locked_actor(conn, principal, account_id)
            target = await self._member(conn, account_id, user_id)
            domain.check_may_remove(grant_of(actor), target["role"], is_self=user_id == principal.user_id)
            await store.delete_membership(conn, account_id, user_id)
            await session_store.revoke_user_sessions(conn, user_id, now, "removed from the account")
            await session_store.revoke_user_browser_sessions(conn, user_id, now, "removed from the account")
            await self._revoke_invitations_sent_by(
                conn, account_id, user_id, None, revoked_by=principal.user_id, at=now
            )
            await self._append(
                conn,
                account_id,
                MemberRemoved(account_id=account_id, user_id=user_id, removed_by=principal.user_id, removed_at=now),
            )
        self.runtime.notify_relay()


def member_of(row: asyncpg.Record) -> Member:
    """A membership row as the result type (permissions as the token would say them)."""
    return Member(**{f: row[f] for f in ("user_id", "email", "name", "email_verified", "joined_at")}, **access_of(row))
