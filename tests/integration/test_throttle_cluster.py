"""Sign-in limits across a cluster: two real servers sharing one database and one real Redis spend from
the same buckets, so wrong passwords spread over both are throttled and locked as one budget; and with
Redis unreachable, the limits fall back to the process instead of failing."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator

import httpx
import pytest

from support.clients import signup
from support.live import LiveServer
from support.servers import RedisServer, free_port
from tokenwise.errors import RateLimited
from tokenwise.limits.redis_throttle import RedisThrottle
from tokenwise.limits.throttle import AccountLocked, ThrottleLimits

pytestmark = pytest.mark.redis

PASSWORD = "correct-horse-1"
LOCK_S = 30.0


@pytest.fixture
def redis_up(redis_server: RedisServer) -> Iterator[RedisServer]:
    redis_server.start()
    yield redis_server
    redis_server.start()


@pytest.fixture
def pair(
    start_server: Callable[..., LiveServer], redis_up: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> tuple[LiveServer, LiveServer]:
    """Two servers on one SQLite database and one Redis: two processes of a cluster."""
    shared = tmp_path_factory.mktemp("cluster")
    limits = {
        "bus_url": redis_up.url,
        "login_lock_s": LOCK_S,
        "register_burst_per_address": 4,
        "refresh_per_minute_per_address": 5,
        "tickets_per_minute_per_user": 3,
    }
    return start_server(data_dir=shared, **limits), start_server(data_dir=shared, **limits)


def _address() -> dict[str, str]:
    # the test client is on loopback, a proxy uvicorn trusts: a fresh client address the servers see
    # (the session's Redis outlives this test: its buckets must be this test's own)
    return {
        "X-Forwarded-For": f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"
    }


def _code(response: httpx.Response) -> str:
    if response.status_code < 400:
        return str(response.status_code)
    return f"{response.status_code} {response.json()['error']['code']}"


def test_wrong_passwords_over_two_servers_lock_the_account_as_one(
    pair: tuple[LiveServer, LiveServer],
) -> None:
    one, two = pair
    victim = asyncio.run(signup(one.url))
    wrong = {"email": victim.email, "password": "wrong-password-1"}
    right = {"email": victim.email, "password": PASSWORD}
    with httpx.Client(timeout=30) as http:
        # 10 failures in a row lock the account: 5 on each server are 10 for the cluster
        failures = [http.post(f"{s.url}/auth/login", json=wrong, headers=_address()) for s in (one, two) * 5]
        assert [_code(r) for r in failures] == ["401 invalid_credentials"] * 10

        for server in (one, two):
            locked = http.post(f"{server.url}/auth/login", json=right, headers=_address())
            assert _code(locked) == "429 account_locked", locked.text  # the right password too
            assert 0 < locked.json()["error"]["retry_after_s"] <= LOCK_S
            assert int(locked.headers["Retry-After"]) >= 1


def test_one_address_has_one_budget_over_both_servers(pair: tuple[LiveServer, LiveServer]) -> None:
    one, two = pair
    address = _address()
    account = asyncio.run(signup(one.url))

    async def spread() -> None:
        async with httpx.AsyncClient(timeout=30) as http:
            began = time.monotonic()
            sprayed: Counter[str] = Counter()
            for i in range(40):  # many accounts from one address, alternating servers
                body = {"email": f"nobody-{uuid.uuid4().hex[:8]}-{i}@example.com", "password": "wrong-1"}
                server = (one, two)[i % 2]
                sprayed[_code(await http.post(f"{server.url}/auth/login", json=body, headers=address))] += 1
            refilled = int((time.monotonic() - began) * 30 / 60) + 1
            assert sprayed["401 invalid_credentials"] <= 30 + refilled, sprayed  # not 30 per server
            assert sprayed["429 rate_limited"] >= 10 - refilled, sprayed

            async def each(path: str, make: Callable[[int], dict[str, str]], **headers: str) -> Counter[str]:
                servers = [(one, two)[i % 2] for i in range(8)]
                return Counter(
                    [
                        _code(await http.post(f"{s.url}{path}", json=make(i), headers={**address, **headers}))
                        for i, s in enumerate(servers)
                    ]
                )

            registered = await each(
                "/auth/register",
                lambda i: {"email": f"r-{uuid.uuid4().hex[:8]}@example.com", "password": PASSWORD},
            )
            assert registered == {"201": 4, "429 rate_limited": 4}, registered
            refreshed = await each("/auth/refresh", lambda i: {"refresh_token": f"forged-{i}"})
            assert refreshed["401 unauthenticated"] <= 6, refreshed
            assert refreshed["429 rate_limited"] >= 2, refreshed
            tickets = await each(
                "/api/ws/ticket", lambda i: {}, Authorization=f"Bearer {account.access_token}"
            )
            assert tickets["200"] <= 4, tickets  # 3 a minute for the user, wherever asked
            assert tickets["429 rate_limited"] >= 4, tickets

    asyncio.run(spread())


async def test_unreachable_redis_falls_back_to_this_process(caplog: pytest.LogCaptureFixture) -> None:
    nobody = f"redis://127.0.0.1:{free_port()}/0"  # a real address where no Redis listens
    throttle = RedisThrottle(nobody, ThrottleLimits(login_lock_after=3))
    caplog.set_level(logging.WARNING, logger="tokenwise.throttle")
    try:
        for _ in range(3):
            await throttle.begin_login("victim@example.com", "10.0.0.1")
            await throttle.login_failed("victim@example.com", "10.0.0.1")
        with pytest.raises(AccountLocked):
            await throttle.begin_login("victim@example.com", "10.0.0.2")
        for _ in range(120):
            await throttle.ticket("user-1")
        with pytest.raises(RateLimited):
            await throttle.ticket("user-1")
    finally:
        await throttle.close()
    down = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(down) == 1, [r.getMessage() for r in caplog.records]  # logged once, not per request


async def test_the_redis_buckets_match_the_in_process_semantics(redis_up: RedisServer) -> None:
    limits = ThrottleLimits(login_per_minute_per_account=3, login_lock_after=5, login_lock_s=0.5)
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    one, two = (RedisThrottle(redis_up.url, limits, prefix=prefix) for _ in range(2))
    try:
        # a success gives its token back; failures keep theirs: the account bucket (3) empties
        for _ in range(5):
            await one.begin_login("a@example.com", "10.0.0.1")
            await one.login_succeeded("a@example.com")
        for throttle in (one, two, one):
            await throttle.begin_login("b@example.com", "10.0.0.1")
            await throttle.login_failed("b@example.com", "10.0.0.1")
        with pytest.raises(RateLimited) as empty:
            await two.begin_login("b@example.com", "10.0.0.1")
        assert not isinstance(empty.value, AccountLocked)
        assert 0 < empty.value.retry_after_s <= 20  # a token refills every 20 s
        # an abandoned attempt (an error, no answer about the password) gives its token back too
        await one.begin_login("c@example.com", "10.0.0.1")
        await two.login_abandoned("c@example.com")
        for _ in range(3):
            await two.begin_login("c@example.com", "10.0.0.1")
        # the lock: lock_after failures, and it ends with a fresh account
        fast = ThrottleLimits(login_per_minute_per_account=100, login_lock_after=2, login_lock_s=0.5)
        three = RedisThrottle(redis_up.url, fast, prefix=prefix)
        try:
            for _ in range(2):
                await three.begin_login("d@example.com", "10.0.0.9")
                await three.login_failed("d@example.com", "10.0.0.9")
            with pytest.raises(AccountLocked) as locked:
                await three.begin_login("d@example.com", "10.0.0.9")
            assert 0 < locked.value.retry_after_s <= 0.5
            await asyncio.sleep(0.6)
            await three.begin_login("d@example.com", "10.0.0.9")
            await three.login_failed("d@example.com", "10.0.0.9")  # a new streak: 1 of 2, no lock
            await three.begin_login("d@example.com", "10.0.0.9")
        finally:
            await three.close()
    finally:
        await one.close()
        await two.close()
