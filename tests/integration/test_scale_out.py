"""The scale-out guarantees with real processes: auth + 2 API + 2 workers on PostgreSQL and Redis.

Each test signs up its own users on a cluster shared by the module (see support/cluster.py); a test that
kills a process has it replaced before the next test. What every client received is compared with the
stored events read back over REST, and each run's events with the ordering contract: seq 1..n, each
once, exactly one final event.
"""

from __future__ import annotations

import asyncio
import signal
import statistics
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from support.clients import Account
from support.cluster import (
    GRACE_S,
    LEASE_S,
    Cluster,
    pid,
    ready,
    send_signal,
    shared_cluster,
    until,
)
from support.servers import PostgresServer, RedisServer
from support.tabs import Tab, Tabs, assert_exact, created, ending, sse_events
from tokenwise.bus.base import RESYNC_S
from tokenwise.db.tables import MessageRow

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

STEP_MS = 60  # a run takes ~4 s: long enough to act on it mid-run
MAX_ACTIVE = 2


@pytest.fixture(scope="module")
def scaled(
    tmp_path_factory: pytest.TempPathFactory, postgres_server: PostgresServer, redis_server: RedisServer
) -> Iterator[Cluster]:
    with shared_cluster(
        tmp_path_factory.mktemp("scale-out"),
        postgres_server,
        redis_server,
        apis=2,
        workers=2,
        worker_env={
            "TOKENWISE_TEST_STEP_DELAY_MS": str(STEP_MS),
            "TOKENWISE_WORKER_CONCURRENCY": "5",
            "TOKENWISE_RECOVERY": "interrupt",
        },
        TOKENWISE_LEASE_S=str(LEASE_S),
        TOKENWISE_SHUTDOWN_GRACE_S=str(GRACE_S),
        TOKENWISE_MAX_ACTIVE_RUNS_PER_USER=str(MAX_ACTIVE),
        TOKENWISE_WORKER_POLL_S="0.5",
    ) as cluster:
        yield cluster


@pytest.fixture
async def cluster(scaled: Cluster, redis_server: RedisServer) -> Cluster:
    """The module's cluster, whole again: whatever an earlier test killed has been replaced."""
    redis_server.start()
    await scaled.whole()
    return scaled


@pytest.fixture
async def tabs() -> AsyncIterator[Tabs]:
    opened = Tabs()
    yield opened
    await opened.close()


async def _ready(process: Any) -> dict[str, Any]:
    status, body = await ready(process)
    assert status == 200, body
    return body


# ---- any process serves any client; API processes execute nothing ---------------------------------


async def test_any_api_process_serves_any_client(cluster: Cluster, tabs: Tabs) -> None:
    a, b = cluster.apis
    account = await cluster.signup()
    tab1, tab2 = await tabs.open(a, account), await tabs.open(b, account)
    ack = await tab1.submit("Where does our LLM spend go?", "any-1")
    run_id = ack["run_id"]
    async with cluster.http(account, a) as http:
        streamed = asyncio.create_task(sse_events(http, run_id))  # SSE on A while the run goes on
        live1 = await tab1.until_final(run_id)
        live2 = await tab2.until_final(run_id)
        sse = await asyncio.wait_for(streamed, 30)
    stored = await cluster.stored(account, run_id, b)
    assert_exact(live1, stored)
    assert_exact(live2, stored)
    assert sse == stored
    assert ending(stored) == ("agent_completed", None)
    # Live on both tabs: each had the run's first event before its final event even existed.
    for tab in (tab1, tab2):
        assert tab.arrivals(run_id)[0][0] < created(stored[-1]), "not live"
    assert (await cluster.lease(run_id)).pid in {pid(w) for w in cluster.workers}

    # A tab on A drops mid-run; the client reconnects to B and resumes from what it has.
    tab3 = await tabs.open(a, account)
    ack = await tab3.submit("And by team?", "any-2", thread_id=ack["thread_id"])
    run_id = ack["run_id"]
    await tab3.until_events(run_id, 5)
    tab3.abort()
    await tab3.wait_closed()
    seen = tab3.events(run_id)
    assert not tab3.final(run_id)
    tab4 = await tabs.open(b, account)
    await tab4.send({"type": "resume", "run_id": run_id, "after_seq": seen[-1]["seq"]})
    rest = await tab4.until_final(run_id)
    stored = await cluster.stored(account, run_id, a)
    assert_exact(seen + rest, stored)
    assert_exact(await tab2.until_final(run_id), stored)  # B's first tab followed the new run live


