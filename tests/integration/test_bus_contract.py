"""The event-bus contract (bus/base.py), the same cases against every implementation: MemoryBus, RedisBus.

Ground truth is what each test published, never what the bus says about itself. The Redis cases run
against the session's real redis-server; the outage cases kill it (SIGKILL) and start it again on the
same port. Each test uses its own channel prefix, so nothing leaks between tests sharing that server.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field

import pytest
import redis.asyncio as aioredis

from support.servers import RedisServer, free_port
from tokenwise.bus import build_bus
from tokenwise.bus.base import RESYNC_S, EventBus, Overflowed, Signals, Subscription
from tokenwise.bus.memory import MemoryBus
from tokenwise.bus.redis import RedisBus
from tokenwise.errors import ServiceUnavailable
from tokenwise.session.events import RunEvent

MakeBus = Callable[[], Awaitable[EventBus]]


def _event(user_id: str, seq: int, run_id: str = "r") -> RunEvent:
    return RunEvent.create(
        user_id=user_id,
        run_id=run_id,
        thread_id="t",
        seq=seq,
        type="agent_thinking",
        agent_name="triage",
        data={"thought": f"{user_id}:{seq}"},
    )


async def _next(subscription: Subscription, timeout: float = 2.0) -> RunEvent:
    async with asyncio.timeout(timeout):
        return await subscription.get()


async def _take(subscription: Subscription, count: int, timeout: float = 5.0) -> list[RunEvent]:
    async with asyncio.timeout(timeout):
        return [await subscription.get() for _ in range(count)]


async def _silent(subscription: Subscription, within: float = 0.3) -> None:
    """Nothing arrives (no event, no Overflowed) within `within` seconds."""
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(within):
            await subscription.get()


async def _heard(signals: Signals, timeout: float = 2.0) -> str:
    async with asyncio.timeout(timeout):
        return await anext(aiter(signals))


async def _wait_until_ready(bus: EventBus, timeout: float = 10.0) -> float:
    """Poll `ping` until it passes; the monotonic time it did."""
    async with asyncio.timeout(timeout):
        while True:
            try:
                await bus.ping()
                return time.monotonic()
            except ServiceUnavailable:
                await asyncio.sleep(0.02)


@pytest.fixture
def redis_up(redis_server: RedisServer) -> Iterator[RedisServer]:
    """The session's Redis, running at the start and (for the tests after) at the end of the test."""
    redis_server.start()
    yield redis_server
    redis_server.start()


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def make_bus(request: pytest.FixtureRequest) -> AsyncIterator[MakeBus]:
    """Started buses of one kind; with Redis, every bus of a test is a process of one deployment."""
    url = request.getfixturevalue("redis_up").url if request.param == "redis" else ""
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    buses: list[EventBus] = []

    async def make() -> EventBus:
        bus: EventBus = RedisBus(url, prefix=prefix) if url else MemoryBus()
        await bus.start()
        buses.append(bus)
        return bus

    yield make
    for bus in buses:
        await bus.close()


@pytest.fixture
async def redis_buses(redis_up: RedisServer) -> AsyncIterator[Callable[[], Awaitable[RedisBus]]]:
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    buses: list[RedisBus] = []

    async def make() -> RedisBus:
        bus = RedisBus(redis_up.url, prefix=prefix)
        await bus.start()
        buses.append(bus)
        return bus

    yield make
    for bus in buses:
        await bus.close()


# ---- every implementation -------------------------------------------------------------------------


async def test_a_user_never_sees_another_users_events(make_bus: MakeBus) -> None:
    bus = await make_bus()
    alice, bob = await bus.subscribe("alice"), await bus.subscribe("bob")
    for seq in range(1, 6):
        await bus.publish(_event("alice", seq))
    await bus.publish(_event("bob", 1, run_id="bob-run"))  # published last, so it is bob's first if isolated
    assert [e.seq for e in await _take(alice, 5)] == [1, 2, 3, 4, 5]
    first = await _next(bob)
    assert (first.user_id, first.run_id) == ("bob", "bob-run")
    await _silent(bob)
    await _silent(alice)


async def test_one_publishers_events_arrive_in_order(make_bus: MakeBus) -> None:
    bus = await make_bus()
    subscription = await bus.subscribe("u")
    published = [_event("u", seq) for seq in range(1, 201)]
    for event in published:
        await bus.publish(event)
    received = await _take(subscription, len(published))
    assert [e.body for e in received] == [e.body for e in published]


