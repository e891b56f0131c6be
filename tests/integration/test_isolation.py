"""Isolation: a user's events reach all of that user's connections and no one else's."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from support.clients import Account, collect_run, open_ws, recv_json, send_message, signup
from support.live import LiveServer
from tokenwise.session.contract import violations

USERS = 50


def _client(server: LiveServer, account: Account) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {account.access_token}"}, timeout=30
    )


async def _frames_until_pong(ws: Any) -> list[dict[str, Any]]:
    """Everything the server sends before answering a ping."""
    await ws.send(json.dumps({"type": "ping"}))
    frames = []
    while (frame := await recv_json(ws))["type"] != "pong":
        frames.append(frame)
    return frames


async def test_fifty_users_at_once_see_only_their_own_events(server: LiveServer) -> None:
    accounts = await asyncio.gather(*(signup(server.url) for _ in range(USERS)))
    connections = await asyncio.gather(*(open_ws(server.ws_url, a.access_token) for a in accounts))
    try:
        for account, (_, welcome) in zip(accounts, connections, strict=True):
            assert welcome["user_id"] == account.user_id

        async def one_user(index: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
            ws = connections[index][0]
            await ws.send(json.dumps({"type": "user_message", "content": f"user {index}: cut my LLM costs"}))
            frames: list[dict[str, Any]] = []
            while True:
                frame = await recv_json(ws)
                frames.append(frame)
                if frame["type"] == "ack":
                    ack = frame
                if frame.get("data", {}).get("final"):
                    return ack, frames

        results = await asyncio.gather(*(one_user(i) for i in range(USERS)))
        # Once every run has ended, anything leaked from another user's run would already be queued.
        leftovers = await asyncio.gather(*(_frames_until_pong(ws) for ws, _ in connections))
    finally:
        await asyncio.gather(*(ws.close() for ws, _ in connections))

    all_runs = {ack["run_id"] for ack, _ in results}
    assert len(all_runs) == USERS
    for (ack, frames), extra in zip(results, leftovers, strict=True):
        assert extra == []
        run_frames = [f for f in frames if "seq" in f]
        assert {f["run_id"] for f in run_frames} == {ack["run_id"]}
        assert {f["thread_id"] for f in run_frames} == {ack["thread_id"]}
        assert violations(run_frames) == []
    # Each user's own view over REST holds their one thread and nothing else.
    for account, (ack, _) in zip(accounts[:5], results[:5], strict=True):
        async with _client(server, account) as http:
            threads = (await http.get("/api/threads")).json()["threads"]
        assert [t["id"] for t in threads] == [ack["thread_id"]]


async def _owner_run(server: LiveServer) -> tuple[Account, dict[str, Any], list[dict[str, Any]]]:
    owner = await signup(server.url)
    ws, _ = await open_ws(server.ws_url, owner.access_token)
    async with ws:
        ack = await send_message(ws, "Owner's private question about spend")
        events = await collect_run(ws, ack["run_id"])
    return owner, ack, events


async def test_another_users_thread_and_run_are_404_over_rest(server: LiveServer) -> None:
    owner, ack, events = await _owner_run(server)
    intruder = await signup(server.url)
    thread, run = ack["thread_id"], ack["run_id"]
    requests = [
        ("GET", f"/api/threads/{thread}", None),
        ("GET", f"/api/threads/{thread}/messages", None),
        ("POST", f"/api/threads/{thread}/messages", {"content": "let me in"}),
        ("GET", f"/api/runs/{run}", None),
        ("GET", f"/api/runs/{run}/events", None),
        ("GET", f"/api/runs/{run}/stream", None),
        ("POST", f"/api/runs/{run}/cancel", None),
    ]
    async with _client(server, intruder) as http:
        for method, path, body in requests:
            response = await http.request(method, path, json=body)
            assert response.status_code == 404, (method, path, response.text)
            assert response.json()["error"]["code"] == "not_found", (method, path)
            assert owner.user_id not in response.text
        assert (await http.get("/api/threads")).json()["threads"] == []
    # The owner gets the same paths (the 404s are about ownership, not the ids), and nothing changed.
    async with _client(server, owner) as http:
        for method, path, _ in requests:
            if method == "GET" and not path.endswith("/stream"):
                assert (await http.get(path)).status_code == 200, path
        messages = (await http.get(f"/api/threads/{thread}/messages")).json()["messages"]
        polled = (await http.get(f"/api/runs/{run}/events")).json()["events"]
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert polled == events


async def test_another_users_thread_and_run_are_not_found_over_the_websocket(server: LiveServer) -> None:
    owner, ack, _ = await _owner_run(server)
    intruder = await signup(server.url)
    thread, run = ack["thread_id"], ack["run_id"]
    attempts = [
        {"type": "resume", "run_id": run, "after_seq": 0},
        {"type": "stop_agent", "run_id": run},
        {"type": "get_thread_history", "thread_id": thread},
        {"type": "user_message", "content": "write into their thread", "thread_id": thread},
    ]
    ws, _ = await open_ws(server.ws_url, intruder.access_token)
    async with ws:
        for attempt in attempts:
            await ws.send(json.dumps(attempt))
            error = await recv_json(ws)
            assert error["type"] == "error", (attempt, error)
            assert error["code"] == "not_found", (attempt, error)
            # Still open, and nothing of the owner's run arrived.
            assert await _frames_until_pong(ws) == []
    async with _client(server, owner) as http:
        messages = (await http.get(f"/api/threads/{thread}/messages")).json()["messages"]
        run_now = (await http.get(f"/api/runs/{run}")).json()
    assert [m["content"] for m in messages if m["role"] == "user"] == ["Owner's private question about spend"]
    assert run_now["status"] == "completed"
    async with _client(server, intruder) as http:
        assert (await http.get("/api/threads")).json()["threads"] == []


async def test_every_tab_of_a_user_receives_the_users_runs(server: LiveServer) -> None:
    account, stranger = await signup(server.url), await signup(server.url)
    tab_a, _ = await open_ws(server.ws_url, account.access_token)
    tab_b, _ = await open_ws(server.ws_url, account.access_token, method="subprotocol")
    outsider, _ = await open_ws(server.ws_url, stranger.access_token)
    async with tab_a, tab_b, outsider:
        ack = await send_message(tab_a, "Started in tab A")
        in_a = await collect_run(tab_a, ack["run_id"])
        in_b = await collect_run(tab_b, ack["run_id"])
        # And the other way round: a run started in tab B is delivered in full to tab A.
        ack_b = await send_message(tab_b, "Started in tab B")
        from_b_in_b = await collect_run(tab_b, ack_b["run_id"])
        from_b_in_a = await collect_run(tab_a, ack_b["run_id"])
        assert await _frames_until_pong(outsider) == []
    assert in_a == in_b
    assert violations(in_b) == []
    assert from_b_in_a == from_b_in_b
    assert violations(from_b_in_a) == []
