"""Polling and Server-Sent Events return exactly the events the WebSocket delivered."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import httpx

from support.clients import Account, collect_run, open_ws, send_message, signup
from support.live import LiveServer
from tokenwise.session.contract import missing_critical, violations


@dataclass
class SseMessage:
    id: str | None
    event: str | None
    data: dict[str, Any]


@dataclass
class SseStream:
    status: int
    content_type: str
    retry: str | None
    comments: list[str]
    messages: list[SseMessage]


async def read_sse(http: httpx.AsyncClient, path: str, headers: dict[str, str] | None = None) -> SseStream:
    """Read an SSE response to its end (the server ends it after the run's final event) and parse it."""
    stream = SseStream(0, "", None, [], [])
    async with http.stream("GET", path, headers=headers) as response:
        stream.status, stream.content_type = response.status_code, response.headers.get("content-type", "")
        if response.status_code != 200:
            await response.aread()
            return stream
        fields: dict[str, str] = {}
        data: list[str] = []
        async for line in response.aiter_lines():
            if line == "":
                if data:
                    stream.messages.append(
                        SseMessage(fields.get("id"), fields.get("event"), json.loads("\n".join(data)))
                    )
                fields, data = {}, []
                continue
            if line.startswith(":"):
                stream.comments.append(line[1:].strip())
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                data.append(value)
            elif name == "retry":
                stream.retry = value
            else:
                fields[name] = value
    return stream


def _client(server: LiveServer, account: Account) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {account.access_token}"}, timeout=30
    )


async def _websocket_run(server: LiveServer, account: Account) -> list[dict[str, Any]]:
    ws, _ = await open_ws(server.ws_url, account.access_token)
    async with ws:
        ack = await send_message(ws, "Where is our LLM spend going and how do we cut it 30%?")
        return await collect_run(ws, ack["run_id"])


async def test_polling_returns_exactly_the_websocket_events(server: LiveServer) -> None:
    account = await signup(server.url)
    delivered = await _websocket_run(server, account)
    run_id = delivered[0]["run_id"]
    async with _client(server, account) as http:
        everything = (await http.get(f"/api/runs/{run_id}/events")).json()
        tail = (await http.get(f"/api/runs/{run_id}/events", params={"after_seq": 10})).json()
        past_end = (await http.get(f"/api/runs/{run_id}/events", params={"after_seq": len(delivered)})).json()
        bad = await http.get(f"/api/runs/{run_id}/events", params={"after_seq": -1})
        run = (await http.get(f"/api/runs/{run_id}")).json()
    assert everything == {"run_id": run_id, "events": delivered}
    assert tail["events"] == delivered[10:]
    assert past_end["events"] == []
    assert bad.status_code == 422
    assert bad.json()["error"]["field"] == "after_seq"
    assert run["status"] == "completed"
    assert run["last_seq"] == len(delivered)
    assert run["finished_at"] is not None
    assert run["report"] == delivered[-1]["data"]["result"]


async def test_sse_streams_exactly_the_websocket_events_and_ends_after_the_final_one(
    server: LiveServer,
) -> None:
    account = await signup(server.url)
    delivered = await _websocket_run(server, account)
    run_id = delivered[0]["run_id"]
    async with _client(server, account) as http:
        stream = await read_sse(http, f"/api/runs/{run_id}/stream")
    assert stream.status == 200
    assert stream.content_type.startswith("text/event-stream")
    assert stream.retry is not None
    assert [m.data for m in stream.messages] == delivered
    assert [m.id for m in stream.messages] == [str(e["seq"]) for e in delivered]
    assert [m.event for m in stream.messages] == [e["type"] for e in delivered]


async def test_sse_resumes_from_last_event_id_or_after_seq(server: LiveServer) -> None:
    account = await signup(server.url)
    delivered = await _websocket_run(server, account)
    path = f"/api/runs/{delivered[0]['run_id']}/stream"
    async with _client(server, account) as http:
        by_header = await read_sse(http, path, headers={"Last-Event-ID": "20"})
        by_query = await read_sse(http, f"{path}?after_seq=40")
        # A reconnecting EventSource keeps its URL and adds Last-Event-ID: the header wins.
        both = await read_sse(http, f"{path}?after_seq=5", headers={"Last-Event-ID": "30"})
        bad = await http.get(path, headers={"Last-Event-ID": "-3"})
    assert [m.data for m in by_header.messages] == delivered[20:]
    assert [m.data for m in by_query.messages] == delivered[40:]
    assert [m.data for m in both.messages] == delivered[30:]
    assert bad.status_code == 422


async def test_sse_reconnect_after_the_final_event_ends_at_once(server: LiveServer) -> None:
    """EventSource reconnects whenever a stream ends, with the final seq as Last-Event-ID."""
    account = await signup(server.url)
    delivered = await _websocket_run(server, account)
    path = f"/api/runs/{delivered[0]['run_id']}/stream"
    async with _client(server, account) as http:
        # 204 tells an EventSource to stop reconnecting; hanging on with heartbeats would leak the stream.
        stream = await asyncio.wait_for(
            read_sse(http, path, headers={"Last-Event-ID": str(len(delivered))}), timeout=10
        )
    assert stream.status == 204
    assert stream.messages == []


async def test_a_run_started_over_http_is_followed_over_sse_and_the_websocket(server: LiveServer) -> None:
    account = await signup(server.url)
    ws, _ = await open_ws(server.ws_url, account.access_token)
    async with ws, _client(server, account) as http:
        thread = await http.post("/api/threads", json={"title": "Spend review"})
        assert thread.status_code == 201
        thread_id = thread.json()["id"]
        posted = await http.post(
            f"/api/threads/{thread_id}/messages", json={"content": "How do we cut our LLM costs?"}
        )
        assert posted.status_code == 202
        body = posted.json()
        assert {"message_id", "run_id"} <= set(body)
        run_id = body["run_id"]
        stream = await read_sse(http, f"/api/runs/{run_id}/stream")
        # The user's open WebSocket receives the run that HTTP started, like any other tab.
        over_ws = await collect_run(ws, run_id)
        polled = (await http.get(f"/api/runs/{run_id}/events")).json()["events"]
        messages = (await http.get(f"/api/threads/{thread_id}/messages")).json()["messages"]
    sse_events = [m.data for m in stream.messages]
    assert sse_events == over_ws == polled
    assert violations(sse_events) == []
    assert missing_critical(sse_events) == []
    assert {e["thread_id"] for e in sse_events} == {thread_id}
    assert [(m["role"], m["run_id"]) for m in messages] == [("user", run_id), ("assistant", run_id)]
    assert messages[0]["id"] == body["message_id"]


async def test_sse_and_polling_of_an_unknown_run_are_404(server: LiveServer) -> None:
    account = await signup(server.url)
    async with _client(server, account) as http:
        for path in ("/api/runs/nope/stream", "/api/runs/nope/events", "/api/runs/nope"):
            response = await http.get(path)
            assert response.status_code == 404, path
            assert response.json()["error"]["code"] == "not_found"
