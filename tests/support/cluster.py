"""A small cluster for tests: auth + N API + M worker processes on one PostgreSQL database and Redis.

Booting a Python process costs seconds of CPU, so a cluster is shared by the tests of a module: a test
that kills a process calls `respawn()` at once (the replacement boots while the test goes on), and the
per-test fixture calls `repair()`, which waits until the cluster is whole again. Every process shares one
data and key directory, so the API processes verify the auth process's tokens through its JWKS.

`Tab` is one browser tab: a WebSocket read in the background, every frame kept with its arrival time, so a
test can act on several tabs at once and compare what each received with what is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
from sqlalchemy import func, select
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from support.clients import Account, open_ws, signup
from support.live import ServerProcess, wait_healthy
from support.servers import PostgresServer, RedisServer
from tokenwise.db.database import Database
from tokenwise.db.migrate import upgrade
from tokenwise.db.tables import MessageRow, RunRow
from tokenwise.session.contract import violations

T = TypeVar("T")
ACTIVE = ("queued", "running")
BOOT_TIMEOUT_S = 90.0  # two cores boot five Pythons at once, beside whatever else runs
# Fast takeovers, quick drains (the values the tests reason about).
LEASE_S = 3.0
GRACE_S = 1.0
_OWN_SETTINGS = ("TOKENWISE_DATA_DIR", "TOKENWISE_PORT", "TOKENWISE_HOST")  # set by ServerProcess


def pid_of(owner: str | None) -> int | None:
    """The pid in a lease owner (`host:pid:uuid8`; `api:host:pid:uuid8` for a stop of a queued run)."""
    return int(owner.rsplit(":", 2)[1]) if owner else None


class Lease:
    def __init__(self, status: str, owner: str | None, epoch: int, attempts: int) -> None:
        self.status, self.owner, self.epoch, self.attempts = status, owner, epoch, attempts

    @property
    def pid(self) -> int | None:
        return pid_of(self.owner)

    def __repr__(self) -> str:
        return f"Lease({self.status}, {self.owner}, epoch={self.epoch}, attempts={self.attempts})"


class Cluster:
    """The processes of a cluster and the database they share."""

    def __init__(
        self,
        data_dir: Path,
        database_url: str,
        bus_url: str,
        *,
        apis: int,
        workers: int,
        env: dict[str, str],
        worker_env: dict[str, str],
    ) -> None:
        self.data_dir, self.database_url = data_dir, database_url
        self.env = {"TOKENWISE_DATABASE_URL": database_url, "TOKENWISE_BUS_URL": bus_url, **env}
        self.worker_env = dict(worker_env)
        self.want = {"api": apis, "worker": workers}
        self.processes: list[ServerProcess] = []  # every one ever started, for the clean-up
        self._auth: ServerProcess | None = None
        self.apis: list[ServerProcess] = []
        self.workers: list[ServerProcess] = []

    # ---- processes ----------------------------------------------------------------------------------

    def spawn(self, role: str, **env: str) -> ServerProcess:
        """Start a process of `role` without waiting for it (`healthy` waits)."""
        extra = {**self.env, **(self.worker_env if role == "worker" else {}), **env}
        if role == "api":
            extra["TOKENWISE_AUTH_URL"] = self.auth.url
        process = ServerProcess(self.data_dir, role=role, migrate=False, **extra)
        # Only this cluster's settings, nothing from the shell: a module's fixtures run before the
        # environment is cleaned for its first test.
        process.env = {
            k: v
            for k, v in process.env.items()
            if not (k.startswith("TOKENWISE_") or k == "PORT") or k in extra or k in _OWN_SETTINGS
        }
        self.processes.append(process)
        process.start(wait=False)
        if role == "auth":
            self._auth = process
        else:
            self._members(role).append(process)
        return process

    @property
    def auth(self) -> ServerProcess:
        assert self._auth is not None
        return self._auth

    async def signup(self) -> Account:
        """A new user, signed in."""
        return await signup(self.auth.url)

    def _members(self, role: str) -> list[ServerProcess]:
        return self.apis if role == "api" else self.workers

    @staticmethod
    def healthy(*processes: ServerProcess) -> None:
        for process in processes:
            try:
                wait_healthy(process.url, timeout=BOOT_TIMEOUT_S)
            except TimeoutError:
                raise AssertionError(f"{process.role} did not start; log:\n{process.log()[-3000:]}") from None

    def boot(self) -> None:
        auth = self.spawn("auth")
        self.respawn()  # the API processes fetch the auth's JWKS lazily: they boot beside it
        self.healthy(auth, *self.apis, *self.workers)

    def respawn(self) -> list[ServerProcess]:
        """Start replacements for processes that exited (killed, stopped), without waiting for them."""
        started = []
        for role, want in self.want.items():
            members = self._members(role)
            members[:] = [p for p in members if alive(p)]
            started += [self.spawn(role) for _ in range(want - len(members))]
        return started

    def repair(self) -> None:
        """Make the cluster whole again and wait until every process answers."""
        assert alive(self.auth), "the auth process died"
        self.respawn()
        for process in self.processes:
            if alive(process):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid(process), signal.SIGCONT)  # a test that paused one and failed
        self.healthy(*self.apis, *self.workers)

    def use_workers(self, **env: str) -> None:
        """Workers with these settings from now on: the others are replaced (an idempotent switch)."""
        if all(self.worker_env.get(k) == v for k, v in env.items()):
            return
        self.worker_env.update(env)
        for worker in self.workers:
            worker.stop()
        self.repair()

    def by_pid(self, wanted: int | None) -> ServerProcess | None:
        return next((p for p in self.processes if p.process is not None and p.process.pid == wanted), None)

    def close(self) -> None:
        for process in self.processes:
            if alive(process):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid(process), signal.SIGCONT)  # a paused process must be able to die
            process.stop()

    def log_marks(self) -> dict[int, int]:
        """Where each process's log ends now (see `log_since`)."""
        return {id(p): len(p.log()) for p in self.processes}

    def log_since(self, marks: dict[int, int], process: ServerProcess | None = None) -> str:
        chosen = [process] if process is not None else self.processes
        return "\n".join(p.log()[marks.get(id(p), 0) :] for p in chosen)

    # ---- the database ---------------------------------------------------------------------------------

    async def lease(self, run_id: str) -> Lease:
        db = Database(self.database_url)
        try:
            async with db.session() as session:
                row = (
                    await session.execute(
                        select(RunRow.status, RunRow.lease_owner, RunRow.epoch, RunRow.attempts).where(
                            RunRow.id == run_id
                        )
                    )
                ).one()
        finally:
            await db.dispose()
        return Lease(row.status, row.lease_owner, row.epoch, row.attempts)

    async def count(
        self, *, user_id: str, table: type[RunRow] | type[MessageRow] = RunRow, **where: str
    ) -> int:
        """How many rows of `table` the user has (runs by default), optionally filtered by columns."""
        db = Database(self.database_url)
        query = select(func.count()).select_from(table).where(table.user_id == user_id)
        for column, value in where.items():
            query = query.where(getattr(table, column) == value)
        try:
            async with db.session() as session:
                found = await session.scalar(query)
        finally:
            await db.dispose()
        return int(found or 0)

    async def wait_lease(self, run_id: str, accept: Callable[[Lease], bool], timeout: float = 20.0) -> Lease:
        deadline = time.monotonic() + timeout
        while True:
            lease = await self.lease(run_id)
            if accept(lease):
                return lease
            if time.monotonic() > deadline:
                raise AssertionError(f"run {run_id}: the lease never got as wanted; last {lease}")
            await asyncio.sleep(0.05)

    async def holder(self, run_id: str) -> ServerProcess:
        """The worker process that holds a running run."""
        lease = await self.wait_lease(run_id, lambda lease: lease.status == "running" and bool(lease.owner))
        process = self.by_pid(lease.pid)
        assert process in self.workers, (lease, [pid(w) for w in self.workers])
        assert process is not None
        return process

    # ---- REST -------------------------------------------------------------------------------------

    @property
    def api(self) -> ServerProcess:
        return self.apis[0]

    def http(self, account: Account, api: ServerProcess | None = None) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=(api or self.api).url,
            headers={"Authorization": f"Bearer {account.access_token}"},
            timeout=30,
        )

    async def stored(self, account: Account, run_id: str, api: ServerProcess | None = None) -> list[Any]:
        """The run's events as stored, read back over REST."""
        async with self.http(account, api) as http:
            response = await http.get(f"/api/runs/{run_id}/events")
        assert response.status_code == 200, response.text
        events: list[Any] = response.json()["events"]
        return events

    async def ended(
        self, account: Account, run_id: str, api: ServerProcess | None = None, timeout: float = 60.0
    ) -> dict[str, Any]:
        """The run (over REST) once it has ended."""
        deadline = time.monotonic() + timeout
        async with self.http(account, api) as http:
            while True:
                run: dict[str, Any] = (await http.get(f"/api/runs/{run_id}")).json()
                if run["status"] not in ACTIVE:
                    return run
                if time.monotonic() > deadline:
                    raise AssertionError(f"run {run_id} never ended: {run}")
                await asyncio.sleep(0.1)


