"""The sign-in and registration throttles: failures counted in a sliding window."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta


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