async def test_a_batch_arrives_in_order_and_each_user_gets_only_its_own(make_bus: MakeBus) -> None:
    bus = await make_bus()
    alice, bob, carol = await bus.subscribe("alice"), await bus.subscribe("bob"), await bus.subscribe("carol")
    # interleaved users and runs, as a stored batch of the event log holds them
    batch = [
        _event(user, seq, run_id=f"{user}-{seq % 2}") for seq in range(1, 41) for user in ("alice", "bob")
    ]
    await bus.publish_many(batch)
    await bus.publish_many([])
    last = _event("alice", 41)
    await bus.publish(last)  # a single publish after a batch keeps its place
    want_alice = [e.body for e in batch if e.user_id == "alice"] + [last.body]
    assert [e.body for e in await _take(alice, 41)] == want_alice
    assert [e.body for e in await _take(bob, 40)] == [e.body for e in batch if e.user_id == "bob"]
    await _silent(carol)
    await _silent(bob)


async def test_an_event_published_after_subscribe_returns_is_delivered(make_bus: MakeBus) -> None:
    bus = await make_bus()
    for attempt in range(25):  # each a fresh user: a channel Redis has never seen
        user = f"fresh-{attempt}"
        subscription = await bus.subscribe(user)
        await bus.publish(_event(user, 1))
        assert (await _next(subscription)).user_id == user
        await subscription.close()


async def test_resubscribing_right_after_the_last_close_is_live(make_bus: MakeBus) -> None:
    bus = await make_bus()
    for seq in range(1, 21):  # SUBSCRIBE, UNSUBSCRIBE and SUBSCRIBE of one channel, back to back
        first = await bus.subscribe("u")
        await first.close()
        again = await bus.subscribe("u")
        await bus.publish(_event("u", seq))
        assert (await _next(again)).seq == seq
        await again.close()


async def test_a_closed_subscription_gets_nothing(make_bus: MakeBus) -> None:
    bus = await make_bus()
    closed, open_ = await bus.subscribe("u"), await bus.subscribe("u")
    await closed.close()
    await closed.close()  # closing twice is harmless
    await bus.publish(_event("u", 1))
    assert (await _next(open_)).seq == 1
    assert closed.pending() == 0
    await _silent(closed)


async def test_every_local_subscription_of_a_user_gets_each_event(make_bus: MakeBus) -> None:
    bus = await make_bus()
    tabs = [await bus.subscribe("u") for _ in range(50)]
    for seq in (1, 2, 3):
        await bus.publish(_event("u", seq))
    for tab in tabs:
        assert [e.seq for e in await _take(tab, 3)] == [1, 2, 3]


async def test_signals_reach_every_listener_of_their_channel_only(make_bus: MakeBus) -> None:
    bus = await make_bus()
    wake_a, wake_b, cancel = await bus.listen("wake"), await bus.listen("wake"), await bus.listen("cancel")
    await bus.signal("wake", "queued")
    await bus.signal("cancel", "run-7")  # sent last: it is the cancel listener's first if isolated
    assert await _heard(wake_a) == "queued"
    assert await _heard(wake_b) == "queued"
    assert await _heard(cancel) == "run-7"
    await wake_b.close()
    await bus.signal("wake", "again")
    assert await _heard(wake_a) == "again"
    with pytest.raises(StopAsyncIteration):  # a closed listener's iteration ends
        await _heard(wake_b)


async def test_close_is_idempotent(make_bus: MakeBus) -> None:
    bus = await make_bus()
    subscription, listener = await bus.subscribe("u"), await bus.listen("wake")
    await bus.close()
    await bus.close()
    await subscription.close()
    await listener.close()


# ---- Redis: several processes -------------------------------------------------------------------


@pytest.mark.redis
async def test_two_processes_deliver_to_each_other(redis_buses: Callable[[], Awaitable[RedisBus]]) -> None:
    one, two = await redis_buses(), await redis_buses()
    on_one, on_two = await one.subscribe("alice"), await two.subscribe("alice")
    bob_on_two = await two.subscribe("bob")
    await one.publish(_event("alice", 1))
    await two.publish(_event("alice", 2))
    assert [e.seq for e in await _take(on_one, 2)] == [1, 2]
    assert [e.seq for e in await _take(on_two, 2)] == [1, 2]
    listener = await two.listen("wake")
    await one.signal("wake", "queued")
    assert await _heard(listener) == "queued"
    await _silent(bob_on_two)


@pytest.mark.redis
async def test_a_batch_crosses_processes_whole_and_in_order(
    redis_buses: Callable[[], Awaitable[RedisBus]],
) -> None:
    one, two = await redis_buses(), await redis_buses()
    here, there, bob_there = (
        await one.subscribe("alice"),
        await two.subscribe("alice"),
        await two.subscribe("bob"),
    )
    batch = [_event("alice", seq) for seq in range(1, 301)] + [_event("bob", 1, run_id="bob-run")]
    await one.publish_many(batch)
    alice_bodies = [e.body for e in batch[:-1]]
    assert [e.body for e in await _take(here, 300)] == alice_bodies
    assert [e.body for e in await _take(there, 300)] == alice_bodies
    assert (await _next(bob_there)).run_id == "bob-run"
    await _silent(there)


