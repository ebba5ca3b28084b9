"""Access tokens already verified, by the raw token (``auth.TokenValidator`` keeps one set of them).

Verifying a token's signature (EdDSA, ES256) is the largest cost of a small authenticated request; a client
sends the same token for minutes. An entry lives until the token expires (with the validator's leeway, as the
first verification judged it) and is dropped by the validator once its key leaves the JWKS. Only the result
of verification is kept: revocations and a service's own checks are asked on every request.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import jwt

P = TypeVar("P")


@dataclass(frozen=True, slots=True)
class Verified(Generic[P]):
    kid: str
    key: jwt.PyJWK  # the JWKS key that verified it: once the JWKS no longer holds it, verify again
    expires: float  # ``exp``: refused from exp + leeway on, as the first verification would
    principal: P


class VerifiedTokens(Generic[P]):
    """Tokens whose signature and claims were verified, by the raw token; bounded (the least recently used
    go first), each only until it expires. A forged token never gets in: only ``validate`` adds, after
    verifying."""

    def __init__(self, max_entries: int = 4096, *, clock: Callable[[], float] = time.time) -> None:
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[str, Verified[P]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token: str, leeway_s: float) -> Verified[P] | None:
        entry = self._entries.get(token)
        if entry is None:
            return None
        if entry.expires <= self.clock() - leeway_s:  # PyJWT's rule: expired once exp <= now - leeway
            del self._entries[token]
            return None
        self._entries.move_to_end(token)
        return entry

    def put(self, token: str, entry: Verified[P]) -> None:
        self._entries[token] = entry
        self._entries.move_to_end(token)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def forget(self, token: str) -> None:
        self._entries.pop(token, None)
