"""Worker faults and database faults: kill -9 of the worker holding a run (at several points of the
pipeline, under both recovery settings), a worker paused past its lease, SIGTERM of a worker, and
PostgreSQL away for a moment under a running cluster.

Whatever the fault, every acknowledged run ends with exactly one final event, and every client that
follows it receives the stored events, seq 1..n, each once, in an order the contract allows. The cluster
(auth + 2 API + 3 workers, one of which may still be booting: the replacement of the last one killed) is
shared by the module; its workers are replaced once, when the tests switch to `recovery=continue`.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from support.clients import open_ws
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
from support.tabs import Tabs, assert_exact, created, ending

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

STEP_MS = 60  # a run of the question below takes ~4 s: long enough to act on it mid-run
QUESTION = "How do I cut my LLM costs by 30%?"
TAKEOVER_BOUND_S = 15.0  # the p99 for detecting a dead worker's lease
Event = dict[str, Any]


def _sub_agent_done(event: Event) -> bool:
    return bool(event["type"] == "agent_completed" and event["agent_name"] != "supervisor")


# Where in the pipeline the holder is killed: right after the event a client receives first that matches.
KILL_POINTS: dict[str, Callable[[Event], bool]] = {
    "after-the-supervisor-starts": lambda event: event["seq"] == 1,
    "during-a-tool-call": lambda event: event["type"] == "tool_executing",
    "between-two-agents": _sub_agent_done,
    "while-the-report-streams": lambda event: event["type"] == "partial_result",
    "just-before-the-final-event": lambda event: (
        _sub_agent_done(event) and event["agent_name"] == "reporting"
    ),
}
LAST = "just-before-the-final-event"


@pytest.fixture(scope="module")
def shared(
    tmp_path_factory: pytest.TempPathFactory, postgres_server: PostgresServer, redis_server: RedisServer
) -> Iterator[Cluster]:
    with shared_cluster(
        tmp_path_factory.mktemp("worker-faults"),
        postgres_server,
        redis_server,
        apis=2,
        workers=3,
        booting_workers=1,
        worker_env={"TOKENWISE_TEST_STEP_DELAY_MS": str(STEP_MS), "TOKENWISE_RECOVERY": "interrupt"},
        TOKENWISE_LEASE_S=str(LEASE_S),
        TOKENWISE_SHUTDOWN_GRACE_S=str(GRACE_S),
        TOKENWISE_WORKER_POLL_S="0.5",
    ) as cluster:
        yield cluster


@pytest.fixture(scope="module", params=["interrupt", "continue"])
def recovery(request: pytest.FixtureRequest, shared: Cluster) -> str:
    """What a worker does with a run it takes over; module-scoped, so the tests are grouped by it and
    the workers are replaced once."""
    value: str = request.param
    shared.use_workers(TOKENWISE_RECOVERY=value)
    return value


@pytest.fixture
async def cluster(shared: Cluster, recovery: str, redis_server: RedisServer) -> Cluster:
    """The module's cluster, whole again: two workers up at least, every process connected to Redis."""
    redis_server.start()
    await shared.whole(booting_workers=1)
    return shared


@pytest.fixture
async def tabs() -> AsyncIterator[Tabs]:
    opened = Tabs()
    yield opened
    await opened.close()


# ---- kill -9 of the worker holding a run ------------------------------------------------------------


