"""A small cluster for tests: auth + N API + M worker processes on one PostgreSQL database and Redis.

Booting a Python process costs seconds of CPU, so a cluster is shared by the tests of a module: a test
that kills a process calls `respawn()` at once (the replacement boots while the test goes on), and the
per-test fixture calls `whole()`, which waits until the cluster is whole again. Every process shares one
data and key directory, so the API processes verify the auth process's tokens through its JWKS. The
clients of a test are in `support.tabs`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx
from sqlalchemy import func, select

from support.clients import Account, signup
from support.live import ServerProcess
from support.servers import PostgresServer, RedisServer
from tokenwise.db.database import Database
from tokenwise.db.migrate import upgrade
from tokenwise.db.tables import MessageRow, RunRow

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

    def healthy(self, *processes: ServerProcess, booting: int = 0) -> None:
        """Wait until `processes` answer, but for up to `booting` of them; one that exits fails at once."""
        deadline = time.monotonic() + BOOT_TIMEOUT_S
        while True:
            if dead := [p for p in processes if not alive(p)]:
                raise AssertionError(
                    f"{dead[0].role} on {dead[0].port} exited; log:\n{dead[0].log()[-3000:]}"
                )
            down = [p for p in processes if p not in self.up(processes)]
            if len(down) <= booting:
                return
            if time.monotonic() > deadline:
                logs = "\n".join(f"---- {p.role} on {p.port}\n{p.log()[-2000:]}" for p in down)
                raise AssertionError(f"not up after {BOOT_TIMEOUT_S:g} s:\n{logs}")
            time.sleep(0.05)

    def boot(self, *, booting_workers: int = 0) -> None:
        self.spawn("auth")
        self.respawn()  # the API processes fetch the auth's JWKS lazily: they boot beside it
        self.healthy(self.auth)
        self.repair(booting_workers=booting_workers)

    def respawn(self) -> list[ServerProcess]:
        """Start replacements for processes that exited (killed, stopped), without waiting for them."""
        started = []
        for role, want in self.want.items():
            members = self._members(role)
            members[:] = [p for p in members if alive(p)]
            started += [self.spawn(role) for _ in range(want - len(members))]
        return started

    def repair(self, *, booting_workers: int = 0) -> None:
        """Make the cluster whole again: replace what exited, and wait until every process answers, but
        for up to `booting_workers` workers that may still be booting (they join when they are up)."""
        assert alive(self.auth), "the auth process died"
        self.respawn()
        for process in self.processes:
            if alive(process):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid(process), signal.SIGCONT)  # a test that paused one and failed
        self.healthy(*self.apis)
        self.healthy(*self.workers, booting=booting_workers)

    @staticmethod
    def up(processes: Sequence[ServerProcess]) -> list[ServerProcess]:
        """Those of `processes` that answer now."""
        answering = []
        for process in processes:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{process.url}/health", timeout=1.0).status_code == 200:
                    answering.append(process)
        return answering

    async def bus_ok(self) -> bool:
        """Every API and worker process that is up is connected to Redis."""
        return all([(await ready(p))[1]["degraded"] == [] for p in self.up([*self.apis, *self.workers])])

    async def whole(self, *, booting_workers: int = 0) -> None:
        """`repair`, then wait until every process is connected to Redis: a tab that subscribes while its
        process is not misses the runs started elsewhere in the meantime."""
        self.repair(booting_workers=booting_workers)
        await until(self.bus_ok, 30, "every process to be connected to Redis")

    def use_workers(self, **env: str) -> None:
        """Workers with these settings from now on: the others are replaced (an idempotent switch)."""
        if all(self.worker_env.get(k) == v for k, v in env.items()):
            return
        self.worker_env.update(env)
        for worker in self.workers:
            worker.stop()
        self.respawn()  # `repair` or `whole` waits for them

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


async def ready(process: ServerProcess) -> tuple[int, dict[str, Any]]:
    """`GET /health/ready`: its status code and body."""
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(f"{process.url}/health/ready")
    body: dict[str, Any] = response.json()
    return response.status_code, body


async def until(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def alive(process: ServerProcess) -> bool:
    return process.process is not None and process.process.poll() is None


def pid(process: ServerProcess) -> int:
    assert process.process is not None
    return process.process.pid


def send_signal(process: ServerProcess, sig: signal.Signals) -> float:
    """Signal the process (SIGKILL, SIGTERM, SIGSTOP...); when it was sent (time.time(), as arrivals)."""
    os.kill(pid(process), sig)
    return time.time()


@contextlib.contextmanager
def shared_cluster(
    data_dir: Path,
    postgres: PostgresServer,
    redis: RedisServer,
    *,
    apis: int = 2,
    workers: int = 2,
    worker_env: dict[str, str] | None = None,
    booting_workers: int = 0,
    **env: str,
) -> Iterator[Cluster]:
    """A cluster on a database of its own and a flushed Redis; every process is killed afterwards.
    `env` goes to every process, `worker_env` to the workers only; up to `booting_workers` workers
    may still be booting when it is handed over."""
    postgres.start()
    redis.start()
    redis.flushall()
    name = postgres.create_database()
    url = postgres.url_for(name)
    upgrade(url)
    made = Cluster(data_dir, url, redis.url, apis=apis, workers=workers, env=env, worker_env=worker_env or {})
    try:
        made.boot(booting_workers=booting_workers)
        yield made
    finally:
        made.close()
        postgres.start()
        redis.start()
        postgres.drop_database(name)
