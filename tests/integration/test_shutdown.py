"""SIGTERM on a real `tokenwise serve` process: clients are told and closed with 1012; no run is left open."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from support.clients import Account, collect_run, open_ws, signup
from support.live import ServerProcess
from tokenwise.session.contract import violations

pytestmark = pytest.mark.slow

GRACE_S = 3.0


@pytest.fixture
def process(tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path, TOKENWISE_SHUTDOWN_GRACE_S=str(GRACE_S))
    yield server
    server.stop()


async def _frames_until_closed(ws: ClientConnection, timeout: float) -> list[dict[str, Any]]:
    """Every frame the server sends until it closes the connection."""
    frames: list[dict[str, Any]] = []
    try:
        while True:
            frames.append(json.loads(await asyncio.wait_for(ws.recv(), timeout)))
    except ConnectionClosed:
        return frames


def _sigterm(process: ServerProcess) -> float:
    assert process.process is not None
    process.process.send_signal(signal.SIGTERM)
    return time.monotonic()


async def test_sigterm_tells_connected_clients_and_closes_them_with_1012(process: ServerProcess) -> None:
    process.start()
    account = await signup(process.url)
    connections = [
        (await open_ws(process.ws_url, account.access_token, method))[0]
        for method in ("header", "subprotocol", "first_message")
    ]

    sent_at = _sigterm(process)
    for ws in connections:
        frames = await _frames_until_closed(ws, timeout=GRACE_S + 5)
        closed_after = time.monotonic() - sent_at
        assert [frame["type"] for frame in frames] == ["server_shutdown"]
        assert ws.close_code == 1012
        assert ws.close_reason == "server_shutdown"
        assert closed_after < GRACE_S, f"closed {closed_after:.2f}s after SIGTERM"
    assert process.process is not None
    assert process.process.wait(timeout=GRACE_S + 10) == 0
    assert "Traceback" not in process.log()
    assert "ERROR" not in process.log()

    # Nothing listens any more.
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{process.url}/health", timeout=2)


async def _run_traffic(
    process: ServerProcess, account: Account, messages: int
) -> tuple[list[str], list[dict[str, Any]]]:
    """Send messages, SIGTERM as the first ack arrives (its run is in flight), read until closed."""
    ws, _ = await open_ws(process.ws_url, account.access_token)
    for index in range(messages):
        await ws.send(json.dumps({"type": "user_message", "content": f"question {index}"}))
    frames: list[dict[str, Any]] = []
    while True:
        frames.append(json.loads(await asyncio.wait_for(ws.recv(), 30)))
        if frames[-1]["type"] == "ack":
            break
    _sigterm(process)
    frames += await _frames_until_closed(ws, timeout=GRACE_S + 5)
    assert ws.close_code == 1012, (ws.close_code, ws.close_reason)
    acked = [frame["run_id"] for frame in frames if frame["type"] == "ack"]
    return acked, frames


async def test_runs_in_flight_at_sigterm_still_end_with_their_final_event(process: ServerProcess) -> None:
    process.start()
    account = await signup(process.url)
    acked, frames = await _run_traffic(process, account, messages=8)
    assert process.process is not None
    assert process.process.wait(timeout=GRACE_S + 10) == 0
    assert "Traceback" not in process.log()

    assert acked
    types = [frame["type"] for frame in frames]
    assert types[-1] == "server_shutdown"
    assert types.count("server_shutdown") == 1

    # Every event the client got before 1012 is in order and unique, per run.
    received: dict[str, list[dict[str, Any]]] = {}
    for frame in frames:
        if "seq" in frame:
            received.setdefault(frame["run_id"], []).append(frame)
    for run_id, events in received.items():
        assert [event["seq"] for event in events] == list(range(1, len(events) + 1)), run_id
    # Shutdown lets runs finish and sends what is already due before server_shutdown: every
    # acknowledged run reached its final event on this connection.
    unfinished = [r for r in acked if not (received.get(r) and received[r][-1]["data"].get("final"))]
    assert unfinished == []

    # After a restart: every run the server accepted, acknowledged or not, completed within the grace
    # period (none was left for the restart to clean up), and is stored with its final event.
    process.start()
    headers = {"Authorization": f"Bearer {account.access_token}"}
    async with httpx.AsyncClient(base_url=process.url, headers=headers, timeout=10) as http:
        accepted: set[str] = set()
        for thread in (await http.get("/api/threads")).json()["threads"]:
            messages = (await http.get(f"/api/threads/{thread['id']}/messages")).json()["messages"]
            accepted |= {message["run_id"] for message in messages if message["run_id"]}
        assert set(acked) <= accepted
        for run_id in accepted:
            run = (await http.get(f"/api/runs/{run_id}")).json()
            assert run["status"] == "completed", run
            stored = (await http.get(f"/api/runs/{run_id}/events")).json()["events"]
            assert violations(stored) == [], run_id
            assert stored[-1]["type"] == "agent_completed"
            assert run["last_seq"] == stored[-1]["seq"]
            assert stored[: len(received.get(run_id, []))] == received.get(run_id, [])

    # The client reconnects after 1012 and resumes each acknowledged run where it was cut off.
    ws, _ = await open_ws(process.ws_url, account.access_token)
    async with ws:
        for run_id in acked:
            got = received.get(run_id, [])
            if got and got[-1]["data"].get("final"):
                continue
            await ws.send(json.dumps({"type": "resume", "run_id": run_id, "after_seq": len(got)}))
            rest = await collect_run(ws, run_id)
            assert [event["seq"] for event in got + rest] == list(range(1, len(got) + len(rest) + 1))
            assert rest[-1]["type"] == "agent_completed"