async def test_kill_9_of_the_worker_holding_a_run_another_worker_takes_it_over(
    cluster: Cluster, tabs: Tabs, recovery: str, record_property: Callable[[str, object], None]
) -> None:
    account = await cluster.signup()
    tab_a, tab_b = await tabs.open(cluster.apis[0], account), await tabs.open(cluster.apis[1], account)
    ack = await tab_a.submit(QUESTION, f"kill-worker-{recovery}")
    run_id = ack["run_id"]
    await tab_a.until_events(run_id, 8)
    holder = await cluster.holder(run_id)
    before = await cluster.lease(run_id)
    killed = time.time()
    send_signal(holder, signal.SIGKILL)
    cluster.respawn()
    events = await tab_a.until_final(run_id, timeout=TAKEOVER_BOUND_S + 30)
    stored = await cluster.stored(account, run_id)
    assert_exact(events, stored)
    assert_exact(await tab_b.until_final(run_id), stored)

    taken = tab_a.first_created_after(run_id, killed)
    assert taken is not None, "no event came from the new holder"
    arrived, first = taken
    record_property("kill_to_next_event_s", round(arrived - killed, 3))
    assert arrived - killed < TAKEOVER_BOUND_S
    lease = await cluster.lease(run_id)
    assert lease.epoch == before.epoch + 1, (before, lease)
    assert lease.pid != pid(holder), lease
    run = await cluster.ended(account, run_id)
    if recovery == "interrupt":
        # The new holder only closes what was left open, then ends the run.
        assert ending(stored) == ("agent_error", "interrupted")
        assert (run["status"], run["error_code"]) == ("failed", "interrupted"), run
        for event in [e for e in stored if e["seq"] >= first["seq"]][:-1]:
            assert event["type"] in ("agent_error", "tool_completed"), event
            assert "interrupted" in (event["data"].get("code"), event["data"].get("result", {}).get("error"))
    else:
        assert ending(stored) == ("agent_completed", None)
        assert run["status"] == "completed", run
        assert run["report"] == stored[-1]["data"]["result"]


@pytest.mark.parametrize("point", list(KILL_POINTS))
async def test_fault_matrix_kill_9_of_the_holding_worker(
    cluster: Cluster, tabs: Tabs, recovery: str, point: str, record_property: Callable[[str, object], None]
) -> None:
    a, b = cluster.apis
    # Two users' runs at once: the first on the worker that dies, the second wherever it lands.
    first, second = await cluster.signup(), await cluster.signup()
    tab_a, tab_b, tab_2 = await tabs.open(a, first), await tabs.open(b, first), await tabs.open(b, second)
    run_1 = (await tab_a.submit(QUESTION, f"matrix-{recovery}-{point}-1"))["run_id"]
    run_2 = (await tab_2.submit(QUESTION, f"matrix-{recovery}-{point}-2"))["run_id"]
    await tab_a.until_events(run_1, 1)
    holder = await cluster.holder(run_1)  # looked up first: the kill must follow its point closely
    await tab_2.until_events(run_2, 1)
    held_2 = (await cluster.lease(run_2)).pid == pid(holder)
    await tab_a.wait(lambda: any(map(KILL_POINTS[point], tab_a.events(run_1))), what=point)
    killed = time.time()
    send_signal(holder, signal.SIGKILL)
    cluster.respawn()

    for account, run_id, followers in ((first, run_1, (tab_a, tab_b)), (second, run_2, (tab_2,))):
        for tab in followers:
            await tab.until_final(run_id, timeout=TAKEOVER_BOUND_S + 30)
        stored = await cluster.stored(account, run_id)
        for tab in followers:
            assert_exact(tab.events(run_id), stored)
        run = await cluster.ended(account, run_id)
        assert run["last_seq"] == len(stored), run
        if ending(stored) == ("agent_completed", None):
            assert run["status"] == "completed", run
        else:
            assert ending(stored) == ("agent_error", "interrupted"), stored[-1]
            assert (run["status"], run["error_code"]) == ("failed", "interrupted"), run
        if run_id == run_1 or held_2:
            lease = await cluster.lease(run_id)
            taken = followers[0].first_created_after(run_id, killed)
            if taken is None:  # the dead holder had ended it: the final event was made before the kill
                assert created(stored[-1]) < killed, stored[-1]
                assert lease.pid == pid(holder), lease
            else:
                name = "kill_to_next_event_s" if run_id == run_1 else "kill_to_next_event_s_second_run"
                record_property(name, round(taken[0] - killed, 3))
                assert taken[0] - killed < TAKEOVER_BOUND_S
                assert lease.pid != pid(holder), lease
    if recovery == "continue":
        assert ending(tab_a.events(run_1)) == ("agent_completed", None)
    elif point != LAST:  # well before its end: the dead holder cannot have ended it
        assert ending(tab_a.events(run_1)) == ("agent_error", "interrupted")


# ---- a worker paused past its lease; SIGTERM of a worker -------------------------------------------


