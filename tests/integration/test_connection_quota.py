"""The per-user connection limit: in one process (LocalQuota), across processes (RedisQuota, real Redis).

Each RedisQuota instance stands for one server process; a "killed" process is one closed without
releasing its slots. Every test uses its own key prefix on the session's redis-server.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

import pytest

from support.servers import RedisServer, free_port
from tokenwise.errors import TooManyConnections
from tokenwise.limits.quota import LocalQuota, RedisQuota
from tokenwise.services.connections import ConnectionRegistry

LIMIT_MESSAGE = "at most 2 connections per user; close another tab or client"

MakeQuota = Callable[..., RedisQuota]


@dataclass(eq=False)
class FakeConnection:
    id: str
    told: bool = False

    async def shutdown(self) -> None:
        self.told = True


@pytest.fixture
def redis_up(redis_server: RedisServer) -> Iterator[RedisServer]:
    redis_server.start()
    yield redis_server
    redis_server.start()


@pytest.fixture
async def make_quota(redis_up: RedisServer) -> AsyncIterator[MakeQuota]:
    """RedisQuotas of one deployment (one prefix): each is one process."""
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    made: list[RedisQuota] = []

    def make(max_per_user: int = 2, **options: float) -> RedisQuota:
        quota = RedisQuota(redis_up.url, max_per_user, prefix=prefix, **options)
        made.append(quota)
        return quota

    yield make
    for quota in made:
        await quota.close()


# ---- in one process -----------------------------------------------------------------------------


async def test_local_quota_limits_each_user() -> None:
    quota = LocalQuota(2)
    await quota.acquire("alice", "a1")
    await quota.acquire("alice", "a2")
    await quota.acquire("alice", "a2")  # the same connection again takes no second slot
    with pytest.raises(TooManyConnections) as raised:
        await quota.acquire("alice", "a3")
    assert raised.value.message == LIMIT_MESSAGE
    await quota.acquire("bob", "b1")  # another user's slots are their own
    await quota.release("alice", "a1")
    await quota.release("alice", "never-held")
    await quota.acquire("alice", "a3")


async def test_the_registry_keeps_todays_limit_by_default() -> None:
    registry = ConnectionRegistry(2)
    first, second, third = FakeConnection("1"), FakeConnection("2"), FakeConnection("3")
    await registry.add("alice", first)
    await registry.add("alice", second)
    with pytest.raises(TooManyConnections) as raised:
        await registry.add("alice", third)
    assert raised.value.message == LIMIT_MESSAGE
    assert registry.count("alice") == 2
    await registry.remove("alice", first)
    await registry.remove("alice", first)  # twice is harmless and frees nothing more
    await registry.add("alice", third)
    assert registry.count() == 2
    await registry.shutdown_all()
    assert (first.told, second.told, third.told) == (False, True, True)


# ---- across processes -----------------------------------------------------------------------------


@pytest.mark.redis
async def test_the_limit_is_shared_by_every_process(make_quota: MakeQuota) -> None:
    one, two = make_quota(3), make_quota(3)
    await one.acquire("alice", "a1")
    await one.acquire("alice", "a2")
    await two.acquire("alice", "a3")
    for quota, connection_id in ((two, "a4"), (one, "a5")):
        with pytest.raises(TooManyConnections):
            await quota.acquire("alice", connection_id)
    await two.acquire("bob", "b1")
    await one.release("alice", "a1")  # frees a slot for every process at once
    await two.acquire("alice", "a4")
    with pytest.raises(TooManyConnections):
        await one.acquire("alice", "a5")


@pytest.mark.redis
async def test_registries_of_two_processes_share_a_redis_quota(make_quota: MakeQuota) -> None:
    here, there = ConnectionRegistry(2, quota=make_quota()), ConnectionRegistry(2, quota=make_quota())
    await here.add("alice", FakeConnection("1"))
    leaving = FakeConnection("2")
    await there.add("alice", leaving)
    with pytest.raises(TooManyConnections) as raised:
        await here.add("alice", FakeConnection("3"))
    assert raised.value.message == LIMIT_MESSAGE
    assert here.count("alice") == 1
    await there.remove("alice", leaving)
    await here.add("alice", FakeConnection("3"))


@pytest.mark.redis
async def test_a_killed_process_frees_its_slots_within_the_ttl(make_quota: MakeQuota) -> None:
    doomed, survivor = make_quota(ttl_s=1.0), make_quota(ttl_s=1.0)
    await doomed.acquire("alice", "a1")
    await doomed.acquire("alice", "a2")
    await asyncio.sleep(1.5)  # past the ttl: a live process keeps its slots fresh
    with pytest.raises(TooManyConnections):
        await survivor.acquire("alice", "a3")
    await doomed.close()  # killed: it never releases
    killed = time.monotonic()
    with pytest.raises(TooManyConnections):
        await survivor.acquire("alice", "a3")
    async with asyncio.timeout(3):
        while True:
            try:
                await survivor.acquire("alice", "a3")
                break
            except TooManyConnections:
                await asyncio.sleep(0.05)
    assert time.monotonic() - killed <= 1.0 + 0.5
    await survivor.acquire("alice", "a4")
    with pytest.raises(TooManyConnections):
        await survivor.acquire("alice", "a5")


@pytest.mark.redis
async def test_redis_down_falls_back_to_this_processes_count(
    make_quota: MakeQuota, redis_up: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    here, there = make_quota(ttl_s=3.0), make_quota(ttl_s=3.0)
    await there.acquire("alice", "elsewhere")
    redis_up.kill()
    caplog.set_level(logging.WARNING, logger="tokenwise.quota")
    started = time.monotonic()
    await here.acquire("alice", "a1")  # never refused because of Redis: only this process is counted
    await here.acquire("alice", "a2")
    with pytest.raises(TooManyConnections):
        await here.acquire("alice", "a3")
    await here.release("alice", "a1")
    await here.acquire("alice", "a3")
    assert time.monotonic() - started < 1.0
    unreachable = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(unreachable) == 1, "warned once"

    redis_up.start()  # empty: everything it counted is gone
    await asyncio.sleep(2.1)  # past the pause after a failure
    await here.refresh()  # what the background task does every ttl/3: the slots held here come back
    with pytest.raises(TooManyConnections):
        await there.acquire("alice", "b1")


async def test_redis_unreachable_from_the_start_counts_locally() -> None:
    quota = RedisQuota(f"redis://127.0.0.1:{free_port()}/0", 2)
    try:
        await quota.acquire("alice", "a1")
        await quota.acquire("alice", "a2")
        with pytest.raises(TooManyConnections):
            await quota.acquire("alice", "a3")
        await quota.release("alice", "a2")
        await quota.acquire("alice", "a3")
    finally:
        await quota.close()
