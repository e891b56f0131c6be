"""`tokenwise cluster` end to end: the launcher starts PostgreSQL, Redis, the auth service, two API
processes, two workers and nginx; the demo user runs the golden path over real WebSockets through nginx,
the runs are spread over both workers, and SIGTERM to the launcher leaves nothing behind.

The workers run with TOKENWISE_WORKER_CONCURRENCY=1 (passed through by the launcher like any setting it
does not decide), so that runs sent at once cannot all be claimed by the first worker to wake up: which
worker claims a run is otherwise a race, and spreading the work is what this test must see.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from websockets.asyncio.client import ClientConnection

from support.clients import open_ws
from support.servers import free_port, to_asyncpg_dsn
from tokenwise.cli import DEMO_EMAIL, DEMO_PASSWORD
from tokenwise.cluster.nginx import Balancer
from tokenwise.cluster.processes import alive, listening, tail
from tokenwise.cluster.state import State, stop_cluster
from tokenwise.session.contract import missing_critical, violations

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

PROJECT = Path(__file__).resolve().parents[2]
QUESTION = "How do I cut my LLM costs by 30%?"
RUNS_PER_SOCKET = 2


def _wait_ready(directory: Path, launcher: subprocess.Popen[bytes], log: Path, timeout: float) -> State:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if launcher.poll() is not None:
            pytest.fail(f"the launcher exited with {launcher.returncode}:\n{tail(log, 60)}")
        state = State.load(directory)
        if state is not None and state.ready:
            return state
        time.sleep(0.5)
    pytest.fail(f"the cluster was not ready after {timeout:g} s:\n{tail(log, 60)}")


async def _send_all(ws: ClientConnection, tag: str) -> None:
    for index in range(RUNS_PER_SOCKET):
        frame = {"type": "user_message", "content": QUESTION, "client_message_id": f"{tag}-{index}"}
        await ws.send(json.dumps(frame))


async def _collect(ws: ClientConnection) -> dict[str, list[dict[str, Any]]]:
    """Read until every message sent on this socket is acknowledged and each of its runs has ended."""
    acked: list[str] = []
    events: dict[str, list[dict[str, Any]]] = {}
    while len(acked) < RUNS_PER_SOCKET or any(
        not (events.get(run) and events[run][-1].get("data", {}).get("final")) for run in acked
    ):
        frame = json.loads(await asyncio.wait_for(ws.recv(), 60))
        if frame["type"] == "ack":
            acked.append(frame["run_id"])
        elif frame["type"] == "error":
            pytest.fail(f"error frame: {frame}")
        elif "seq" in frame:
            events.setdefault(frame["run_id"], []).append(frame)
    return {run: events[run] for run in acked}


async def _golden_path(url: str) -> tuple[str, dict[str, list[dict[str, Any]]]]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        login = await http.post("/auth/login", json={"email": DEMO_EMAIL, "password": DEMO_PASSWORD})
        assert login.status_code == 200, login.text
        token = login.json()["access_token"]
        ws_url = url.replace("http://", "ws://") + "/ws"
        # Two tabs, opened one after the other: nginx sends them to different API processes.
        first, _ = await open_ws(ws_url, token)
        second, _ = await open_ws(ws_url, token)
        async with first, second:
            await _send_all(first, "a")
            await _send_all(second, "b")
            collected = await asyncio.gather(_collect(first), _collect(second))
        runs = {**collected[0], **collected[1]}
        headers = {"Authorization": f"Bearer {token}"}
        for run_id, events in runs.items():
            stored = (await http.get(f"/api/runs/{run_id}/events?after_seq=0", headers=headers)).json()
            received = [(e["seq"], e["type"]) for e in events]
            assert [(e["seq"], e["type"]) for e in stored["events"]] == received
    return token, runs


async def _lease_owners(database_url: str, run_ids: list[str]) -> dict[str, tuple[str, str]]:
    connection = await asyncpg.connect(to_asyncpg_dsn(database_url))
    try:
        rows = await connection.fetch(
            "SELECT id, status, lease_owner FROM runs WHERE id = ANY($1::varchar[])", run_ids
        )
    finally:
        await connection.close()
    return {row["id"]: (row["status"], row["lease_owner"]) for row in rows}


def _cleanup(directory: Path, launcher: subprocess.Popen[bytes]) -> None:
    if launcher.poll() is None:
        launcher.send_signal(signal.SIGTERM)
        try:
            launcher.wait(90)
        except subprocess.TimeoutExpired:
            launcher.kill()
            launcher.wait(10)
    stop_cluster(directory, lambda _line: None)  # whatever a failed launcher left behind
    link = directory / "postgres"
    if link.is_symlink():  # the data went to /var/tmp: out of the postgres user's reach under tmp_path
        shutil.rmtree(link.resolve(), ignore_errors=True)


def test_cluster_serves_the_golden_path_over_both_workers_and_stops_cleanly(tmp_path: Path) -> None:
    directory, port, log = tmp_path / "cluster", free_port(), tmp_path / "launcher.log"
    env = {**os.environ, "TOKENWISE_WORKER_CONCURRENCY": "1"}
    argv = [sys.executable, "-m", "tokenwise", "cluster", "--port", str(port), "--dir", str(directory)]
    with log.open("wb") as out:
        launcher = subprocess.Popen(argv, cwd=PROJECT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        started = time.monotonic()
        state = _wait_ready(directory, launcher, log, timeout=180)
        startup_s = time.monotonic() - started
        printed = log.read_text()
        assert f"http://127.0.0.1:{port}" in printed
        assert f"{DEMO_EMAIL} / {DEMO_PASSWORD}" in printed
        by_role: dict[str, list[int]] = {}
        for entry in state.processes:
            by_role.setdefault(entry.role, []).append(entry.port)
        assert {role: len(ports) for role, ports in by_role.items()} == {
            "postgres": 1,
            "redis": 1,
            "auth": 1,
            "api": 2,
            "worker": 2,
            "nginx": 1,
        }

        _token, runs = asyncio.run(_golden_path(state.url))

        assert len(runs) == 2 * RUNS_PER_SOCKET
        for run_id, events in runs.items():
            assert violations(events) == [], run_id
            assert missing_critical(events) == [], run_id
            assert events[-1]["data"]["result"]["report_type"] == "guidance"
        owners = asyncio.run(_lease_owners(state.database_url, list(runs)))
        assert {status for status, _owner in owners.values()} == {"completed"}
        # A worker's lease owner is host:pid:nonce.
        worker_pids = {entry.pid for entry in state.processes if entry.role == "worker"}
        assert {int(owner.split(":")[1]) for _status, owner in owners.values()} == worker_pids

        # nginx caps connections per client address (the API processes cannot: all clients are nginx).
        conf = (directory / "nginx" / "nginx.conf").read_text()
        assert "limit_conn_zone $binary_remote_addr zone=per_address:10m;" in conf
        assert "limit_conn per_address 256;" in conf
        assert "limit_conn_status 503;" in conf

        # The two sockets were served by both API processes (nginx logs each upgrade when it closes).
        access = (directory / "logs" / "nginx-access.log").read_text().splitlines()
        upstreams = {line.rsplit("upstream=", 1)[1] for line in access if '"GET /ws ' in line}
        assert upstreams == {f"127.0.0.1:{p}" for p in by_role["api"]}

        launcher.send_signal(signal.SIGTERM)
        assert launcher.wait(90) == 0, tail(log, 40)
        assert State.load(directory) is None
        left = [e.name for e in state.processes if alive(e.pid, e.started)]
        assert left == [], f"still running after the launcher exited: {left}"
        assert [e.name for e in state.processes if listening(e.port)] == []
        print(f"cluster ready in {startup_s:.1f} s")  # shown with -s: the timings
    finally:
        _cleanup(directory, launcher)


# ---- nginx's per-address connection cap, on its own: nginx in front of a slow upstream ----------------


class _Slow(BaseHTTPRequestHandler):
    """Answers /slow after a second (a connection nginx is busy with), anything else at once."""

    def do_GET(self) -> None:
        if self.path == "/slow":
            time.sleep(1.0)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def upstream() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _nginx(tmp_path: Path, upstream: int, cap: int) -> tuple[subprocess.Popen[bytes], str, str]:
    """nginx started (as the launcher configures it) in front of `upstream`: its process, config, URL."""
    port = free_port()
    balancer = Balancer(
        port=port,
        home=tmp_path / f"nginx-{cap}",
        logs=tmp_path / f"logs-{cap}",
        auth_port=upstream,
        api_ports=(upstream,),
        max_connections_per_address=cap,
    )
    child = balancer.child(tmp_path)  # writes the configuration and runs `nginx -t` on it
    process = subprocess.Popen(child.argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not listening(port):
        assert process.poll() is None, tail(balancer.logs / "nginx-error.log", 20)
        assert time.monotonic() < deadline, "nginx is not listening after 10 s"
        time.sleep(0.05)
    return process, (balancer.home / "nginx.conf").read_text(), f"http://127.0.0.1:{port}"


@pytest.mark.parametrize("cap", [1, 0])
def test_nginx_refuses_a_client_over_its_connection_cap_with_503(
    tmp_path: Path, upstream: int, cap: int
) -> None:
    process, conf, url = _nginx(tmp_path, upstream, cap)
    try:
        assert ("limit_conn per_address 1;" in conf) is (cap == 1), conf
        assert ("limit_conn_status 503;" in conf) is (cap == 1), conf
        with (
            httpx.Client(base_url=url, timeout=10) as first,
            httpx.Client(base_url=url, timeout=10) as second,
        ):
            held = threading.Thread(target=first.get, args=("/slow",))
            held.start()
            time.sleep(0.3)  # the first connection is now one nginx is busy with
            over = second.get("/fast")
            held.join()
            after = second.get("/fast")
        assert over.status_code == (503 if cap == 1 else 200), over.text
        assert after.status_code == 200  # the cap counts open connections: one freed, the next is served
    finally:
        process.terminate()
        process.wait(10)