@pytest.mark.parametrize("recovery", ["continue"], indirect=True)
async def test_a_worker_paused_past_its_lease_cannot_write_once_it_resumes(
    cluster: Cluster, tabs: Tabs
) -> None:
    x, y = await cluster.signup(), await cluster.signup()
    tab_x, tab_y = await tabs.open(cluster.apis[0], x), await tabs.open(cluster.apis[1], y)
    run_x = (await tab_x.submit(QUESTION, "paused-x"))["run_id"]
    await tab_x.until_events(run_x, 6)
    paused = await cluster.holder(run_x)
    before = await cluster.lease(run_x)
    marks = cluster.log_marks()
    send_signal(paused, signal.SIGSTOP)
    try:
        # Another user's run, which only a healthy worker can claim, runs beside the takeover.
        run_y = (await tab_y.submit("Where does our LLM spend go?", "paused-y"))["run_id"]
        taken = await cluster.wait_lease(run_x, lambda lease: lease.epoch > before.epoch, TAKEOVER_BOUND_S)
        assert taken.pid != pid(paused), taken
        await tab_x.until_events(run_x, len(tab_x.events(run_x)) + 1)  # the new holder is writing
    finally:
        send_signal(paused, signal.SIGCONT)  # it resumes mid-step, still believing it holds the run

    events_x = await tab_x.until_final(run_x)
    stored_x = await cluster.stored(x, run_x)
    assert_exact(events_x, stored_x)
    assert ending(stored_x) == ("agent_completed", None)
    assert (await cluster.lease(run_x)).epoch == before.epoch + 1
    events_y = await tab_y.until_final(run_y)
    stored_y = await cluster.stored(y, run_y)
    assert_exact(events_y, stored_y)
    assert ending(stored_y) == ("agent_completed", None)
    lease_y = await cluster.lease(run_y)
    assert lease_y.pid != pid(paused), lease_y
    assert lease_y.epoch == 1, lease_y  # untouched by the takeover beside it

    # The paused worker found out it was fenced out (at a write or at its heartbeat) and goes on.
    await until(lambda: _fenced(cluster, marks, paused), 10, "the paused worker to notice it lost the run")
    await asyncio.sleep(LEASE_S / 3 + 0.5)  # its next heartbeat and writes, if any, come and go
    assert await cluster.stored(x, run_x) == stored_x
    assert "Traceback" not in cluster.log_since(marks, paused)
    status, body = await ready(paused)
    assert (status, body["checks"]["worker"]["runs"]) == (200, "0"), body


async def _fenced(cluster: Cluster, marks: dict[int, int], worker: Any) -> bool:
    log = cluster.log_since(marks, worker)
    return "its writer is fenced out" in log or "lost the lease" in log or "taken over before it ended" in log


@pytest.mark.parametrize("recovery", ["continue"], indirect=True)
async def test_sigterm_of_a_worker_hands_its_run_to_another_worker(
    cluster: Cluster, tabs: Tabs, record_property: Callable[[str, object], None]
) -> None:
    account = await cluster.signup()
    tab = await tabs.open(cluster.apis[0], account)
    run_id = (await tab.submit(QUESTION, "term-worker"))["run_id"]
    await tab.until_events(run_id, 5)
    holder = await cluster.holder(run_id)
    marks = cluster.log_marks()
    sent = time.time()
    send_signal(holder, signal.SIGTERM)
    assert holder.process is not None
    assert await asyncio.to_thread(holder.process.wait, GRACE_S + 10) == 0
    exited = time.time() - sent
    assert exited < GRACE_S + 5, exited
    cluster.respawn()
    assert "Traceback" not in cluster.log_since(marks, holder)

    events = await tab.until_final(run_id)
    stored = await cluster.stored(account, run_id)
    assert_exact(events, stored)
    assert ending(stored) == ("agent_completed", None)
    lease = await cluster.lease(run_id)
    assert lease.epoch == 2, lease
    assert lease.pid != pid(holder), lease
    taken = tab.first_created_after(run_id, sent + exited)
    assert taken is not None
    record_property("sigterm_to_takeover_event_s", round(taken[0] - sent, 3))
    record_property("exit_to_takeover_event_s", round(taken[0] - sent - exited, 3))
    # Handed back, not left to expire (its lease had seconds to go): taken at another's next sweep.
    assert taken[0] - sent - exited < 1.2


# ---- PostgreSQL away for a moment ---------------------------------------------------------------
# On a PostgreSQL of their own (the session's is shared), with the default lease (6 s), which outlasts
# each outage: the holder keeps its run, and nothing is taken over.


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[PostgresServer]:
    server = PostgresServer().start()
    yield server
    server.close()