def alive(process: ServerProcess) -> bool:
    return process.process is not None and process.process.poll() is None


def pid(process: ServerProcess) -> int:
    assert process.process is not None
    return process.process.pid


def send_signal(process: ServerProcess, sig: signal.Signals) -> float:
    """Signal the process (SIGKILL, SIGTERM, SIGSTOP...); when it was sent (time.monotonic)."""
    os.kill(pid(process), sig)
    return time.monotonic()


@contextlib.contextmanager
def shared_cluster(
    data_dir: Path,
    postgres: PostgresServer,
    redis: RedisServer,
    *,
    apis: int = 2,
    workers: int = 2,
    worker_env: dict[str, str] | None = None,
    **env: str,
) -> Iterator[Cluster]:
    """A cluster on a database of its own and a flushed Redis; every process is killed afterwards.
    `env` goes to every process, `worker_env` to the workers only."""
    postgres.start()
    redis.start()
    redis.flushall()
    name = postgres.create_database()
    url = postgres.url_for(name)
    upgrade(url)
    made = Cluster(data_dir, url, redis.url, apis=apis, workers=workers, env=env, worker_env=worker_env or {})
    try:
        made.boot()
        yield made
    finally:
        made.close()
        postgres.start()
        redis.start()
        postgres.drop_database(name)


