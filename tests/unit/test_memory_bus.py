"""The in-process bus: per-user delivery, a waiting reader wakes, overflow drops and says so once."""

from __future__ import annotations

import asyncio

import pytest

from tokenwise.bus.base import Overflowed
from tokenwise.bus.memory import MemoryBus
from tokenwise.session.events import RunEvent


def _event(user_id: str, seq: int) -> RunEvent:
    return RunEvent.create(
        user_id=user_id,
        run_id="r",
        thread_id="t",
        seq=seq,
        type="agent_thinking",
        agent_name="triage",
        data={"thought": str(seq)},
    )


async def test_each_user_gets_only_their_own_events() -> None:
    bus = MemoryBus()
    alice, alice_tab, bob = (
        await bus.subscribe("alice"),
        await bus.subscribe("alice"),
        await bus.subscribe("bob"),
    )
    await bus.publish(_event("alice", 1))
    assert (await alice.get()).seq == 1
    assert (await alice_tab.get()).seq == 1
    assert bob.pending() == 0


async def test_a_waiting_reader_wakes_on_publish() -> None:
    bus = MemoryBus()
    subscription = await bus.subscribe("u")
    reader = asyncio.ensure_future(subscription.get())
    await asyncio.sleep(0)
    assert not reader.done()
    await bus.publish(_event("u", 7))
    assert (await asyncio.wait_for(reader, 1)).seq == 7


async def test_overflow_keeps_what_fit_then_raises_once() -> None:
    bus = MemoryBus(queue_size=2)
    subscription = await bus.subscribe("u")
    for seq in (1, 2, 3, 4):
        await bus.publish(_event("u", seq))
    assert [(await subscription.get()).seq for _ in range(2)] == [1, 2]
    with pytest.raises(Overflowed):
        await subscription.get()
    await bus.publish(_event("u", 5))
    assert (await subscription.get()).seq == 5  # back to normal after the one Overflowed


async def test_a_closed_subscription_receives_nothing_more() -> None:
    bus = MemoryBus()
    subscription = await bus.subscribe("u")
    await subscription.close()
    await bus.publish(_event("u", 1))
    assert subscription.pending() == 0


async def test_a_reader_without_a_task_is_called_once_when_something_arrives() -> None:
    bus = MemoryBus()
    subscription = await bus.subscribe("u")
    calls: list[int] = []
    subscription.when_ready(lambda: calls.append(subscription.pending()))
    assert calls == []  # nothing there: armed, not called
    await bus.publish(_event("u", 1))
    await bus.publish(_event("u", 2))
    assert calls == [1]  # once, at the first event
    assert [(await subscription.get()).seq, (await subscription.get()).seq] == [1, 2]
    assert not subscription.ready()


async def test_a_ready_subscription_calls_at_once_and_an_overflow_counts_as_ready() -> None:
    bus = MemoryBus(queue_size=1)
    subscription = await bus.subscribe("u")
    await bus.publish(_event("u", 1))
    calls: list[str] = []
    subscription.when_ready(lambda: calls.append("now"))
    assert calls == ["now"]
    await subscription.get()
    subscription.when_ready(lambda: calls.append("overflow"))
    subscription.overflow()
    assert calls == ["now", "overflow"]
    assert subscription.ready()
    with pytest.raises(Overflowed):
        await subscription.get()


async def test_a_closed_subscription_calls_nobody() -> None:
    bus = MemoryBus()
    subscription = await bus.subscribe("u")
    calls: list[int] = []
    subscription.when_ready(lambda: calls.append(1))
    await subscription.close()
    await bus.publish(_event("u", 1))
    subscription.overflow()
    assert calls == []
