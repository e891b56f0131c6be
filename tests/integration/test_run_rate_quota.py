"""Runs a minute per user (limits/quota.py): a token bucket per user, spent before a message is stored.

Over it, the WebSocket answers `rate_limited` (`limit: runs_per_minute`, `retry_after_s`, the message's
`client_message_id`) and stays open, REST answers 429 with Retry-After; nothing is stored. In one process
(LocalRunRate), and across processes on a real redis-server (RedisRunRate).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection

from support.clients import open_ws, recv_json, signup
from support.live import LiveServer, ServerProcess, spawn, test_settings, wait_healthy
from support.servers import RedisServer
from tokenwise.errors import RateLimited
from tokenwise.limits import redis_link
from tokenwise.limits.quota import LocalRunRate, RedisRunRate, RunRateLimited

PER_MINUTE = 3


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(
        test_settings(
            tmp_path_factory.mktemp("run-rate"),
            runs_per_minute_per_user=PER_MINUTE,
            max_active_runs_per_user=100,  # only the rate limits here
            messages_per_second=1000.0,
            message_burst=1000,
        )
    ).start()
    yield server
    server.stop()


async def _reply(ws: ClientConnection, client_message_id: str) -> dict[str, Any]:
    """The ack or error frame that answers the message `client_message_id` (run events are skipped)."""
    while True:
        frame = await recv_json(ws)
        if frame["type"] in ("ack", "error") and frame.get("client_message_id") == client_message_id:
            return frame


async def _say(ws: ClientConnection, content: str, **fields: Any) -> dict[str, Any]:
    client_message_id = uuid.uuid4().hex
    frame = {"type": "user_message", "content": content, "client_message_id": client_message_id, **fields}
    await ws.send(json.dumps(frame))
    return await _reply(ws, client_message_id)


def _http(live: LiveServer, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=live.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


async def test_over_the_runs_a_minute_a_message_is_refused_and_not_stored(live: LiveServer) -> None:
    alice, bob = await signup(live.url), await signup(live.url)
    ws, _ = await open_ws(live.ws_url, alice.access_token)
    async with ws:
        first = await _say(ws, "question 1")
        assert first["type"] == "ack", first
        thread_id = first["thread_id"]
        for n in (2, 3):
            assert (await _say(ws, f"question {n}", thread_id=thread_id))["type"] == "ack"
        refused = await _say(ws, "question 4", thread_id=thread_id)
        assert refused["code"] == "rate_limited", refused
        assert refused["limit"] == "runs_per_minute"
        assert refused["message"] == f"at most {PER_MINUTE} runs a minute per user; slow down"
        # one token comes back every 60 / PER_MINUTE = 20 s
        assert 10 < refused["retry_after_s"] <= 60 / PER_MINUTE
        # the connection stays open and serves other frames
        await ws.send(json.dumps({"type": "ping"}))
        while (frame := await recv_json(ws))["type"] != "pong":
            assert frame.get("code") != "internal_error", frame

    async with _http(live, alice.access_token) as http:
        messages = (await http.get(f"/api/threads/{thread_id}/messages")).json()["messages"]
    asked = [m["content"] for m in messages if m["role"] == "user"]
    assert asked == ["question 1", "question 2", "question 3"]  # the refused one was never stored

    # Another user's bucket is their own.
    other, _ = await open_ws(live.ws_url, bob.access_token)
    async with other:
        assert (await _say(other, "bob's question"))["type"] == "ack"


async def test_rest_agent_endpoints_answer_429_with_retry_after_sharing_the_users_bucket(
    live: LiveServer,
) -> None:
    carol = await signup(live.url)
    ws, _ = await open_ws(live.ws_url, carol.access_token)
    async with ws:
        assert (await _say(ws, "over the socket"))["type"] == "ack"  # one of the three, spent over WS
    async with _http(live, carol.access_token) as http:
        for path in ("/api/agents/execute", "/api/agents/triage"):
            accepted = await http.post(path, json={"message": "over REST"})
            assert accepted.status_code == 202, accepted.text
        for path in ("/api/agents/execute", "/api/agents/triage", "/api/agents/stream"):
            refused = await http.post(path, json={"message": "one too many", "client_message_id": "x-1"})
            assert refused.status_code == 429, (path, refused.text)
            error = refused.json()["error"]
            assert error["code"] == "rate_limited"
            assert error["limit"] == "runs_per_minute"
            assert error["client_message_id"] == "x-1"
            # the next token is at most one refill (20 s at 3 a minute) away; how much less, the load decides
            assert 0 < error["retry_after_s"] <= 20
            assert 1 <= int(refused.headers["Retry-After"]) <= 20
        threads = (await http.get("/api/threads")).json()["threads"]
    titles = sorted(thread["title"] for thread in threads)
    assert titles == ["over REST", "over REST", "over the socket"]  # nothing of the refused ones


def test_the_local_bucket_refills_at_the_rate() -> None:
    now = [0.0]
    rate = LocalRunRate(60, clock=lambda: now[0])  # one a second, 60 at once
    for _ in range(60):
        rate.take("alice")
    with pytest.raises(RunRateLimited) as refused:
        rate.take("alice")
    assert refused.value.retry_after_s == pytest.approx(1.0)
    assert isinstance(refused.value, RateLimited)
    rate.take("bob")
    now[0] = 0.5
    with pytest.raises(RunRateLimited) as refused:
        rate.take("alice")
    assert refused.value.retry_after_s == pytest.approx(0.5)
    now[0] = 1.0
    rate.take("alice")  # one back after a second, and only one
    with pytest.raises(RunRateLimited):
        rate.take("alice")


# ---- across processes, on a real Redis ----------------------------------------------------------------

MakeRate = Callable[..., RedisRunRate]


@pytest.fixture
def redis_up(redis_server: RedisServer) -> Iterator[RedisServer]:
    redis_server.start()
    yield redis_server
    redis_server.start()


@pytest.fixture
async def make_rate(redis_up: RedisServer) -> AsyncIterator[MakeRate]:
    """RedisRunRates of one deployment (one key prefix): each stands for one server process."""
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    made: list[RedisRunRate] = []

    def make(per_minute: int = PER_MINUTE) -> RedisRunRate:
        rate = RedisRunRate(redis_up.url, per_minute, prefix=prefix)
        made.append(rate)
        return rate

    yield make
    for rate in made:
        await rate.close()


@pytest.mark.redis
async def test_the_redis_bucket_is_shared_by_every_process(
    make_rate: MakeRate, redis_up: RedisServer
) -> None:
    one, two = make_rate(), make_rate()
    await one.admit("alice")
    await two.admit("alice")
    await one.admit("alice")
    for rate in (one, two):
        with pytest.raises(RunRateLimited) as refused:
            await rate.admit("alice")
        assert 19 < refused.value.retry_after_s <= 20
    await two.admit("bob")  # another user's bucket is their own
    key = f"{one._key}alice"
    ttl = int(redis_up.command("PTTL", key).lstrip(b":"))
    assert 0 < ttl <= 61_000  # the bucket expires once it would be full again


@pytest.mark.redis
async def test_the_redis_bucket_refills_at_the_rate(make_rate: MakeRate) -> None:
    one, two = make_rate(120), make_rate(120)  # two a second
    # Taken in turns, not all at once: 120 concurrent admits open as many connections, and on a busy
    # machine one of them outlasting the link's 0.5 s connect timeout sends that process to counting
    # alone (what it should do; the sharing itself is the test above).
    for _ in range(60):
        await one.admit("alice")
        await two.admit("alice")
    with pytest.raises(RunRateLimited) as refused:
        await one.admit("alice")
    assert 0 < refused.value.retry_after_s <= 0.5
    await asyncio.sleep(refused.value.retry_after_s + 0.05)
    await two.admit("alice")
    with pytest.raises(RunRateLimited):
        await one.admit("alice")


@pytest.mark.redis
async def test_while_redis_is_away_each_process_counts_its_own(
    make_rate: MakeRate, redis_up: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_link, "RETRY_S", 0.2)  # how long Redis is left alone after a failure
    rate = make_rate(2)
    redis_up.stop()
    await rate.admit("alice")  # never refused for Redis being away
    await rate.admit("alice")
    with pytest.raises(RunRateLimited):
        await rate.admit("alice")
    redis_up.start()
    await asyncio.sleep(0.3)  # past the retry delay: Redis is asked again
    await rate.admit("alice")  # Redis's own bucket is full


@pytest.mark.redis
@pytest.mark.slow
async def test_two_api_processes_share_the_runs_a_minute(
    tmp_path: Path, processes: list[ServerProcess], redis_server: RedisServer
) -> None:
    redis_server.start()
    shared = {
        "TOKENWISE_BUS_URL": redis_server.url,
        "TOKENWISE_RUNS_PER_MINUTE_PER_USER": "4",
        "TOKENWISE_MAX_ACTIVE_RUNS_PER_USER": "100",  # no worker here: the runs stay queued
    }
    auth = spawn(processes, tmp_path, "auth")
    apis = [spawn(processes, tmp_path, "api", TOKENWISE_AUTH_URL=auth.url, **shared) for _ in range(2)]
    for process in (auth, *apis):
        wait_healthy(process.url, timeout=60)  # three processes boot at once on a shared machine
    account = await signup(auth.url)
    sockets = [await open_ws(api.ws_url, account.access_token) for api in apis]
    try:
        for ws, _ in sockets:
            for _ in range(2):
                assert (await _say(ws, "a question"))["type"] == "ack"
        for ws, _ in sockets:
            refused = await _say(ws, "one too many")
            assert (refused["code"], refused["limit"]) == ("rate_limited", "runs_per_minute")
    finally:
        for ws, _ in sockets:
            await ws.close()
