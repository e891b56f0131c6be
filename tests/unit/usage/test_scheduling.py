"""FairSlots: each user within their share, freed slots round robin, a cancelled waiter takes none."""

from __future__ import annotations

import asyncio

import pytest

from tokenwise.usage.scheduling import FairSlots


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_user_over_their_share_waits_while_another_user_starts_at_once() -> None:
    slots = FairSlots(total=2, per_user=1)
    release = asyncio.Event()
    started: list[str] = []

    async def work(user: str, name: str) -> None:
        async with slots.hold(user):
            started.append(name)
            await release.wait()

    tasks = [asyncio.create_task(work("flood", f"flood{i}")) for i in range(5)]
    await _settle()
    assert started == ["flood0"]
    assert slots.waiting("flood") == 4
    other = asyncio.create_task(work("other", "other"))
    await _settle()
    assert started == ["flood0", "other"]  # the second slot was free for another user
    release.set()
    await asyncio.gather(*tasks, other)
    assert sorted(started) == sorted(["other", *(f"flood{i}" for i in range(5))])
    assert slots.held("flood") == slots.held("other") == 0


async def test_freed_slots_go_round_robin_between_users() -> None:
    slots = FairSlots(total=1, per_user=1)
    gates = {name: asyncio.Event() for name in ("a0", "a1", "a2", "b0", "c0")}
    order: list[str] = []

    async def work(user: str, name: str) -> None:
        async with slots.hold(user):
            order.append(name)
            await gates[name].wait()

    tasks = [asyncio.create_task(work("a", name)) for name in ("a0", "a1", "a2")]
    await _settle()
    tasks += [asyncio.create_task(work("b", "b0")), asyncio.create_task(work("c", "c0"))]
    await _settle()
    for name in ("a0", "b0", "a1", "c0", "a2"):
        gates[name].set()  # end whoever runs: the next one in line starts
    await asyncio.gather(*tasks)
    # a's queued work waits its turn behind b and c, who came later but had nothing running
    assert order == ["a0", "b0", "c0", "a1", "a2"]


async def test_a_cancelled_waiter_leaves_the_queue_and_takes_no_slot() -> None:
    slots = FairSlots(total=1, per_user=1)
    hold = asyncio.Event()

    async def work(user: str) -> None:
        async with slots.hold(user):
            await hold.wait()

    first = asyncio.create_task(work("a"))
    await _settle()
    waiting = asyncio.create_task(work("b"))
    await _settle()
    assert slots.waiting("b") == 1
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert slots.waiting("b") == 0
    hold.set()
    await first
    assert slots.held("a") == slots.held("b") == 0
    async with slots.hold("c"):  # the slot is free again
        assert slots.held("c") == 1


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        FairSlots(total=0, per_user=1)