async def test_api_processes_execute_no_runs_and_the_workers_share_them(cluster: Cluster, tabs: Tabs) -> None:
    accounts = await asyncio.gather(*(cluster.signup() for _ in range(5)))
    opened = [await tabs.open(cluster.apis[i % 2], account) for i, account in enumerate(accounts)]
    # 10 runs at once (2 per user, the limit); a worker executes at most 5 at a time.
    acks = await asyncio.gather(
        *(
            tab.submit(f"Question {n} of user {i}", f"spread-{i}-{n}")
            for i, tab in enumerate(opened)
            for n in range(2)
        )
    )
    assert [ack["type"] for ack in acks] == ["ack"] * 10, acks
    owners = []
    for index, ack in enumerate(acks):
        tab, account = opened[index // 2], accounts[index // 2]
        events = await tab.until_final(ack["run_id"])
        assert_exact(events, await cluster.stored(account, ack["run_id"]))
        assert ending(events) == ("agent_completed", None)
        lease = await cluster.lease(ack["run_id"])
        assert lease.epoch == 1, lease  # claimed once, by the worker that ran it to its end
        owners.append(lease.pid)
    workers = {pid(w) for w in cluster.workers}
    apis = {pid(a) for a in cluster.apis}
    assert set(owners) == workers, (owners, workers, apis)
    for api in cluster.apis:
        assert "worker" not in (await _ready(api))["checks"]


# ---- cancel reaches the run wherever it executes ---------------------------------------------------


async def _started(cluster: Cluster, tabs: Tabs, cmid: str) -> tuple[Account, Tab, Tab, str]:
    """A user with a tab on each API, and a run started on A that is under way on a worker."""
    account = await cluster.signup()
    tab_a, tab_b = await tabs.open(cluster.apis[0], account), await tabs.open(cluster.apis[1], account)
    ack = await tab_a.submit("How do I cut my LLM costs by 30%?", cmid)
    await tab_a.until_events(ack["run_id"], 4)
    await cluster.holder(ack["run_id"])
    return account, tab_a, tab_b, ack["run_id"]


async def _assert_cancelled(cluster: Cluster, account: Account, run_id: str, *tabs_: Tab) -> None:
    for tab in tabs_:
        events = await tab.until_final(run_id, timeout=10)
        assert ending(events) == ("agent_error", "cancelled"), events[-1]
        assert_exact(events, await cluster.stored(account, run_id))
        assert not [f for f in tab.frames if f.get("type") == "error"], tab.frames
    assert (await cluster.ended(account, run_id))["status"] == "cancelled"


async def test_stop_agent_on_another_api_process_stops_the_run_on_its_worker(
    cluster: Cluster, tabs: Tabs
) -> None:
    account, tab_a, tab_b, run_id = await _started(cluster, tabs, "stop-ws")
    sent = time.time()
    await tab_b.send({"type": "stop_agent", "run_id": run_id})
    await _assert_cancelled(cluster, account, run_id, tab_a, tab_b)
    # The stop went over the bus, not via the holder's next lease renewal.
    assert tab_a.arrivals(run_id)[-1][0] - sent < LEASE_S / 3


async def test_cancel_over_http_on_another_api_process_stops_the_run(cluster: Cluster, tabs: Tabs) -> None:
    account, tab_a, tab_b, run_id = await _started(cluster, tabs, "stop-http")
    async with cluster.http(account, cluster.apis[1]) as http:
        response = await http.post(f"/api/runs/{run_id}/cancel")
    assert response.status_code == 202, response.text
    assert response.json() == {"run_id": run_id, "status": "cancelling"}
    await _assert_cancelled(cluster, account, run_id, tab_a, tab_b)


async def test_a_stop_of_a_run_no_worker_has_claimed_ends_it_at_once(cluster: Cluster, tabs: Tabs) -> None:
    account = await cluster.signup()
    tab_a, tab_b = await tabs.open(cluster.apis[0], account), await tabs.open(cluster.apis[1], account)
    paused = list(cluster.workers)
    for worker in paused:  # no worker runs: the run stays queued
        send_signal(worker, signal.SIGSTOP)
    try:
        ack = await tab_a.submit("Where does our LLM spend go?", "queued-stop")
        run_id = ack["run_id"]
        assert (await cluster.lease(run_id)).status == "queued"
        sent = time.time()
        await tab_b.send({"type": "stop_agent", "run_id": run_id})
        events = await tab_a.until_final(run_id, timeout=5)
        ended_in = tab_a.arrivals(run_id)[-1][0] - sent
    finally:
        for worker in paused:
            send_signal(worker, signal.SIGCONT)
    assert ended_in < 2.0, ended_in
    assert [(e["type"], e["agent_name"]) for e in events] == [
        ("agent_started", "supervisor"),
        ("agent_error", "supervisor"),
    ]
    await _assert_cancelled(cluster, account, run_id, tab_a, tab_b)
    lease = await cluster.lease(run_id)
    assert lease.pid == pid(cluster.apis[1]), lease  # ended by the API process that got the stop
    # The workers, running again, leave the ended run alone.
    await asyncio.sleep(1.0)
    assert await cluster.stored(account, run_id) == events
    assert (await cluster.lease(run_id)).epoch == lease.epoch


# ---- limits hold cluster-wide ----------------------------------------------------------------------


async def test_the_limit_on_active_runs_per_user_holds_across_api_processes(
    cluster: Cluster, tabs: Tabs
) -> None:
    account = await cluster.signup()
    tab_a, tab_b = await tabs.open(cluster.apis[0], account), await tabs.open(cluster.apis[1], account)
    first = await tab_a.submit("First question", "limit-1")
    second = await tab_b.submit("Second question", "limit-2")
    assert (first["type"], second["type"]) == ("ack", "ack")
    third = await tab_a.submit("Third question", "limit-3", thread_id=first["thread_id"])
    fourth = await tab_b.submit("Fourth question", "limit-4")
    for refused, cmid in ((third, "limit-3"), (fourth, "limit-4")):
        assert refused["type"] == "error", refused
        assert refused["code"] == "too_many_runs", refused
        assert refused["retry_after_s"] > 0, refused
        assert refused["client_message_id"] == cmid, refused
        # Nothing stored for it.
        assert await cluster.count(user_id=account.user_id, table=MessageRow, client_message_id=cmid) == 0
    assert await cluster.count(user_id=account.user_id) == 2
    async with cluster.http(account, cluster.apis[1]) as http:
        threads = (await http.get("/api/threads")).json()["threads"]
        messages = (await http.get(f"/api/threads/{first['thread_id']}/messages")).json()["messages"]
    assert len(threads) == 2, threads
    assert [m["content"] for m in messages if m["role"] == "user"] == ["First question"]

    # Once the runs end, there is room again.
    for tab, ack in ((tab_b, first), (tab_a, second)):
        await tab.send({"type": "stop_agent", "run_id": ack["run_id"]})
    for ack in (first, second):
        await tab_a.until_final(ack["run_id"])
    fifth = await tab_b.submit("Fifth question", "limit-5")
    assert fifth["type"] == "ack", fifth
    events = await tab_b.until_final(fifth["run_id"])
    assert_exact(events, await cluster.stored(account, fifth["run_id"]))
    assert await cluster.count(user_id=account.user_id) == 3


# ---- Redis down: events come from storage, readiness says so; back: live again ---------------------


async def test_redis_down_clients_still_get_every_event_and_live_delivery_returns(
    cluster: Cluster, tabs: Tabs, redis_server: RedisServer
) -> None:
    account = await cluster.signup()
    tab_a, tab_b = await tabs.open(cluster.apis[0], account), await tabs.open(cluster.apis[1], account)
    ack = await tab_a.submit("Where does our LLM spend go?", "redis-1")
    run_id = ack["run_id"]
    await tab_a.until_events(run_id, 3)
    try:
        redis_server.stop()
        stopped = time.time()
        for tab in (tab_a, tab_b):
            events = await tab.until_final(run_id)
            assert_exact(events, await cluster.stored(account, run_id))
            # Whatever was stored after Redis went reached the client from storage within seconds.
            late = [arrived - created(e) for arrived, e in tab.arrivals(run_id) if arrived > stopped]
            assert late, "the run ended before Redis went away"
            assert max(late) < 3 * RESYNC_S + 1, late
        for process in (*cluster.apis, *cluster.workers):
            readiness = await _ready(process)  # 200: degraded is not failing
            assert readiness["degraded"] == ["bus"], readiness
            assert readiness["failing"] == [], readiness
        # No run is lost: one sent while Redis is away runs (workers poll) and is delivered.
        during = await tab_b.submit("And while Redis is away?", "redis-2")
        assert during["type"] == "ack", during
        events = await tab_b.until_final(during["run_id"])
        assert_exact(events, await cluster.stored(account, during["run_id"]))
    finally:
        redis_server.start()

    await until(cluster.bus_ok, 20, "every process to see Redis again")
    after = await tab_a.submit("And once it is back?", "redis-3")
    events = await tab_a.until_final(after["run_id"])
    assert_exact(events, await cluster.stored(account, after["run_id"]))
    # Live again: each event arrives as it is made, not in bursts read back from storage.
    lags = tab_a.lags(after["run_id"])
    assert statistics.median(lags) < 0.2, lags
    assert max(lags) < RESYNC_S, lags


async def test_redis_down_a_run_started_in_one_tab_still_reaches_the_users_other_tabs(
    cluster: Cluster, tabs: Tabs, redis_server: RedisServer
) -> None:
    """With Redis up, a run started in one tab reaches the user's other tabs live (the first test);
    with Redis down, "live events still reach clients (from storage, within a few seconds)"."""
    account = await cluster.signup()
    a, b = cluster.apis
    starter, same_process, other_process = (
        await tabs.open(b, account),
        await tabs.open(b, account),
        await tabs.open(a, account),
    )
    try:
        redis_server.stop()
        ack = await starter.submit("Where does our LLM spend go?", "redis-tabs")
        run_id = ack["run_id"]
        stored = await starter.until_final(run_id)
        assert_exact(stored, await cluster.stored(account, run_id))
        opened_during = await tabs.open(a, account)
        await asyncio.sleep(3 * RESYNC_S)  # "within a few seconds"
        received = {
            "same API process": same_process.events(run_id),
            "other API process": other_process.events(run_id),
        }
    finally:
        redis_server.start()
    # Once Redis is back, every tab gets the next run live, the one opened during the outage too.
    await until(cluster.bus_ok, 20, "every process to see Redis again")
    ack = await starter.submit("And once it is back?", "redis-tabs-back")
    stored_after = await starter.until_final(ack["run_id"])
    for name, tab in {"opened before": other_process, "opened during the outage": opened_during}.items():
        assert await tab.until_final(ack["run_id"], timeout=10) == stored_after, name
    missing = {
        where: f"{len(events)} of {len(stored)} events"
        for where, events in received.items()
        if events != stored
    }
    assert missing == {}, f"the user's other tabs, with Redis down: {missing}"


# ---- an API process dies or is stopped: its clients resume elsewhere, runs go on -------------------


async def _resume_elsewhere(
    cluster: Cluster, tabs: Tabs, account: Account, gone: Tab, run_id: str
) -> list[Any]:
    """The client of a closed tab reconnects to another API process and resumes with what it has."""
    seen = gone.events(run_id)
    assert seen, "the tab had received nothing"
    other = next(api for api in cluster.apis if api is not gone.api)
    tab = await tabs.open(other, account)
    await tab.send({"type": "resume", "run_id": run_id, "after_seq": seen[-1]["seq"]})
    return seen + await tab.until_final(run_id)


async def test_kill_9_of_an_api_process_its_clients_resume_on_another(cluster: Cluster, tabs: Tabs) -> None:
    a, b = cluster.apis
    account = await cluster.signup()
    tab_a, tab_b = await tabs.open(a, account), await tabs.open(b, account)
    ack = await tab_a.submit("Where does our LLM spend go?", "kill-api")
    run_id = ack["run_id"]
    await tab_a.until_events(run_id, 8)
    send_signal(a, signal.SIGKILL)
    cluster.respawn()
    await tab_a.wait_closed()
    assert tab_a.ws.close_code in (None, 1006), tab_a.ws.close_code
    events = await _resume_elsewhere(cluster, tabs, account, tab_a, run_id)
    stored = await cluster.stored(account, run_id, b)
    assert_exact(events, stored)
    assert_exact(await tab_b.until_final(run_id), stored)
    # The run itself never noticed: completed by the worker that claimed it first.
    assert ending(stored) == ("agent_completed", None)
    lease = await cluster.lease(run_id)
    assert (lease.status, lease.epoch, lease.attempts) == ("completed", 1, 1), lease


async def test_sigterm_of_an_api_process_closes_its_sockets_with_1012_and_runs_go_on(
    cluster: Cluster, tabs: Tabs
) -> None:
    a, b = cluster.apis
    account = await cluster.signup()
    tab_a = await tabs.open(a, account)
    ack = await tab_a.submit("Where does our LLM spend go?", "term-api")
    run_id = ack["run_id"]
    await tab_a.until_events(run_id, 5)
    marks = cluster.log_marks()
    sent = send_signal(a, signal.SIGTERM)
    await tab_a.wait_closed(timeout=GRACE_S + 10)
    assert tab_a.ws.close_code == 1012, (tab_a.ws.close_code, tab_a.ws.close_reason)
    assert tab_a.frames[-1]["type"] == "server_shutdown", tab_a.frames[-1]
    assert a.process is not None
    assert await asyncio.to_thread(a.process.wait, 15) == 0
    assert time.time() - sent < GRACE_S + 5
    cluster.respawn()
    assert "Traceback" not in cluster.log_since(marks, a)

    events = await _resume_elsewhere(cluster, tabs, account, tab_a, run_id)
    stored = await cluster.stored(account, run_id, b)
    assert_exact(events, stored)
    assert ending(stored) == ("agent_completed", None)
    assert (await cluster.lease(run_id)).epoch == 1
