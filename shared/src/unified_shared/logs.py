"""Structured JSON logs on stdout, one object per line, with the service name on every record.

During an outage the Kafka client, asyncpg and uvicorn repeat the same error many times a second. A
``StormFilter`` on the handler turns each repeated message into state changes: the first occurrence, then
at most one line per ``summary_every_s`` with the count of repeats, and one line when it stops (with the
total), so a 60 s broker outage costs a handful of lines, not thousands.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from pythonjsonlogger.json import JsonFormatter

from unified_shared.requests import RequestIdLogFilter

# Loggers whose warnings and errors repeat during outages; other records opt in with extra={"collapse": True}.
STORMY_LOGGERS = ("aiokafka", "kafka", "asyncpg", "uvicorn.error")
_NUMBERS = re.compile(r"\d+")


class _ServiceFilter(logging.Filter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        return True


@dataclass(slots=True)
class _Storm:
    record: logging.LogRecord
    started: float
    last_seen: float
    window_start: float
    in_window: int = 0
    total: int = 0


class StormFilter(logging.Filter):
    """Collapse repeats of one message (same logger, level and template) into state-change lines with counts."""

    def __init__(
        self,
        emit: Callable[[logging.LogRecord], None],
        *,
        quiet_s: float = 30.0,
        summary_every_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._emit = emit  # writes a record past the filters (for the summary lines)
        self.quiet_s = quiet_s
        self.summary_every_s = summary_every_s
        self.clock = clock
        self._storms: dict[tuple[str, int, str], _Storm] = {}

    @staticmethod
    def collapsible(record: logging.LogRecord) -> bool:
        flagged = getattr(record, "collapse", None)
        if flagged is not None:
            return bool(flagged)
        return record.levelno >= logging.WARNING and record.name.startswith(STORMY_LOGGERS)

    def filter(self, record: logging.LogRecord) -> bool:
        now = self.clock()
        self._end_quiet_storms(now)
        if not self.collapsible(record):
            return True
        key = (record.name, record.levelno, _NUMBERS.sub("#", str(record.msg))[:200])
        storm = self._storms.get(key)
        if storm is None:
            self._storms[key] = _Storm(record, now, now, now)
            return True  # the state change: this started
        storm.last_seen = now
        storm.in_window += 1
        storm.total += 1
        if now - storm.window_start < self.summary_every_s:
            return False
        record.msg = f"{record.msg} (repeated {storm.in_window} times in the last {now - storm.window_start:.0f} s)"
        record.repeats = storm.in_window
        storm.in_window, storm.window_start = 0, now
        return True

    def flush(self) -> None:
        """End every storm now (at shutdown, or in tests)."""
        self._end_quiet_storms(float("inf"))

    def _end_quiet_storms(self, now: float) -> None:
        for key, storm in list(self._storms.items()):
            if now - storm.last_seen < self.quiet_s:
                continue
            del self._storms[key]
            if storm.total == 0:
                continue
            first = storm.record
            end = logging.LogRecord(
                first.name,
                logging.INFO,
                first.pathname,
                first.lineno,
                "stopped repeating: %s (repeated %d times over %.0f s)",
                (first.getMessage(), storm.total, storm.last_seen - storm.started),
                None,
            )
            end.repeats = storm.total
            end.service = getattr(first, "service", None)
            self._emit(end)


def configure_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(service)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    )
    handler.addFilter(_ServiceFilter(service))
    handler.addFilter(RequestIdLogFilter())

    def emit_locked(record: logging.LogRecord) -> None:
        handler.acquire()
        try:
            handler.emit(record)
        finally:
            handler.release()

    handler.addFilter(StormFilter(emit_locked))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "kafka"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
