"""A database or broker outage answers 503 + Retry-After, and is logged once when it starts and once when it
ends (with how many requests it turned away), never as one stack trace per request.

Clients can then tell "try again" (503 + Retry-After) from "your request is wrong" (4xx) from "our bug" (500).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import asyncpg
from aiokafka import errors as kafka_errors

log = logging.getLogger("unified_shared.outages")

RETRY_AFTER_S = 2

# What "a dependency is unreachable right now" looks like. OSError covers refused connections and timeouts
# (asyncio.TimeoutError is an OSError since Python 3.11).
DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.TooManyConnectionsError,
    # What asyncpg raises for a connection the server broke off mid-operation (seen when PostgreSQL stops).
    asyncpg.exceptions.InternalClientError,
    OSError,
)
BROKER_UNAVAILABLE: tuple[type[Exception], ...] = (
    kafka_errors.KafkaConnectionError,
    kafka_errors.KafkaTimeoutError,
    kafka_errors.NodeNotReadyError,
    kafka_errors.RequestTimedOutError,
)
UNAVAILABLE = DATABASE_UNAVAILABLE + BROKER_UNAVAILABLE


_LOST_CONNECTION = ("connection is closed", "connection was closed", "underlying connection")


def lost_connection(exc: BaseException) -> bool:
    """asyncpg's InterfaceError also reports programming errors (another operation in progress...): only its
    "the connection is closed" kind, raised when the server goes away mid-transaction, is an outage."""
    return isinstance(exc, asyncpg.exceptions.InterfaceError) and any(m in str(exc) for m in _LOST_CONNECTION)


def dependency_of(exc: BaseException) -> str:
    return "broker" if isinstance(exc, BROKER_UNAVAILABLE) else "database"


class OutageLog:
    """Per-process record of the outages seen by request handlers."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._open: dict[str, tuple[float, int]] = {}

    @property
    def open(self) -> dict[str, int]:
        return {dep: count for dep, (_, count) in self._open.items()}

    def failed(self, exc: BaseException) -> None:
        dep = dependency_of(exc)
        started, count = self._open.get(dep, (self._clock(), 0))
        if count == 0:
            log.warning(
                "%s unavailable (%s: %s): answering 503 with Retry-After until it is back",
                dep,
                type(exc).__name__,
                exc,
            )
        self._open[dep] = (started, count + 1)

    def succeeded(self) -> None:
        """A request was served: every open outage has ended."""
        if not self._open:
            return
        for dep, (started, count) in self._open.items():
            log.warning(
                "%s available again after %.1f s; %d request(s) were answered 503 meanwhile",
                dep,
                self._clock() - started,
                count,
            )
        self._open.clear()


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class OutageEndMiddleware:
    """Closes open outages on the first answer below 500 (plain ASGI: no per-request task overhead)."""

    def __init__(self, app: ASGIApp, outages: OutageLog) -> None:
        self.app = app
        self.outages = outages

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.outages.open:
            await self.app(scope, receive, send)
            return

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start" and int(message["status"]) < 500:
                self.outages.succeeded()
            await send(message)

        await self.app(scope, receive, watch)
