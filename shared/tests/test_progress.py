"""Progress of long operator work: plain periodic lines (not one per item) outside a terminal, with rate and
ETA; a bar in a terminal; the ETA rule."""

from __future__ import annotations

import io
import logging

import pytest

from unified_shared.progress import ProgressReport, eta_seconds


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_eta_rule() -> None:
    assert eta_seconds(0, 100, 5.0) is None
    assert eta_seconds(25, 100, 10.0) == 30.0
    assert eta_seconds(100, 100, 10.0) == 0.0


def test_plain_lines_every_few_seconds_not_per_item(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="unified_shared.progress")
    clock = _Clock()
    seen: list[tuple[int, int, float | None]] = []
    with ProgressReport(
        "closing 2026-10",
        total=1000,
        stream=io.StringIO(),
        every_s=5.0,
        clock=clock,
        on_update=lambda d, t, e: seen.append((d, t, e)),
    ) as progress:
        for _ in range(1000):
            clock.now += 0.03125  # 31.25 s in all (exact in binary)
            progress.advance()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 7, lines  # every 5 s, plus the final line
    assert lines[0] == "closing 2026-10: 160/1000 (32/s, ETA 26 s)"
    assert lines[-1].startswith("closing 2026-10: 1000/1000")
    assert seen[-1] == (1000, 1000, 0.0)


def test_a_bar_in_a_terminal() -> None:
    out = _Tty()
    with ProgressReport("rebuild", total=10, stream=out) as progress:
        for _ in range(10):
            progress.advance()
    assert "rebuild" in out.getvalue() and "10/10" in out.getvalue()
