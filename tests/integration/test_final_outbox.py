"""A worker that dies after committing a run's final event but before publishing it: the final event
still reaches the client following the run, once (the `final_published` outbox, swept by a worker)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import pytest

from support.clients import open_ws, send_message, signup
from support.live import ServerProcess, spawn, wait_healthy
from support.servers import RedisServer
from tokenwise.session.contract import violations

pytestmark = [pytest.mark.redis, pytest.mark.slow]


async def test_a_final_event_committed_but_never_published_still_reaches_the_client(
    tmp_path: Path, processes: list[ServerProcess], redis_server: RedisServer
) -> None:
    redis_server.flushall()
    shared = {"TOKENWISE_BUS_URL": redis_server.url, "TOKENWISE_LEASE_S": "2"}
    auth = spawn(processes, tmp_path, "auth")
    api = spawn(processes, tmp_path, "api", TOKENWISE_AUTH_URL=auth.url, **shared)
    doomed = spawn(
        processes, tmp_path, "worker", TOKENWISE_FAULT_INJECTION="die_before_final_publish", **shared
    )
    for process in (auth, api, doomed):
        wait_healthy(process.url)
    account = await signup(auth.url)

    ws, _ = await open_ws(api.ws_url, account.access_token)
    async with ws:
        ack = await send_message(ws, "Where does our LLM spend go?", client_message_id="outbox-1")
        received: list[dict[str, object]] = []
        # Everything up to the final event arrives live; then the worker dies before publishing it.
        assert doomed.process is not None
        while doomed.process.poll() is None:
            try:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 0.5))
            except TimeoutError:
                continue
            if frame.get("run_id") == ack["run_id"] and "seq" in frame:
                received.append(frame)
        assert doomed.process.returncode == 137
        assert received, "the run's events before its end arrived live"
        assert not any(e["data"].get("final") for e in received)  # type: ignore[attr-defined]

        rescuer = spawn(processes, tmp_path, "worker", **shared)
        wait_healthy(rescuer.url)
        started = time.monotonic()
        while not (received and received[-1]["data"].get("final")):  # type: ignore[attr-defined]
            frame = json.loads(await asyncio.wait_for(ws.recv(), 15))
            if frame.get("run_id") == ack["run_id"] and "seq" in frame:
                received.append(frame)
        waited = time.monotonic() - started

    headers = {"Authorization": f"Bearer {account.access_token}"}
    async with httpx.AsyncClient(base_url=api.url, headers=headers, timeout=10) as http:
        stored = (await http.get(f"/api/runs/{ack['run_id']}/events")).json()["events"]
        run = (await http.get(f"/api/runs/{ack['run_id']}")).json()
    assert received == stored  # every event once, in order, the final one included
    assert violations(stored) == []
    assert run["status"] == "completed"
    assert waited < 10, f"the final event took {waited:.1f} s after a worker was back"
