"""Team members: list, change, remove."""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

import asyncpg

from unified_identity import domain, session_store, store
from unified_identity.invitations import Invitations, grant_of
from unified_identity.results import (
    utcnow,
)
from unified_shared.auth import Principal
from unified_shared.contracts.identity import (
    MemberRemoved,
    MemberRoleChanged,
)

log = logging.getLogger(__name__)


class Members(Invitations):
    async def members(self, principal: Principal, account_id: UUID) -> dict[str, Any]:
        now = utcnow()
        async with self.pool.acquire() as conn:
            await self._actor(conn, principal, account_id)
            rows = await store.members(conn, account_id)
            pending = await store.pending_invitations(conn, account_id, now)
        return {
            "account_id": str(account_id),
            "members": [member_view(r) for r in rows],
            "invitations": [
                {
                    "invitation_id": str(i["invitation_id"]),
                    "email": i["email"],
                    "name": i["name"],
                    "role": i["role"],
                    "permissions": list(i["permissions"]),
                    "marketplaces": i["marketplaces"],
                    "invited_by": str(i["invited_by"]),
                    "created_at": i["created_at"].isoformat(),
                    "expires_at": i["expires_at"].isoformat(),
                }
                for i in pending
            ],
        }

    async def change_member(
        self,
        principal: Principal,
        account_id: UUID,
        user_id: UUID,
        *,
        role: str | None,
        permissions: list[str] | None,
        marketplaces: str | list[str] | None,
    ) -> dict[str, Any]:
        now = utcnow()
        async with self.pool.acquire() as conn, conn.transaction():
            if await store.lock_account(conn, account_id) is None:
                raise domain.NotFound("no such account")
            actor = await self._actor(conn, principal, account_id)
            target = await store.membership(conn, account_id, user_id)
            if target is None:
                raise domain.NotFound("no such member")
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
                role=new_role,
                permissions=perms,
                marketplaces=scope,
                at=now,
            )
            await self._append(
                conn,
                account_id,
                MemberRoleChanged(
                    account_id=account_id,
                    user_id=user_id,
                    role=new_role,  # type: ignore[arg-type]
                    **domain.event_permissions(perms),  # type: ignore[arg-type]
                    marketplace_scope=scope,
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
        return member_view(updated)

    async def remove_member(self, principal: Principal, account_id: UUID, user_id: UUID) -> None:
        now = utcnow()
        async with self.pool.acquire() as conn, conn.transaction():
            if await store.lock_account(conn, account_id) is None:
                raise domain.NotFound("no such account")
            actor = await self._actor(conn, principal, account_id)
            target = await store.membership(conn, account_id, user_id)
            if target is None:
                raise domain.NotFound("no such member")
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


def member_view(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "user_id": str(row["user_id"]),
        "email": row["email"],
        "name": row["name"],
        "email_verified": row["email_verified"],
        "role": row["role"],
        "permissions": domain.token_permissions(row["role"], row["permissions"]),
        "marketplaces": row["marketplaces"],
        "joined_at": row["joined_at"].isoformat(),
    }
