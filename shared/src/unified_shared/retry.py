"""The loop of a background reader that must not stop: each failed attempt is reported, then retried after a
pause that grows while the failures last (a broker or database outage) and shrinks back after a success."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

FIRST_PAUSE_S = 0.5
LONGEST_PAUSE_S = 10.0


async def retry_forever(attempt: Callable[[], Awaitable[None]], failed: Callable[[Exception], Awaitable[None]]) -> None:
    """Run ``attempt`` again and again until cancelled. A failure is told to ``failed``, then the loop pauses
    0.5 s, doubling up to 10 s while attempts keep failing, and 0.5 s again after one succeeds."""
    pause = FIRST_PAUSE_S
    while True:
        try:
            await attempt()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await failed(exc)
            await asyncio.sleep(pause)
            pause = min(pause * 2, LONGEST_PAUSE_S)
        else:
            pause = FIRST_PAUSE_S