@pytest.mark.redis
async def test_each_channel_is_subscribed_once_per_process_and_released_with_the_last(
    redis_up: RedisServer,
) -> None:
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    bus = RedisBus(redis_up.url, prefix=prefix)
    await bus.start()
    probe = aioredis.Redis.from_url(redis_up.url)
    try:

        async def subscribers() -> int:
            counts = await probe.pubsub_numsub(f"{prefix}:events:u")
            return int(counts[0][1])

        tabs = [await bus.subscribe("u") for _ in range(10)]
        assert await subscribers() == 1
        for tab in tabs[:-1]:
            await tab.close()
        assert await subscribers() == 1
        await tabs[-1].close()
        async with asyncio.timeout(2):
            while await subscribers():
                await asyncio.sleep(0.01)
    finally:
        await probe.aclose()
        await bus.close()


@pytest.mark.redis
async def test_redis_bus_from_the_url_setting(redis_up: RedisServer) -> None:
    bus = build_bus(redis_up.url)
    assert isinstance(bus, RedisBus)
    await bus.start()
    try:
        await bus.ping()
        subscription = await bus.subscribe("u")
        await bus.publish(_event("u", 1))
        assert (await _next(subscription)).seq == 1
    finally:
        await bus.close()


def test_the_url_setting_selects_the_bus() -> None:
    assert isinstance(build_bus(""), MemoryBus)
    assert isinstance(build_bus("memory://"), MemoryBus)
    for url in ("redis://127.0.0.1:6379/0", "rediss://cache.example:6380", "unix:///run/redis.sock"):
        assert isinstance(build_bus(url), RedisBus)
    with pytest.raises(ValueError, match=r"TOKENWISE_BUS_URL.*postgres://.*redis://") as raised:
        build_bus("postgres://user:secret@db/app")
    assert "secret" not in str(raised.value)


# ---- Redis: outages -----------------------------------------------------------------------------


@dataclass
class Recorder:
    """Reads a subscription like a Feed does: an Overflowed means "read everything from storage"."""

    subscription: Subscription
    overflows: list[float] = field(default_factory=list)
    events: list[tuple[float, RunEvent]] = field(default_factory=list)

    async def run(self) -> None:
        while True:
            try:
                event = await self.subscription.get()
            except Overflowed:
                self.overflows.append(time.monotonic())
            else:
                self.events.append((time.monotonic(), event))


@pytest.mark.redis
async def test_redis_down_is_never_silent_and_delivery_resumes(
    redis_buses: Callable[[], Awaitable[RedisBus]], redis_up: RedisServer
) -> None:
    publisher, subscriber = await redis_buses(), await redis_buses()
    recorder = Recorder(await subscriber.subscribe("u"))
    reading = asyncio.create_task(recorder.run())
    try:
        await publisher.publish(_event("u", 1))
        async with asyncio.timeout(2):
            while not recorder.events:
                await asyncio.sleep(0.01)
        assert not recorder.overflows

        redis_up.kill()
        killed = time.monotonic()
        started = time.monotonic()
        await publisher.publish(_event("u", 2))  # never raises for an outage
        await subscriber.publish(_event("u", 3))
        assert time.monotonic() - started < 1.0
        for bus in (publisher, subscriber):
            with pytest.raises(ServiceUnavailable) as raised:
                await bus.ping()
            assert raised.value.details["dependency"] == "bus"
        await asyncio.sleep(3 * RESYNC_S)
        overflows = [t for t in recorder.overflows if t >= killed]
        assert overflows, "the loss is told"
        assert overflows[0] - killed < RESYNC_S + 0.5, "at once"
        gaps = [b - a for a, b in zip([killed, *overflows], [*overflows, time.monotonic()], strict=True)]
        assert max(gaps) <= RESYNC_S + 0.5, f"told again at least every RESYNC_S while down: {gaps}"
        started = time.monotonic()
        await publisher.publish(_event("u", 4))
        assert time.monotonic() - started < 1.0

        redis_up.start()  # same port
        restarted = time.monotonic()
        live = max([await _wait_until_ready(bus) for bus in (publisher, subscriber)])
        await asyncio.sleep(2 * RESYNC_S)
        assert [t for t in recorder.overflows if t >= restarted], "told once more after the reconnect"
        assert not [t for t in recorder.overflows if t > live + 0.5], "and then no more: it is live"
        seen = len(recorder.events)
        await publisher.publish(_event("u", 5))
        async with asyncio.timeout(2):
            while len(recorder.events) == seen:
                await asyncio.sleep(0.01)
        assert [e.seq for _, e in recorder.events[seen:]] == [5]
    finally:
        reading.cancel()


