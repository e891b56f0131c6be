"""Benchmark: the cluster (nginx, 2 API, 2 workers, PostgreSQL, Redis) beside one `--role all` process,
and the time from kill -9 of a worker to its run's next event.

1. `tokenwise cluster` in a temporary directory; `tokenwise loadtest --url <nginx>` closed-loop at 5 and at
   50 users (events/s, first event p50/p99, lost/duplicated).
2. The same two loads against one `--role all` process that `tokenwise loadtest` starts itself.
3. Kills: a cluster whose pipeline steps pause (`TOKENWISE_TEST_STEP_DELAY_MS`) so a run lasts a few
   seconds; `--kills` times: start a run, wait for its 5th event, kill -9 the worker that holds it (the
   `lease_owner` of the run names its pid), and time the next event (the launcher restarts the worker).

    .venv/bin/python bench/cluster.py [--kills 20] [--messages-per-user 10] [--json]

On a 2-core machine every process of the cluster shares the same two cores, so the cluster measures the
cost of the distribution (nginx hop, Redis hop, queue claim), not a gain in capacity.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from tokenwise.client.api import Client
from tokenwise.client.harness import LOAD_SERVER_ENV
from tokenwise.client.load import percentile
from tokenwise.cluster.launcher import RESTARTS_PER_MINUTE

ROOT = Path(__file__).resolve().parents[1]
TOKENWISE = [sys.executable, "-m", "tokenwise"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Cluster:
    def __init__(self, directory: Path, **env: str) -> None:
        self.directory, self.port = directory, free_port()
        directory.mkdir(parents=True, exist_ok=True)
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = (directory / "launcher.log").open("ab")
        command = [
            *TOKENWISE,
            "cluster",
            "--dir",
            str(directory),
            "--port",
            str(self.port),
            "--log-level",
            "warning",
        ]
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, **LOAD_SERVER_ENV, **env},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait(self, timeout_s: float = 240.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the cluster exited; see {self.directory / 'launcher.log'}")
            if (self.directory / "cluster.json").exists() and self._ready():
                return
            time.sleep(0.5)
        raise RuntimeError("the cluster did not become ready")

    def _ready(self) -> bool:
        try:
            state = self.state()
            if not state.get("ready", True):
                return False
            return httpx.get(f"{self.url}/health/ready", timeout=2).status_code == 200
        except (httpx.HTTPError, ValueError, OSError):
            return False

    def state(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads((self.directory / "cluster.json").read_text())
        return loaded

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=120)
        self.log.close()


def loadtest(url: str | None, concurrency: int, messages: int) -> dict[str, Any]:
    command = [*TOKENWISE, "loadtest", "--mode", "users", "--users", "50", "--concurrency", str(concurrency)]
    command += ["--messages-per-user", str(messages), "--json"]
    if url is not None:
        command += ["--url", url]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
    users: dict[str, Any] = json.loads(done.stdout)["users"]
    return users


def summary(users: dict[str, Any]) -> dict[str, Any]:
    first = users["time_to_first_event_ms"]
    keys = ("events_per_s", "lost_events", "duplicated_events", "reordered_events", "failed_runs")
    return {**{k: users[k] for k in keys}, "first_p50_ms": first["p50"], "first_p99_ms": first["p99"]}


async def _holder_pid(database_url: str, run_id: str) -> int:
    dsn = database_url.replace("postgresql+asyncpg://", "postgresql://")
    connection = await asyncpg.connect(dsn)
    try:
        for _ in range(200):
            owner = await connection.fetchval("SELECT lease_owner FROM runs WHERE id = $1", run_id)
            if owner:
                return int(str(owner).split(":")[1])
            await asyncio.sleep(0.05)
    finally:
        await connection.close()
    raise RuntimeError(f"run {run_id} has no lease owner")


async def kills(cluster: Cluster, count: int) -> list[float]:
    """Seconds from each kill -9 to the next event of the killed worker's run.

    The launcher stops the whole cluster when one process exits more than RESTARTS_PER_MINUTE times in a
    minute (its crash-loop guard), so a worker killed that often within the last minute is spared: that
    run goes on to its end and the next run's holder is killed instead."""
    gaps: list[float] = []
    kills_of: dict[str, list[float]] = defaultdict(list)  # the worker's name -> when it was killed
    async with httpx.AsyncClient(timeout=60, trust_env=False) as http:
        client = Client(cluster.url, http=http)
        email = f"kills-{os.getpid()}-{time.time_ns()}@example.com"
        await client.sign_up(email, "kill-bench-password")
        await client.sign_in(email, "kill-bench-password")
        index = 0
        while len(gaps) < count:
            index += 1
            async with await client.connect() as conn:
                ack = await conn.send_message(f"Where does our LLM spend go? ({index})")
                seen = 0
                killed_at = None
                async for _event in conn.events(ack.run_id):
                    seen += 1
                    if killed_at is not None:
                        gaps.append(time.monotonic() - killed_at)
                        killed_at = None
                    if seen == 5:
                        state = cluster.state()
                        pid = await _holder_pid(state["database_url"], ack.run_id)
                        name = next(p["name"] for p in state["processes"] if p["pid"] == pid)
                        recent = [t for t in kills_of[name] if time.monotonic() - t < 65]
                        if len(recent) < RESTARTS_PER_MINUTE:
                            os.kill(pid, signal.SIGKILL)
                            killed_at = time.monotonic()
                            kills_of[name] = [*recent, killed_at]
                await asyncio.sleep(3)  # let the launcher restart the worker before the next kill
    return gaps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--messages-per-user", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report: dict[str, Any] = {"machine": {"cores": os.cpu_count()}}
    with tempfile.TemporaryDirectory(prefix="tw-bench-cluster-") as tmp:
        cluster = Cluster(Path(tmp) / "load")
        try:
            cluster.wait()
            for concurrency in (5, 50):
                report[f"cluster_{concurrency}"] = summary(
                    loadtest(cluster.url, concurrency, args.messages_per_user)
                )
        finally:
            cluster.stop()
        for concurrency in (5, 50):
            report[f"all_{concurrency}"] = summary(loadtest(None, concurrency, args.messages_per_user))
        if args.kills:
            cluster = Cluster(Path(tmp) / "kills", TOKENWISE_TEST_STEP_DELAY_MS="150")
            try:
                cluster.wait()
                gaps = asyncio.run(kills(cluster, args.kills))
            finally:
                cluster.stop()
            report["kill_to_next_event_s"] = {
                "kills": len(gaps),
                "p50": round(statistics.median(gaps), 2),
                "p99": round(percentile(gaps, 99), 2),
                "max": round(max(gaps), 2),
            }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    for name, figures in report.items():
        print(f"{name:>22}: {figures}")


if __name__ == "__main__":
    main()
