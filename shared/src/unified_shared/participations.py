"""Where an account may sell, as learned from ``regions.subscriptions.v1``: for the services that must refuse
what an account has not opened (orders, messages) and for listings (targets need active listings).

A service adds ``PARTICIPATIONS_MIGRATIONS`` to its migrations and calls ``apply_subscription_event`` from its
consumer handler. ``Gate`` answers, for a request, whether a marketplace is open, and tells a definite "not
opened" from "not learned yet": the consumer must have caught up with the topic after the request arrived
(plus ``settle_s`` for an opening committed just before it to reach Kafka) before "unknown" means "not opened".
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import KW_ONLY, dataclass
from typing import Literal
from uuid import UUID

import asyncpg

from unified_shared.contracts.regions import (
    ListingsActivated,
    ListingsDeactivated,
    ParticipationClosed,
    ParticipationOpened,
    ParticipationReinstated,
    ParticipationSuspended,
)
from unified_shared.db import session_free
from unified_shared.events import Event

PARTICIPATIONS_MIGRATIONS = ("participations", "unified_shared.participation_migrations")

Status = Literal["open", "suspended", "closed"]
_STATUS_OF: dict[type[Event], Status] = {
    ParticipationOpened: "open",
    ParticipationReinstated: "open",
    ParticipationSuspended: "suspended",
    ParticipationClosed: "closed",
}


@dataclass(frozen=True, slots=True)
class Participation:
    account_id: UUID
    marketplace_id: str
    status: Status
    listings_active: bool

    @property
    def sells(self) -> bool:
        """Open with active listings: where listings may place offers."""
        return self.status == "open" and self.listings_active


async def apply_subscription_event(conn: asyncpg.Connection, event: Event) -> Participation | None:
    """Record a participation or listings event; returns the new state (None for other events)."""
    status = _STATUS_OF.get(type(event))
    account_id = getattr(event, "account_id", None)
    marketplace_id = getattr(event, "marketplace_id", None)
    if account_id is None or marketplace_id is None:
        return None
    if status is not None:
        row = await conn.fetchrow(
            """INSERT INTO participations (account_id, marketplace_id, status) VALUES ($1, $2, $3)
               ON CONFLICT (account_id, marketplace_id) DO UPDATE SET status = EXCLUDED.status, updated_at = now()
               RETURNING *""",
            account_id,
            marketplace_id,
            status,
        )
    elif isinstance(event, ListingsActivated | ListingsDeactivated):
        # Listings are only activated where the account participates; a bare activation still records it.
        row = await conn.fetchrow(
            """INSERT INTO participations (account_id, marketplace_id, status, listings_active)
               VALUES ($1, $2, 'open', $3)
               ON CONFLICT (account_id, marketplace_id) DO UPDATE
               SET listings_active = EXCLUDED.listings_active, updated_at = now()
               RETURNING *""",
            account_id,
            marketplace_id,
            isinstance(event, ListingsActivated),
        )
    else:
        return None
    return _participation(row)


def _participation(row: asyncpg.Record) -> Participation:
    return Participation(row["account_id"], row["marketplace_id"], row["status"], row["listings_active"])


async def participation(conn: asyncpg.Connection, account_id: UUID, marketplace_id: str) -> Participation | None:
    row = await conn.fetchrow(
        "SELECT * FROM participations WHERE account_id = $1 AND marketplace_id = $2", account_id, marketplace_id
    )
    return _participation(row) if row else None


async def participations(conn: asyncpg.Connection, account_id: UUID) -> dict[str, Participation]:
    rows = await conn.fetch("SELECT * FROM participations WHERE account_id = $1", account_id)
    return {r["marketplace_id"]: _participation(r) for r in rows}


Verdict = Literal["open", "not-open", "not-learned"]


def verdict_of(p: Participation) -> tuple[Verdict, str]:
    """A learned participation's verdict and why."""
    return ("open", "open") if p.status == "open" else ("not-open", p.status)


async def learned_verdicts(
    conn: asyncpg.Connection, pairs: Iterable[tuple[UUID, str]]
) -> dict[tuple[UUID, str], tuple[Verdict, str]]:
    """The verdicts of the (account, marketplace) pairs already learned, in one statement and without waiting
    (a pair not learned yet is absent: ``Gate.verdicts`` is what waits for it). For a command that checks many
    accounts' orders in its own transaction."""
    wanted = sorted(set(pairs))
    if not wanted:
        return {}
    rows = await conn.fetch(
        """SELECT p.* FROM participations p JOIN unnest($1::uuid[], $2::text[]) AS k(a, m)
             ON p.account_id = k.a AND p.marketplace_id = k.m""",
        [a for a, _ in wanted],
        [m for _, m in wanted],
    )
    return {(r["account_id"], r["marketplace_id"]): verdict_of(_participation(r)) for r in rows}


@dataclass(frozen=True, slots=True)
class Gate:
    """Is a marketplace open for this account, as far as the consumer has learned?

    ``caught_up_as_of`` returns the monotonic time at which the consumer last started a poll that ended with
    no lag (everything published before then is applied), or None.
    """

    pool: Callable[[], asyncpg.Pool]
    caught_up_as_of: Callable[[], float | None]
    _: KW_ONLY
    settle_s: float = 0.5
    wait_s: float = 2.0
    poll_s: float = 0.05

    async def verdicts(self, account_id: UUID, marketplace_ids: set[str]) -> dict[str, tuple[Verdict, str]]:
        """Each marketplace's verdict and why. Unknown ones are waited for (at most ``wait_s``): learned open
        -> open; the consumer caught up since the request (+ settle) and still unknown -> not-open; else
        not-learned (answer retriably)."""
        arrived = time.monotonic()
        out: dict[str, tuple[Verdict, str]] = {}
        pending = set(marketplace_ids)
        while True:
            async with session_free(self.pool()) as conn:  # one SELECT: no reset query needed
                known = await participations(conn, account_id)
            for marketplace_id in list(pending):
                p = known.get(marketplace_id)
                if p is None:
                    continue
                pending.discard(marketplace_id)
                out[marketplace_id] = verdict_of(p)
            if not pending:
                return out
            caught_up = self.caught_up_as_of()
            if caught_up is not None and caught_up >= arrived + self.settle_s:
                for marketplace_id in pending:
                    out[marketplace_id] = ("not-open", "never opened")
                return out
            if time.monotonic() - arrived >= self.wait_s:
                for marketplace_id in pending:
                    out[marketplace_id] = ("not-learned", "participations not learned yet")
                return out
            await asyncio.sleep(self.poll_s)
