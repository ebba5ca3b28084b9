"""E-mail verification: a single-use link sent to the user's address; following it (and confirming on the
page it opens) sets ``email_verified``, which userinfo and the ID token report."""

from __future__ import annotations

import math
from datetime import timedelta

from unified_identity import domain, guard_store, mail, store
from unified_identity.base import Base
from unified_identity.results import VerificationMail
from unified_shared.auth import Principal

# At most this many verification mails per user within an hour (each is a mail to a third party's inbox).
MAILS_PER_HOUR = 5


class EmailVerification(Base):
    async def send_email_verification(self, principal: Principal) -> VerificationMail:
        """Mail a verification link to the caller's own address (nothing to do if it is verified already)."""
        now = self.clock()
        async with self.pool.acquire() as conn, conn.transaction():
            user = await store.user(conn, principal.user_id)
            if user is None:
                raise domain.NotFound(None, "no such user")
            if user["email_verified"]:
                return VerificationMail(user["email"], email_verified=True, sent=False)
            sent = await guard_store.email_verifications_since(conn, user["user_id"], now - timedelta(hours=1))
            if sent >= MAILS_PER_HOUR:
                raise domain.RateLimited(None, "too many verification mails; try again later", retry_after=3600)
            token = domain.new_secret()
            expires_at = now + timedelta(seconds=self.settings.email_verification_ttl_s)
            await guard_store.insert_email_verification(
                conn, domain.secret_hash(token), user["user_id"], user["email"], created_at=now, expires_at=expires_at
            )
            # Sent before commit: if the mail server refuses, no link exists and the caller may ask again.
            message = mail.verification_message(
                sender=self.settings.mail_from,
                to=user["email"],
                link=f"{self.settings.issuer}/email/verify?token={token}",
                expires_at=expires_at,
            )
            await mail.send_or_refuse(self.settings, message, "verification")
        return VerificationMail(
            user["email"],
            email_verified=False,
            sent=True,
            expires_in=math.floor((expires_at - now).total_seconds()),
        )

    async def verify_email(self, token: str) -> str:
        """Use a verification link (once); returns the verified address."""
        now = self.clock()
        token_hash = domain.secret_hash(token)
        async with self.pool.acquire() as conn, conn.transaction():
            row = await guard_store.email_verification_for_update(conn, token_hash)
            if row is None:
                raise domain.NotFound(None, "no such verification link")
            if row["used_at"] is not None:
                raise domain.Gone(None, "this verification link was already used")
            if row["expires_at"] <= now:
                raise domain.Gone(None, "this verification link has expired")
            await guard_store.mark_email_verification_used(conn, token_hash, now)
            if not await guard_store.mark_email_verified(conn, row["user_id"], row["email"]):
                raise domain.Gone(None, "the address changed after this link was sent")
        return str(row["email"])