@pytest.fixture(scope="module")
def on_own_postgres(
    tmp_path_factory: pytest.TempPathFactory, own_postgres: PostgresServer, redis_server: RedisServer
) -> Iterator[Cluster]:
    with shared_cluster(
        tmp_path_factory.mktemp("own-postgres"),
        own_postgres,
        redis_server,
        apis=1,
        workers=1,
        worker_env={"TOKENWISE_TEST_STEP_DELAY_MS": str(STEP_MS)},
        TOKENWISE_WORKER_POLL_S="0.5",
    ) as cluster:
        yield cluster


async def _frames_until_closed(ws: ClientConnection, timeout: float) -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = []
    try:
        while True:
            frames.append(json.loads(await asyncio.wait_for(ws.recv(), timeout)))
    except ConnectionClosed:
        return frames


async def _while_the_database_is_away(cluster: Cluster, token: str) -> list[str]:
    """What clients get meanwhile: readiness names the database (503), a REST call is a 503, and a chat
    message is refused with service_unavailable and 1013 (try again later). What went otherwise."""
    problems = []
    status, body = await ready(cluster.api)
    if (status, body.get("failing")) != (503, ["database"]):
        problems.append(f"GET /health/ready answered {status} {body}")
    async with httpx.AsyncClient(base_url=cluster.api.url, timeout=10) as http:
        threads = await http.get("/api/threads", headers={"Authorization": f"Bearer {token}"})
    if threads.status_code != 503 or threads.json().get("error", {}).get("code") != "service_unavailable":
        problems.append(f"GET /api/threads answered {threads.status_code} {threads.text}")
    ws, _ = await open_ws(cluster.api.ws_url, token)
    await ws.send(
        json.dumps({"type": "user_message", "content": QUESTION, "client_message_id": "while-away"})
    )
    frames = [f for f in await _frames_until_closed(ws, timeout=15) if "seq" not in f]  # not run events
    got = [(f["type"], f.get("code")) for f in frames]
    if got != [("error", "service_unavailable")] or ws.close_code != 1013:
        problems.append(f"a chat message got {got}, then close {ws.close_code} {ws.close_reason!r}")
    return problems


async def _run_survives(
    cluster: Cluster, tabs: Tabs, outage: Callable[[], Awaitable[None]], name: str
) -> None:
    """A run is under way when the database goes away for a moment: it completes, untouched, and the
    worker claims the next one; no process logs an error."""
    await cluster.whole()
    account = await cluster.signup()
    tab = await tabs.open(cluster.api, account)
    run_id = (await tab.submit(QUESTION, f"{name}-1"))["run_id"]
    await tab.until_events(run_id, 5)
    marks = cluster.log_marks()
    await outage()
    problems = await _while_the_database_is_away(cluster, account.access_token)
    events = await tab.until_final(run_id, timeout=30)
    stored = await cluster.stored(account, run_id)
    assert_exact(events, stored)
    lease = await cluster.lease(run_id)
    final = (stored[-1]["type"], stored[-1]["data"].get("code"))
    if final != ("agent_completed", None) or lease.epoch != 1:
        problems.append(f"the run under way ended {final}, at epoch {lease.epoch} ({lease.owner})")
    again = await tab.submit(QUESTION, f"{name}-2")
    assert again["type"] == "ack", again
    events = await tab.until_final(again["run_id"])
    assert_exact(events, await cluster.stored(account, again["run_id"]))
    problems += [f"log: {line}" for line in cluster.log_since(marks).splitlines() if " ERROR " in line]
    assert problems == [], "\n".join(problems)


async def test_postgres_refusing_connections_for_a_moment(
    on_own_postgres: Cluster, own_postgres: PostgresServer, tabs: Tabs
) -> None:
    """The server is up but refuses connections to the database (as while it starts up or shuts down,
    or at its connection limit): the same as down, for clients and for runs."""
    cluster = on_own_postgres
    name = cluster.database_url.rsplit("/", 1)[1]

    async def refuse() -> None:
        own_postgres.psql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        # Its connections drop (the server is this test's own: its only users are the cluster's).
        own_postgres.psql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname <> 'postgres'"
        )

        async def allow() -> None:
            await asyncio.sleep(3.0)
            own_postgres.psql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')

        background.append(asyncio.create_task(allow()))

    background: list[asyncio.Task[None]] = []
    try:
        await _run_survives(cluster, tabs, refuse, "refused")
    finally:
        own_postgres.psql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        for task in background:
            task.cancel()