@pytest.mark.redis
@pytest.mark.parametrize("batched", [False, True], ids=["one_by_one", "in_batches"])
async def test_no_event_is_lost_silently_across_an_outage(
    redis_buses: Callable[[], Awaitable[RedisBus]], redis_up: RedisServer, batched: bool
) -> None:
    """A publisher stores then publishes every 20 ms (one event, or a batch of three with `publish_many`)
    through a Redis kill and restart; a reader that reads storage on every Overflowed has seen every
    stored event, each within a few seconds."""
    publisher, subscriber = await redis_buses(), await redis_buses()
    subscription = await subscriber.subscribe("u")
    storage: list[tuple[float, int]] = []  # (stored at, seq): the ground truth
    seen: dict[int, float] = {}

    async def publish(until: asyncio.Event) -> None:
        seq = 0
        while not until.is_set():
            batch = []
            for _ in range(3 if batched else 1):
                seq += 1
                storage.append((time.monotonic(), seq))
                batch.append(_event("u", seq))
            await (publisher.publish_many(batch) if batched else publisher.publish(batch[0]))
            await asyncio.sleep(0.02)

    async def read() -> None:
        while True:
            try:
                event = await subscription.get()
                seen.setdefault(event.seq, time.monotonic())
            except Overflowed:
                now = time.monotonic()
                for _, seq in list(storage):
                    seen.setdefault(seq, now)

    stop = asyncio.Event()
    tasks = [asyncio.create_task(publish(stop)), asyncio.create_task(read())]
    try:
        await asyncio.sleep(0.5)
        redis_up.kill()
        await asyncio.sleep(2.5)
        redis_up.start()
        await _wait_until_ready(subscriber)
        await _wait_until_ready(publisher)
        await asyncio.sleep(1.0)
        stop.set()
        await tasks[0]
        async with asyncio.timeout(3):
            while len(seen) < len(storage):
                await asyncio.sleep(0.02)
    finally:
        for task in tasks:
            task.cancel()
    assert set(seen) == {seq for _, seq in storage}
    delays = [seen[seq] - stored for stored, seq in storage]
    assert max(delays) < RESYNC_S + 1.5, f"slowest event reached the reader after {max(delays):.2f}s"


@pytest.mark.redis
async def test_a_dropped_subscriber_connection_resyncs_what_it_missed(redis_up: RedisServer) -> None:
    """Another process keeps publishing while this one's pub/sub connection is cut and restored: what
    was published in the gap is missed by Redis, so the reconnect must say Overflowed."""
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    bus = RedisBus(redis_up.url, prefix=prefix)
    await bus.start()
    other_process = aioredis.Redis.from_url(redis_up.url)
    subscription = await bus.subscribe("u")
    storage: list[int] = []
    seen: set[int] = set()

    async def publish(until: asyncio.Event) -> None:
        seq = 0
        while not until.is_set():
            seq += 1
            storage.append(seq)
            await other_process.publish(f"{prefix}:events:u", _event("u", seq).body)
            await asyncio.sleep(0.002)

    async def read() -> None:
        while True:
            try:
                seen.add((await subscription.get()).seq)
            except Overflowed:
                seen.update(storage)

    stop = asyncio.Event()
    tasks = [asyncio.create_task(publish(stop)), asyncio.create_task(read())]
    try:
        await asyncio.sleep(0.2)
        for _ in range(3):
            assert redis_up.command("CLIENT", "KILL", "TYPE", "pubsub").startswith(b":")
            await asyncio.sleep(0.3)
        stop.set()
        await tasks[0]
        await _wait_until_ready(bus)
        async with asyncio.timeout(3):
            while len(seen) < len(storage):
                await asyncio.sleep(0.02)
    finally:
        for task in tasks:
            task.cancel()
        await other_process.aclose()
        await bus.close()
    assert seen == set(storage)


async def test_redis_unreachable_from_the_start() -> None:
    bus = RedisBus(f"redis://127.0.0.1:{free_port()}/0")
    started = time.monotonic()
    await bus.start()  # does not raise: events are read from storage until Redis answers
    try:
        assert time.monotonic() - started < 2.0
        with pytest.raises(ServiceUnavailable):
            await bus.ping()
        recorder = Recorder(await bus.subscribe("u"))
        reading = asyncio.create_task(recorder.run())
        started = time.monotonic()
        await bus.publish(_event("u", 1))
        assert time.monotonic() - started < 1.0
        await asyncio.sleep(2.5 * RESYNC_S)
        reading.cancel()
        assert len(recorder.overflows) >= 2
        # Within the process, the event did not need Redis (a bonus: the contract only asks to be told).
        assert [e.seq for _, e in recorder.events] == [1]
    finally:
        await bus.close()
