"""The launcher behind `tokenwise cluster`: starts a local cluster in order, watches it, stops it in order.

Start: PostgreSQL, Redis, `tokenwise migrate`, the auth service (with the demo user), the first API
process with the workers, the other API processes, then nginx; each waited for until it answers (its
`/health/ready` for Tokenwise processes). The first API process starts alone because, in development, an
API process that finds no connector key generates one in the shared data directory: two at once would race.

While it runs, a process that exits is reported with the end of its log and started again on the same
port (its clients reconnect and resume, runs are taken over by a worker). A process that exits a fourth
time within a minute is a crash loop: the launcher stops everything and exits with status 1.

Stop (Ctrl-C, SIGTERM, SIGHUP, or `tokenwise cluster --stop` from another shell): the API processes and
workers (SIGTERM: their graceful shutdown), the auth service, nginx, Redis, then PostgreSQL; exit 0.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import httpx

from tokenwise.cluster.engines import Postgres, Redis
from tokenwise.cluster.nginx import Balancer
from tokenwise.cluster.processes import (
    Child,
    StartupFailed,
    describe_exit,
    free_port,
    port_in_use,
    stop_all,
    tail,
)
from tokenwise.cluster.state import Entry, State, stop_entries
from tokenwise.config import Settings

RESTARTS_PER_MINUTE = 3
READY_TIMEOUT_S = 120.0  # five Python processes importing at once on a small machine take a while
# Settings the launcher decides for every process; the caller's other TOKENWISE_* settings pass through.
_DECIDED = {"PORT", "TOKENWISE_PORT", "TOKENWISE_HOST", "TOKENWISE_ROLE", "TOKENWISE_DEMO_USER"}


@dataclass(frozen=True)
class Plan:
    """What to start: the options of `tokenwise cluster`."""

    directory: Path  # state, data and logs (./var/cluster)
    port: int = 8000  # nginx
    apis: int = 2
    workers: int = 2
    log_level: str = "info"
    project: Path = Path()  # the processes' working directory

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def logs(self) -> Path:
        return self.directory / "logs"


class Launcher:
    """Starts, supervises and stops one local cluster. `say` prints a line for the person watching."""

    def __init__(self, plan: Plan, settings: Settings, say: Callable[[str], None]) -> None:
        directory, project = plan.directory.resolve(), plan.project.resolve()
        self.plan = Plan(directory, plan.port, plan.apis, plan.workers, plan.log_level, project)
        self.settings, self.say = settings, say
        self.children: list[Child] = []
        self.state = State.mine(self.plan.url)
        self.interrupted = False
        self._owns_state = False  # the state file is this launcher's (not another one's it refused)

    # ---- the whole life ------------------------------------------------------------------------

    def run(self, on_ready: Callable[[Launcher], None]) -> int:
        """Start, call `on_ready`, supervise until a stop signal (0) or a crash loop (1), then stop."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in _STOP_SIGNALS}
        try:
            try:
                self.start()
            except StartupFailed as exc:
                self.say(f"the cluster did not start: {exc}")
                return 1
            except KeyboardInterrupt:
                return 0
            on_ready(self)
            return self.supervise()
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, _signum: int, _frame: FrameType | None) -> None:
        self.interrupted = True

    def _check(self) -> bool:
        return self.interrupted

    # ---- start ---------------------------------------------------------------------------------

    def start(self) -> None:
        plan = self.plan
        self._clear_leftovers()
        if port_in_use(plan.port):
            raise StartupFailed(
                f"port {plan.port} is in use (another cluster or `make run`?): use --port or PORT"
            )
        for sub in ("logs", "data", "blobs", "keys", "redis", "nginx"):
            (plan.directory / sub).mkdir(parents=True, exist_ok=True)
        self._owns_state = True
        self.state.save(plan.directory)

        processes = 1 + plan.apis + plan.workers
        per_process = self.settings.db_pool_size + self.settings.db_max_overflow
        connections = max(100, processes * per_process + 20)
        postgres = Postgres(plan.directory / "postgres", plan.logs / "postgres.log", free_port(), connections)
        self.say(f"PostgreSQL {postgres.version}: data in {plan.directory / 'postgres'}")
        self._launch(postgres.child(postgres.prepare()), 60.0)
        postgres.ensure_database()
        redis = Redis(plan.directory / "redis", plan.logs / "redis.log", free_port())
        self._launch(redis.child(), 30.0)
        self.state.database_url, self.state.bus_url = postgres.url, redis.url

        auth_port = free_port()
        env = self._env(postgres.url, redis.url, f"http://127.0.0.1:{auth_port}")
        self._migrate(env)
        self._launch(self._tokenwise("auth", "auth", auth_port, env, "--demo-user"))
        apis = [self._tokenwise(f"api-{i}", "api", free_port(), env) for i in range(1, plan.apis + 1)]
        workers = [
            self._tokenwise(f"worker-{i}", "worker", free_port(), env) for i in range(1, plan.workers + 1)
        ]
        self._launch(apis[0], wait=False)
        for worker in workers:
            self._launch(worker, wait=False)
        apis[0].wait_ready(READY_TIMEOUT_S, self._check)
        for api in apis[1:]:
            self._launch(api, wait=False)
        for child in [*apis[1:], *workers]:
            child.wait_ready(READY_TIMEOUT_S, self._check)

        heartbeat = self.settings.heartbeat_interval_s
        balancer = Balancer(
            port=plan.port,
            home=plan.directory / "nginx",
            logs=plan.logs,
            auth_port=auth_port,
            api_ports=tuple(api.port for api in apis),
            idle_timeout_s=max(75, math.ceil(heartbeat * 3)),
            # the cap per client address is nginx's (it sees the clients); the processes behind have none
            max_connections_per_address=self.settings.max_connections_per_address,
            max_body_bytes=self.settings.max_upload_bytes,
        )
        self._launch(balancer.child(plan.project), 30.0)
        self.state.ready = True
        self._record()

    def _clear_leftovers(self) -> None:
        previous = State.load(self.plan.directory)
        if previous is None:
            return
        if previous.launcher_alive():
            raise StartupFailed(
                f"a cluster already runs from {self.plan.directory} (launcher pid {previous.launcher_pid}, "
                f"{previous.url}): stop it with `tokenwise cluster --stop`"
            )
        leftovers = [entry for entry in previous.processes if entry.alive()]
        if leftovers:
            names = ", ".join(entry.name for entry in leftovers)
            self.say(f"stopping what a previous launcher left running: {names}")
            stop_entries(leftovers, self.say)
        State.remove(self.plan.directory)

    def _env(self, database_url: str, bus_url: str, auth_url: str) -> dict[str, str]:
        plan = self.plan
        env = {k: v for k, v in os.environ.items() if k not in _DECIDED}
        # Every client arrives from nginx's address: a per-address cap would be one cap for everybody.
        env.update(
            TOKENWISE_MAX_CONNECTIONS_PER_ADDRESS="0",
            TOKENWISE_DATABASE_URL=database_url,
            TOKENWISE_BUS_URL=bus_url,
            TOKENWISE_AUTH_URL=auth_url,  # the API fetches the JWKS straight from the auth service
            TOKENWISE_PUBLIC_URL=plan.url,  # tickets name nginx's address, not the API's own
            TOKENWISE_DATA_DIR=str(plan.directory / "data"),
            TOKENWISE_BLOB_DIR=str(plan.directory / "blobs"),
            TOKENWISE_KEY_DIR=str(plan.directory / "keys"),
            PYTHONUNBUFFERED="1",
        )
        return env

    def _migrate(self, env: dict[str, str]) -> None:
        log = self.plan.logs / "migrate.log"
        with log.open("ab") as out:
            migrated = subprocess.run(
                [sys.executable, "-m", "tokenwise", "migrate"],
                cwd=self.plan.project,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                check=False,
            )
        if migrated.returncode != 0:
            raise StartupFailed(f"tokenwise migrate failed; the end of {log}:\n{tail(log)}")

    def _tokenwise(self, name: str, role: str, port: int, env: dict[str, str], *extra: str) -> Child:
        argv = [sys.executable, "-m", "tokenwise", "serve", "--role", role, "--host", "127.0.0.1"]
        argv += ["--port", str(port), "--log-level", self.plan.log_level, *extra]
        return Child(
            name=name,
            role=role,
            port=port,
            argv=argv,
            log=self.plan.logs / f"{name}.log",
            cwd=self.plan.project,
            env=env,
            ready=lambda: _ready(port),
            # Its own graceful shutdown takes up to twice the grace period (runs, then open responses).
            stop_timeout_s=self.settings.shutdown_grace_s * 2 + 10,
        )

    def _launch(self, child: Child, timeout_s: float = READY_TIMEOUT_S, *, wait: bool = True) -> None:
        if self.interrupted:
            raise KeyboardInterrupt
        child.spawn()
        self.children.append(child)
        self._record()
        if wait:
            child.wait_ready(timeout_s, self._check)

    def _record(self) -> None:
        self.state.processes = [Entry.of(child) for child in self.children if child.pid is not None]
        self.state.save(self.plan.directory)

    # ---- run -----------------------------------------------------------------------------------

    def supervise(self) -> int:
        """Watch the processes until a stop signal (0) or a crash loop (1); restart what exits."""
        try:
            while not self.interrupted:
                for child in self.children:
                    if not child.running() and not self.interrupted and not self._restart(child):
                        return 1
                time.sleep(0.25)
        except KeyboardInterrupt:
            pass
        return 0

    def _restart(self, child: Child) -> bool:
        now = time.monotonic()
        child.exits = [t for t in child.exits if now - t < 60] + [now]
        self.say(
            f"{child.name} (pid {child.pid}) exited ({describe_exit(child.returncode())}); "
            f"the end of {child.log}:\n{tail(child.log)}"
        )
        if len(child.exits) > RESTARTS_PER_MINUTE:
            self.say(f"{child.name} exited {len(child.exits)} times within a minute: stopping the cluster")
            return False
        self.say(f"restarting {child.name} on port {child.port}")
        # A moment first: what the dead process held (its port, PostgreSQL's shared memory) is let go.
        pause = time.monotonic() + 1.0
        while time.monotonic() < pause:
            if self.interrupted:
                return True
            time.sleep(0.1)
        child.spawn()
        self._record()
        try:
            child.wait_ready(READY_TIMEOUT_S, self._check)
        except StartupFailed as exc:
            self.say(str(exc))  # the next round sees it gone and counts it
        else:
            self.say(f"{child.name} is back (pid {child.pid})")
        return True

    # ---- stop ----------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop every process this launcher started, in order, and remove the state file."""
        self.interrupted = True
        if any(child.running() for child in self.children):
            self.say("stopping the cluster")
            stop_all(self.children, self.say)
        if self._owns_state:
            State.remove(self.plan.directory)


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False
