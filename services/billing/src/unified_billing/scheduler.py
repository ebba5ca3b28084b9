"""The scheduler: every ``interval_s``, once the consumer has seen everything, close the ended months that are
due (a failed tick is retried at the next one)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from unified_billing.handlers import Billing

log = logging.getLogger(__name__)


async def run_scheduler(billing: Billing, *, interval_s: float, caught_up: Callable[[], bool]) -> None:
    """Close only what the consumer has fully seen (``caught_up``)."""
    while True:
        await asyncio.sleep(interval_s)
        if not caught_up():
            continue
        try:
            await billing.scheduler_tick()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a database outage: try again at the next tick
            log.warning("billing scheduler tick failed", extra={"error": repr(exc)})
