"""Group commit on its own (no database): who goes with whom, who gets which answer, and that nobody is lost."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from prometheus_client import REGISTRY

from unified_orders.group_commit import GroupCommit


class Recorder:
    """An ``apply`` that records its calls and, while ``hold`` is set, waits for ``release`` (a unit in flight)."""

    def __init__(self, fail_on: Callable[[list[str]], bool] = lambda items: False) -> None:
        self.calls: list[tuple[str, list[str]]] = []
        self.running = 0
        self.most_running = 0
        self.hold = True
        self.release = asyncio.Event()
        self.fail_on = fail_on

    async def __call__(self, key: str, items: list[str]) -> list[str]:
        self.calls.append((key, items))
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            if self.hold:
                await self.release.wait()
            if self.fail_on(items):
                raise RuntimeError(f"batch {items} failed")
            return [f"{key}:{item}" for item in items]
        finally:
            self.running -= 1


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        while not condition():
            await asyncio.sleep(0)


Group = GroupCommit[str, str, str]


async def running(apply: Recorder, *, limit: int = 100, name: str = "group") -> tuple[Group, asyncio.Task[list[str]]]:
    """A group of one unit at a time whose first unit (request ["1"] of key "a") is running, held by ``apply``."""
    group: Group = GroupCommit(apply, limit=limit, parallel=1, name=name)
    first = asyncio.create_task(group.submit("a", ["1"]))
    await until(lambda: len(apply.calls) == 1)
    return group, first


async def test_a_lone_request_is_applied_at_once() -> None:
    apply = Recorder()
    apply.hold = False
    group = GroupCommit(apply, limit=100, parallel=1)
    assert await group.submit("a", ["1", "2"]) == ["a:1", "a:2"]
    assert apply.calls == [("a", ["1", "2"])] and group.batches == 1


async def test_requests_arriving_meanwhile_share_the_next_unit_each_with_its_own_answer() -> None:
    apply = Recorder()
    group, first = await running(apply)
    later = [asyncio.create_task(group.submit("a", [f"{n}x", f"{n}y"])) for n in range(2, 6)]
    await asyncio.sleep(0)
    apply.release.set()
    assert await first == ["a:1"]
    assert [await t for t in later] == [[f"a:{n}x", f"a:{n}y"] for n in range(2, 6)]
    assert apply.calls == [("a", ["1"]), ("a", ["2x", "2y", "3x", "3y", "4x", "4y", "5x", "5y"])]


async def test_a_unit_takes_whole_requests_up_to_the_limit() -> None:
    apply = Recorder()
    group, first = await running(apply, limit=4)
    rest = [asyncio.create_task(group.submit("a", [f"{n}a", f"{n}b", f"{n}c"][: 1 + n % 3])) for n in range(1, 7)]
    await asyncio.sleep(0)
    apply.release.set()
    await asyncio.gather(first, *rest)
    # requests of 2, 3, 1, 2, 3, 1 items: whole requests, in arrival order, while they fit 4
    assert [len(items) for _, items in apply.calls[1:]] == [2, 3 + 1, 2, 3 + 1]
    assert [item for _, items in apply.calls for item in items] == ["1"] + [
        item for n in range(1, 7) for item in [f"{n}a", f"{n}b", f"{n}c"][: 1 + n % 3]
    ]  # arrival order kept, nothing lost or doubled


async def test_up_to_parallel_units_of_a_key_run_at_once_and_other_keys_are_not_held() -> None:
    apply = Recorder()
    group = GroupCommit(apply, limit=100, parallel=2)
    held = []
    for n in range(5):  # one at a time: the first two start units, the other three wait for one to end
        held.append(asyncio.create_task(group.submit("a", [str(n)])))
        await until(lambda n=n: len(apply.calls) == min(n + 1, 2))  # type: ignore[misc]
    other = asyncio.create_task(group.submit("b", ["z"]))
    await until(lambda: len(apply.calls) == 3)
    assert sorted(key for key, _ in apply.calls) == ["a", "a", "b"] and apply.most_running == 3
    apply.release.set()
    await asyncio.gather(*held, other)
    assert [await t for t in held] == [[f"a:{n}"] for n in range(5)]
    assert [items for key, items in apply.calls if key == "a"] == [["0"], ["1"], ["2", "3", "4"]]


async def test_a_failed_unit_is_applied_again_request_by_request_so_only_the_culprit_fails() -> None:
    apply = Recorder(fail_on=lambda items: "bad" in items)
    group, first = await running(apply, limit=3, name="split")
    queued = [asyncio.create_task(group.submit("a", [item])) for item in ("2", "bad", "3")]
    await asyncio.sleep(0)
    apply.release.set()
    assert await first == ["a:1"]
    assert await queued[0] == ["a:2"] and await queued[2] == ["a:3"]
    with pytest.raises(RuntimeError, match="failed"):
        await queued[1]
    assert [items for _, items in apply.calls] == [["1"], ["2", "bad", "3"], ["2"], ["bad"], ["3"]]
    assert REGISTRY.get_sample_value("group_commit_units_split_total", {"group": "split"}) == 1


def sample(name: str, group: str) -> float:
    return REGISTRY.get_sample_value(name, {"group": group}) or 0.0


async def test_units_and_their_sizes_are_counted() -> None:
    apply = Recorder()
    apply.hold = False
    group = GroupCommit(apply, limit=100, parallel=1, name="sized")
    await group.submit("a", ["1", "2", "3"])
    await group.submit("a", ["4"])
    assert sample("group_commit_unit_items_count", "sized") == 2
    assert sample("group_commit_unit_items_sum", "sized") == 4


async def test_a_lone_request_that_fails_is_not_tried_again() -> None:
    apply = Recorder(fail_on=lambda items: True)
    apply.hold = False
    group = GroupCommit(apply, limit=3, parallel=1)
    with pytest.raises(RuntimeError, match="failed"):
        await group.submit("a", ["1", "2"])
    assert apply.calls == [("a", ["1", "2"])]


async def test_a_request_cancelled_while_queued_is_never_applied() -> None:
    apply = Recorder()
    group, first = await running(apply)
    gone = asyncio.create_task(group.submit("a", ["gone"]))
    kept = asyncio.create_task(group.submit("a", ["kept"]))
    await asyncio.sleep(0)
    gone.cancel()
    apply.release.set()
    assert (await first, await kept) == (["a:1"], ["a:kept"])
    assert [items for _, items in apply.calls] == [["1"], ["kept"]]


async def test_a_stopped_drain_answers_everyone_waiting() -> None:
    apply = Recorder()
    group, first = await running(apply)
    queued = asyncio.create_task(group.submit("a", ["2"]))
    await asyncio.sleep(0)
    for drain in list(group._drains):  # what the event loop does to pending tasks at shutdown
        drain.cancel()
    for task in (first, queued):
        with pytest.raises(RuntimeError, match="group commit stopped"):
            await task
    apply.hold = False  # the key is free again: a new request starts a new drain
    assert await group.submit("a", ["3"]) == ["a:3"]
