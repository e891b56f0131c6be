"""The golden path on PostgreSQL (asyncpg) instead of SQLite: run, dropped connection + resume, SSE."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from support.clients import collect_run, open_ws, recv_json, send_message, signup
from support.live import LiveServer
from tokenwise.session.contract import missing_critical, violations

pytestmark = pytest.mark.postgres


async def _sse_events(http: httpx.AsyncClient, run_id: str, **headers: str) -> list[dict[str, Any]]:
    """The run's SSE stream to its end; checks that each message's `id:` is its event's seq."""
    events: list[dict[str, Any]] = []
    async with http.stream("GET", f"/api/runs/{run_id}/stream", headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        fields: dict[str, str] = {}
        async for line in response.aiter_lines():
            if line:
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")
                continue
            if "data" in fields:
                event = json.loads(fields["data"])
                assert fields["id"] == str(event["seq"])
                assert fields["event"] == event["type"]
                events.append(event)
            fields = {}
    return events


@pytest.fixture
def live(start_server: Callable[..., LiveServer], postgres_url: str) -> LiveServer:
    server = start_server(database_url=postgres_url)
    assert server.services.db.is_sqlite is False
    return server


async def test_golden_path_on_postgres(live: LiveServer) -> None:
    account = await signup(live.url)
    ws, welcome = await open_ws(live.ws_url, account.access_token)
    async with ws:
        assert welcome["user_id"] == account.user_id
        ack = await send_message(ws, "Where is our LLM spend going?", client_message_id="pg-1")
        events = await collect_run(ws, ack["run_id"])
        # A repeated client_message_id starts no second run.
        again = await send_message(ws, "Where is our LLM spend going?", client_message_id="pg-1")
        assert {**again, "timestamp": None} == {**ack, "timestamp": None}  # each frame has its own time
        await ws.send(json.dumps({"type": "get_thread_history", "thread_id": ack["thread_id"]}))
        history = await recv_json(ws)
    assert violations(events) == []
    assert missing_critical(events) == []
    assert events[-1]["data"]["result"]

    messages = history["messages"]
    assert messages[0]["role"] == "user"
    assert messages[0]["content"] == "Where is our LLM spend going?"
    assert len([m for m in messages if m["role"] == "user"]) == 1

    async with httpx.AsyncClient(
        base_url=live.url, headers={"Authorization": f"Bearer {account.access_token}"}, timeout=30
    ) as http:
        run = (await http.get(f"/api/runs/{ack['run_id']}")).json()
        assert run["status"] == "completed"
        assert run["last_seq"] == len(events)
        assert run["report"] == events[-1]["data"]["result"]
        polled = (await http.get(f"/api/runs/{ack['run_id']}/events")).json()["events"]
        assert polled == events
        assert await _sse_events(http, ack["run_id"]) == events
        assert await _sse_events(http, ack["run_id"], **{"Last-Event-ID": "10"}) == events[10:]
        tail = (await http.get(f"/api/runs/{ack['run_id']}/events", params={"after_seq": 50})).json()
        assert tail["events"] == events[50:]


async def test_forced_disconnect_then_resume_on_postgres_loses_and_duplicates_nothing(
    live: LiveServer,
) -> None:
    account = await signup(live.url)
    ws, _ = await open_ws(live.ws_url, account.access_token)
    ack = await send_message(ws, "How do we cut our LLM costs by 30%?")
    seen: list[dict[str, Any]] = []
    while len(seen) < 5:
        frame = await recv_json(ws)
        if frame.get("run_id") == ack["run_id"] and "seq" in frame:
            seen.append(frame)
    ws.transport.abort()  # the network drops: no close frame
    await ws.wait_closed()

    ws, _ = await open_ws(live.ws_url, account.access_token, "ticket", base_url=live.url)
    async with ws:
        await ws.send(json.dumps({"type": "resume", "run_id": ack["run_id"], "after_seq": seen[-1]["seq"]}))
        rest = await collect_run(ws, ack["run_id"])
        # Nothing more arrives for the run once its final event has been delivered.
        await ws.send(json.dumps({"type": "ping"}))
        assert (await recv_json(ws))["type"] == "pong"
    events = seen + rest
    assert violations(events) == []
    assert len({event["event_id"] for event in events}) == len(events)

    # A run started over HTTP, followed over SSE while it runs, gives the same events as the store.
    async with httpx.AsyncClient(
        base_url=live.url, headers={"Authorization": f"Bearer {account.access_token}"}, timeout=30
    ) as http:
        posted = await http.post(
            f"/api/threads/{ack['thread_id']}/messages", json={"content": "And for the next quarter?"}
        )
        assert posted.status_code == 202, posted.text
        run_id = posted.json()["run_id"]
        streamed = await asyncio.wait_for(_sse_events(http, run_id), 30)
        stored = (await http.get(f"/api/runs/{run_id}/events")).json()["events"]
    assert streamed == stored
    assert violations(streamed) == []
