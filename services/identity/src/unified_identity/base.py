"""The commands' shared state: runtime, settings, password hasher, throttle, keys grace."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import UUID

import asyncpg

from unified_identity import domain, keys, session_store, store, streams
from unified_identity.passwords import Passwords
from unified_identity.results import CSRF_SECRET_NAME
from unified_identity.settings import Settings
from unified_shared.clock import Clock, system_clock
from unified_shared.events import Event
from unified_shared.runtime import ServiceRuntime

log = logging.getLogger(__name__)


class Base:
    """The state every group of commands shares: runtime (pool, relay), settings, password hasher."""

    def __init__(self, runtime: ServiceRuntime, settings: Settings, *, clock: Clock = system_clock) -> None:
        self.runtime = runtime
        self.settings = settings
        self.clock = clock
        self.passwords = Passwords(
            time_cost=settings.argon2_time_cost,
            memory_kib=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
        )
        window = timedelta(seconds=settings.signin_window_s)
        self.signin_limits = domain.SignInLimits(
            per_email_and_address=domain.ThrottlePolicy(settings.signin_max_failures, window),
            per_address=domain.ThrottlePolicy(settings.signin_max_failures_per_address, window),
            per_email=domain.ThrottlePolicy(settings.signin_max_failures_per_email, window),
            per_client=domain.ThrottlePolicy(settings.signin_max_failures_per_client, window),
        )
        self.registration_limit = domain.ThrottlePolicy(
            settings.registrations_per_address, timedelta(seconds=settings.registration_window_s)
        )
        self.key_grace = timedelta(seconds=settings.key_publish_grace_s)
        self._key_cipher: keys.KeyCipher | None = None
        self._csrf_key: bytes | None = settings.csrf_secret.encode() if settings.csrf_secret else None

    @property
    def key_cipher(self) -> keys.KeyCipher:
        if self._key_cipher is None:
            self._key_cipher = keys.KeyCipher(self.settings.key_encryption_key)  # raises if unset or malformed
        return self._key_cipher

    @property
    def pool(self) -> asyncpg.Pool:
        return self.runtime.pool

    async def start(self) -> None:
        """Make sure a signing key and the default public client exist (idempotent, any number of processes)."""
        s = self.settings
        async with self.pool.acquire() as conn:
            sealed = await keys.seal_stored_keys(conn, self.key_cipher)
            if sealed:
                log.warning("encrypted %d signing key(s) found stored in plaintext", sealed)
            await keys.ensure_active(conn, self.key_cipher)
            if self._csrf_key is None:
                self._csrf_key = await store.server_secret(conn, CSRF_SECRET_NAME, secrets.token_bytes(32))
            await store.upsert_client(
                conn,
                client_id=s.cli_client_id,
                name="unified-seller CLI",
                redirect_uris=s.cli_redirect_uri_list,
                post_logout_redirect_uris=s.cli_post_logout_uri_list,
                secret_hash=None,
            )

    async def _append(self, conn: asyncpg.Connection, account_id: UUID, event: Event) -> None:
        await streams.append(conn, account_id, event)

    async def _end_sessions(
        self, conn: asyncpg.Connection, sessions: Sequence[asyncpg.Record], reason: str, at: datetime
    ) -> None:
        """Publish the end of sessions just revoked (the caller notifies the relay after commit)."""
        await streams.sessions_ended(conn, sessions, reason, at)

    async def _revoke_session(self, conn: asyncpg.Connection, session_id: UUID, at: datetime, reason: str) -> None:
        """Revoke one session and, if it was live, publish its end (SessionRevoked)."""
        await self._end_sessions(conn, await session_store.revoke_session(conn, session_id, at, reason), reason, at)