# ---- clients --------------------------------------------------------------------------------------


class Tab:
    """One client connection; frames are read in the background and kept with their arrival times."""

    def __init__(self, ws: ClientConnection, api: ServerProcess) -> None:
        self.ws, self.api = ws, api
        self.frames: list[dict[str, Any]] = []
        self.arrived: list[float] = []  # time.time() of each frame's arrival
        self.closed = False
        self._changed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, api: ServerProcess, account: Account) -> Tab:
        ws, _ = await open_ws(api.ws_url, account.access_token)
        return cls(ws, api)

    async def _read(self) -> None:
        try:
            async for text in self.ws:
                self.frames.append(json.loads(text))
                self.arrived.append(time.time())
                self._changed.set()
        except ConnectionClosed:
            pass
        finally:
            self.closed = True
            self._changed.set()

    async def close(self) -> None:
        await self.ws.close()
        await self._reader

    def abort(self) -> None:
        """The network drops: no close frame."""
        self.ws.transport.abort()

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(frame))

    async def wait(self, found: Callable[[], T | None], timeout: float = 30.0, what: str = "") -> T:
        """Wait until `found()` returns something (neither None nor False)."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    self._changed.clear()
                    value = found()
                    if value is not None and value is not False:
                        return value
                    if self.closed:
                        raise AssertionError(f"closed ({self.ws.close_code}) while waiting for {what}")
                    await self._changed.wait()
        except TimeoutError:
            tail = [frame.get("type") for frame in self.frames[-5:]]
            raise AssertionError(f"timed out waiting for {what}; the last frames: {tail}") from None

    async def wait_closed(self, timeout: float = 30.0) -> None:
        async with asyncio.timeout(timeout):
            await asyncio.shield(self._reader)

    def reply(self, client_message_id: str) -> dict[str, Any] | None:
        """The ack or error frame that answers a message."""
        return next(
            (
                f
                for f in self.frames
                if f.get("type") in ("ack", "error") and f.get("client_message_id") == client_message_id
            ),
            None,
        )

    async def submit(self, content: str, client_message_id: str, **fields: Any) -> dict[str, Any]:
        """Send a user message; its ack or error frame."""
        await self.send(
            {"type": "user_message", "content": content, "client_message_id": client_message_id, **fields}
        )
        return await self.wait(
            lambda: self.reply(client_message_id), what=f"the reply to {client_message_id}"
        )

    def events(self, run_id: str) -> list[dict[str, Any]]:
        return [f for f in self.frames if f.get("run_id") == run_id and "seq" in f]

    def final(self, run_id: str) -> dict[str, Any] | None:
        return next((e for e in self.events(run_id) if e["data"].get("final")), None)

    async def until_final(self, run_id: str, timeout: float = 60.0) -> list[dict[str, Any]]:
        await self.wait(lambda: self.final(run_id), timeout, f"the final event of {run_id}")
        return self.events(run_id)

    async def until_events(self, run_id: str, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        await self.wait(lambda: len(self.events(run_id)) >= count, timeout, f"{count} events of {run_id}")
        return self.events(run_id)

    def arrivals(self, run_id: str) -> list[tuple[float, dict[str, Any]]]:
        """The run's events with when each arrived (time.time())."""
        return [
            (t, f)
            for t, f in zip(self.arrived, self.frames, strict=True)
            if f.get("run_id") == run_id and "seq" in f
        ]

    def first_created_after(self, run_id: str, since: float) -> tuple[float, dict[str, Any]] | None:
        """The first event of the run created after `since` (time.time()), with when it arrived: after a
        kill, the first event of the holder that took over."""
        return next(((t, e) for t, e in self.arrivals(run_id) if created(e) > since), None)

    def lags(self, run_id: str) -> list[float]:
        """For each event of the run, how long after its creation it arrived (seconds)."""
        return [t - created(e) for t, e in self.arrivals(run_id)]


