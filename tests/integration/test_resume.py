"""Resume after a dropped connection: each event after `after_seq` exactly once, in order, to the final."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection

from support.clients import Account, collect_run, open_ws, recv_json, send_message, signup
from support.live import LiveServer
from tokenwise.session.contract import violations

METHODS = ("header", "subprotocol", "ticket", "first_message")


async def _stored_events(server: LiveServer, account: Account, run_id: str) -> list[dict[str, Any]]:
    """The run's complete event list from the polling API, once the run has ended."""
    headers = {"Authorization": f"Bearer {account.access_token}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers) as http:
        for _ in range(200):
            run = (await http.get(f"/api/runs/{run_id}")).json()
            if run["status"] not in ("queued", "running"):
                events: list[dict[str, Any]] = (await http.get(f"/api/runs/{run_id}/events")).json()["events"]
                assert len(events) == run["last_seq"]
                return events
            await asyncio.sleep(0.05)
    raise AssertionError(f"run {run_id} never ended")


async def _resume(ws: ClientConnection, run_id: str, after_seq: int) -> list[dict[str, Any]]:
    await ws.send(json.dumps({"type": "resume", "run_id": run_id, "after_seq": after_seq}))
    return await collect_run(ws, run_id)


async def _assert_nothing_more(ws: ClientConnection) -> None:
    """The next frame after a ping is its pong: no event arrived twice after the run's final one."""
    await ws.send(json.dumps({"type": "ping"}))
    frame = await recv_json(ws)
    assert frame["type"] == "pong", frame


async def _drop_after(
    server: LiveServer, account: Account, count: int, *, abrupt: bool = False
) -> tuple[str, list[dict[str, Any]]]:
    """Start a run, read its first `count` events, then drop the connection (closed, or the TCP cut)."""
    # An unbounded client queue: with unread events past the default high-water mark the client library
    # stops reading, and would never see the server's answer to its close frame.
    ws, _ = await open_ws(server.ws_url, account.access_token, max_queue=None)
    seen: list[dict[str, Any]] = []
    ack = await send_message(ws, "Where is our LLM spend going and how do we cut it?")
    while len(seen) < count:
        frame = await recv_json(ws)
        if frame.get("run_id") == ack["run_id"] and "seq" in frame:
            seen.append(frame)
    if abrupt:
        ws.transport.abort()
    await ws.close()
    return ack["run_id"], seen


@pytest.mark.parametrize("method", METHODS)
async def test_a_dropped_client_resumes_with_each_credential_method(server: LiveServer, method: str) -> None:
    account = await signup(server.url)
    run_id, before = await _drop_after(server, account, 5)
    assert [e["seq"] for e in before] == [1, 2, 3, 4, 5]
    ws, welcome = await open_ws(server.ws_url, account.access_token, method=method, base_url=server.url)
    async with ws:
        assert welcome["user_id"] == account.user_id
        after = await _resume(ws, run_id, before[-1]["seq"])
        await _assert_nothing_more(ws)
    assert after[0]["seq"] == 6
    assert [e["seq"] for e in after] == list(range(6, after[-1]["seq"] + 1))
    assert after[-1]["data"]["final"] is True
    full = await _stored_events(server, account, run_id)
    assert before + after == full
    assert violations(before + after) == []


@pytest.mark.parametrize("abrupt", [False, True], ids=["closed", "tcp-cut"])
async def test_resume_after_the_run_finished_sends_the_rest_once(server: LiveServer, abrupt: bool) -> None:
    account = await signup(server.url)
    run_id, before = await _drop_after(server, account, 3, abrupt=abrupt)
    full = await _stored_events(server, account, run_id)
    ws, _ = await open_ws(server.ws_url, account.access_token)
    async with ws:
        after = await _resume(ws, run_id, 3)
        await _assert_nothing_more(ws)
    assert before + after == full
    assert len({e["event_id"] for e in before + after}) == len(full)


async def test_resume_with_after_seq_zero_replays_the_whole_run(server: LiveServer) -> None:
    account = await signup(server.url)
    ws, _ = await open_ws(server.ws_url, account.access_token)
    async with ws:
        ack = await send_message(ws, "Summarise our token usage")
        live = await collect_run(ws, ack["run_id"])
    replay_ws, _ = await open_ws(server.ws_url, account.access_token, method="subprotocol")
    async with replay_ws:
        replayed = await _resume(replay_ws, ack["run_id"], 0)
        await _assert_nothing_more(replay_ws)
    assert replayed == live
    assert replayed == await _stored_events(server, account, ack["run_id"])


async def test_resume_after_the_final_seq_sends_nothing(server: LiveServer) -> None:
    account = await signup(server.url)
    ws, _ = await open_ws(server.ws_url, account.access_token)
    async with ws:
        ack = await send_message(ws, "Summarise our token usage")
        events = await collect_run(ws, ack["run_id"])
        await ws.send(json.dumps({"type": "resume", "run_id": ack["run_id"], "after_seq": len(events)}))
        await _assert_nothing_more(ws)


async def test_resume_of_another_users_run_is_not_found_and_the_connection_stays_open(
    server: LiveServer,
) -> None:
    owner, intruder = await signup(server.url), await signup(server.url)
    run_id, _ = await _drop_after(server, owner, 2)
    ws, _ = await open_ws(server.ws_url, intruder.access_token)
    async with ws:
        for target in (run_id, "no-such-run"):
            await ws.send(json.dumps({"type": "resume", "run_id": target, "after_seq": 0}))
            error = await recv_json(ws)
            assert error["type"] == "error"
            assert error["code"] == "not_found"
            assert error["field"] == "run_id"
            await _assert_nothing_more(ws)
