"""Registration of an account and its owner."""

from __future__ import annotations

import logging
from datetime import datetime
from uuid import UUID, uuid4

import asyncpg

from unified_identity import domain, guard_store, store, streams
from unified_identity.base import Base
from unified_identity.passwords import common_passwords
from unified_shared import eventstore
from unified_shared.contracts.identity import (
    AccountRegistered,
)

log = logging.getLogger(__name__)


class Accounts(Base):
    # -- accounts ----------------------------------------------------------------------------------------------
    async def register_account(
        self,
        *,
        legal_name: str,
        home_marketplace: str,
        email: str,
        password: str,
        at: datetime | None = None,
        owner_name: str | None = None,
        address: str | None = None,
    ) -> tuple[UUID, UUID]:
        """``address``: where the request comes from, counted against the registration throttle (None: the
        platform operator, not counted)."""
        name = legal_name.strip()
        if not name or len(name) > 200:
            raise domain.Invalid("legal_name", "legal_name must be 1 to 200 characters")
        marketplace_id = domain.resolve_marketplace(home_marketplace)
        email_norm = domain.normalize_email(email)
        person = domain.person_name(owner_name)
        domain.check_password(password, email=email_norm, common=common_passwords())
        if address is not None:
            await self._count_registration(address)
        password_hash = await self.passwords.hash(password)
        account_id, user_id = uuid4(), uuid4()
        registered_at = at or self.clock()
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                if await store.user_by_email(conn, email_norm) is not None:
                    raise domain.Conflict("email", "an account with this email already exists")
                await store.insert_account(conn, account_id, name, marketplace_id, registered_at)
                await store.insert_user(conn, user_id, email_norm, password_hash, email_verified=False, name=person)
                await store.insert_membership(
                    conn,
                    account_id=account_id,
                    user_id=user_id,
                    access=store.Access(domain.OWNER, domain.OWNER_PERMISSIONS, "*"),
                    joined_at=registered_at,
                )
                event = AccountRegistered(
                    account_id=account_id,
                    legal_name=name,
                    home_marketplace_id=marketplace_id,
                    owner_user_id=user_id,
                    owner_email=email_norm,
                    registered_at=registered_at,
                )
                await eventstore.append(conn, streams.stream_id(account_id), 0, [event], occurred_at=registered_at)
        except asyncpg.UniqueViolationError:
            raise domain.Conflict("email", "an account with this email already exists") from None
        self.runtime.notify_relay()
        return account_id, user_id

    async def _count_registration(self, address: str) -> None:
        """Each registration costs an Argon2id hash: at most so many per source address within the window."""
        now = self.clock()
        policy = self.registration_limit
        async with self.pool.acquire() as conn, conn.transaction():
            attempts = await guard_store.registrations_since(conn, address, now - policy.window)
            wait = domain.retry_after_s(attempts, now, policy)
            if wait is None:
                await guard_store.add_registration(conn, address, now)
        if wait is not None:
            raise domain.RateLimited(
                None, "too many registrations from this address; try again later", retry_after=wait
            )