class Tabs:
    """The tabs a test opened; all closed after it."""

    def __init__(self) -> None:
        self.opened: list[Tab] = []

    async def open(self, api: ServerProcess, account: Account) -> Tab:
        tab = await Tab.open(api, account)
        self.opened.append(tab)
        return tab

    async def close(self) -> None:
        for tab in self.opened:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(tab.close(), 5)


def created(event: dict[str, Any]) -> float:
    """When the event was created (its `timestamp`), as time.time()."""
    return datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp()


def assert_exact(received: Sequence[dict[str, Any]], stored: Sequence[dict[str, Any]]) -> None:
    """What a client received is the stored run, whole: seq 1..n each once, exactly one final event
    (the last), and the ordering contract kept."""
    seqs = [event["seq"] for event in received]
    assert seqs == list(range(1, len(seqs) + 1)), f"lost or duplicated events: {seqs}"
    assert [e["seq"] for e in stored] == list(range(1, len(stored) + 1)), [e["seq"] for e in stored]
    assert list(received) == list(stored), "what the client received differs from what is stored"
    assert violations(list(stored)) == [], violations(list(stored))
    finals = [event["seq"] for event in stored if event["data"].get("final")]
    assert finals == [len(stored)], f"final events at seqs {finals} of {len(stored)}"


async def sse_events(http: httpx.AsyncClient, run_id: str, **headers: str) -> list[dict[str, Any]]:
    """A run's SSE stream to its end; each message's `id:` is its event's seq."""
    events: list[dict[str, Any]] = []
    async with http.stream("GET", f"/api/runs/{run_id}/stream", headers=headers) as response:
        assert response.status_code == 200, response.status_code
        fields: dict[str, str] = {}
        async for line in response.aiter_lines():
            if line:
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")
                continue
            if "data" in fields:
                event = json.loads(fields["data"])
                assert fields["id"] == str(event["seq"])
                events.append(event)
            fields = {}
    return events
