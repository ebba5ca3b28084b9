"""The loop of the background readers: every failure is reported, the pause doubles while failures last and
starts over after a success, and cancelling ends it."""

import asyncio

import pytest

from unified_shared import retry


async def test_each_failure_is_told_and_the_pause_grows_until_a_success(monkeypatch: pytest.MonkeyPatch) -> None:
    outcomes = [ValueError("1"), ValueError("2"), None, ValueError("3"), asyncio.CancelledError()]
    failures: list[str] = []
    pauses: list[float] = []

    async def attempt() -> None:
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome

    async def failed(exc: Exception) -> None:
        failures.append(str(exc))

    async def pause(seconds: float) -> None:  # the pauses are recorded, not waited
        pauses.append(seconds)

    monkeypatch.setattr(retry.asyncio, "sleep", pause)
    with pytest.raises(asyncio.CancelledError):
        await retry.retry_forever(attempt, failed)
    assert failures == ["1", "2", "3"]
    assert pauses == [0.5, 1.0, 0.5]
    assert outcomes == []
