"""Progress of long operator work (rebuilds, FX imports, closing many accounts, the demo's ingest): a rich
progress bar with rate and ETA in a terminal, plain periodic lines (logged) when not a terminal, so that a
job's log shows it is alive without a line per item."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

log = logging.getLogger("unified_shared.progress")


def eta_seconds(done: int, total: int, elapsed_s: float) -> float | None:
    """Remaining time at the rate so far; None before anything is done or when the total is unknown."""
    if done <= 0 or total <= 0 or elapsed_s <= 0:
        return None
    return max(0.0, (total - done) * elapsed_s / done)


class RateColumn(ProgressColumn):
    """Items per second (rich's own speed column is for bytes)."""

    def render(self, task: Task) -> Text:
        return Text(f"{task.speed:,.0f}/s" if task.speed else "", style="progress.data.speed")


class ProgressReport:
    """``with ProgressReport("closing 2026-10", total=n) as p: ... p.advance()``."""

    def __init__(
        self,
        description: str,
        *,
        total: int,
        stream: TextIO | None = None,
        every_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        on_update: Callable[[int, int, float | None], None] | None = None,
    ) -> None:
        self.description = description
        self.total = total
        self.done = 0
        self.every_s = every_s
        self.clock = clock
        self.on_update = on_update
        out = stream or sys.stderr
        self._bar: Progress | None = None
        if out.isatty():
            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TaskProgressColumn(),
                RateColumn(),
                TimeRemainingColumn(),
                console=Console(file=out),
                transient=False,
            )
        self._task: TaskID | None = None
        self._started = clock()
        self._last_line = self._started

    def __enter__(self) -> ProgressReport:
        self._started = self._last_line = self.clock()
        if self._bar is not None:
            self._bar.start()
            self._task = self._bar.add_task(self.description, total=self.total or None)
        return self

    def advance(self, count: int = 1) -> None:
        self.done += count
        now = self.clock()
        eta = eta_seconds(self.done, self.total, now - self._started)
        if self.on_update is not None:
            self.on_update(self.done, self.total, eta)
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, advance=count)
        elif now - self._last_line >= self.every_s:
            self._last_line = now
            self._line(now, eta)

    def _line(self, now: float, eta: float | None) -> None:
        elapsed = now - self._started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        log.info(
            "%s: %d/%d (%.0f/s, ETA %s)",
            self.description,
            self.done,
            self.total,
            rate,
            f"{eta:.0f} s" if eta is not None else "unknown",
        )

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.stop()
        else:
            self._line(self.clock(), 0.0 if exc is None else None)