async def test_postgres_down_for_a_moment(
    on_own_postgres: Cluster, own_postgres: PostgresServer, tabs: Tabs
) -> None:
    async def down() -> None:
        own_postgres.stop("immediate")  # a crash: no checkpoint, recovery at the next start
        background.append(asyncio.create_task(asyncio.to_thread(_restart_after, own_postgres, 3.0)))

    background: list[asyncio.Task[None]] = []
    try:
        await _run_survives(on_own_postgres, tabs, down, "down")
    finally:
        for task in background:
            await task
        own_postgres.start()


def _restart_after(server: PostgresServer, delay_s: float) -> None:
    time.sleep(delay_s)
    server.start()


# ---- no fault at all ------------------------------------------------------------------------------


async def test_a_worker_does_not_report_the_runs_it_just_ended_as_lost_leases(
    on_own_postgres: Cluster, tabs: Tabs
) -> None:
    """Without any fault, a worker never loses a lease, so it never says so: a heartbeat that finds a run
    it still holds already ended (its end just committed) has not lost that run to anyone. (A short lease
    renews often, so a heartbeat falls between a run's end and its task's end many times.)"""
    cluster = on_own_postgres
    cluster.use_workers(
        TOKENWISE_LEASE_S="0.6", TOKENWISE_TEST_STEP_DELAY_MS="20", TOKENWISE_WORKER_CONCURRENCY="16"
    )
    await cluster.whole()
    accounts = await asyncio.gather(*(cluster.signup() for _ in range(4)))
    opened = [await tabs.open(cluster.api, account) for account in accounts]
    marks = cluster.log_marks()
    runs = []
    for round_ in range(3):
        acks = await asyncio.gather(
            *(
                tab.submit(QUESTION, f"ends-{round_}-{i}-{n}")
                for i, tab in enumerate(opened)
                for n in range(4)
            )
        )
        for index, ack in enumerate(acks):
            await opened[index // 4].until_final(ack["run_id"])
            runs.append((accounts[index // 4], ack["run_id"]))
    for account, run_id in runs:
        stored = await cluster.stored(account, run_id)
        assert ending(stored) == ("agent_completed", None)
        assert (await cluster.lease(run_id)).epoch == 1  # nobody took any of them over
    lost = [line for line in cluster.log_since(marks).splitlines() if "lost the lease" in line]
    assert lost == [], f"{len(lost)} of {len(runs)} runs, all completed by their one holder:\n" + "\n".join(
        lost[:3]
    )


async def test_a_worker_that_takes_a_run_over_as_it_starts_renews_that_lease(
    on_own_postgres: Cluster, tabs: Tabs
) -> None:
    """A worker that starts sweeps once before it serves, and takes over the runs whose holder died: they
    are its own from then on, their leases renewed like any other, so nobody takes them over again."""
    cluster = on_own_postgres
    cluster.use_workers(
        TOKENWISE_LEASE_S=str(LEASE_S),
        TOKENWISE_TEST_STEP_DELAY_MS="150",  # what is left of the run outlasts a few leases
        TOKENWISE_RECOVERY="continue",
        TOKENWISE_WORKER_CONCURRENCY="16",
    )
    await cluster.whole()
    account = await cluster.signup()
    tab = await tabs.open(cluster.api, account)
    run_id = (await tab.submit(QUESTION, "taken-at-start"))["run_id"]
    await tab.until_events(run_id, 3)
    dead = await cluster.holder(run_id)
    send_signal(dead, signal.SIGKILL)
    await asyncio.sleep(LEASE_S + 0.5)  # its lease has expired: the next worker to start takes the run
    marks = cluster.log_marks()
    (started,) = cluster.respawn()
    events = await tab.until_final(run_id, timeout=60)
    stored = await cluster.stored(account, run_id)
    assert_exact(events, stored)
    assert ending(stored) == ("agent_completed", None)
    lease = await cluster.lease(run_id)
    takeovers = [line for line in cluster.log_since(marks).splitlines() if "took over" in line]
    assert (lease.epoch, lease.pid) == (2, pid(started)), (lease, takeovers)
