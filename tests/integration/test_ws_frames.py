"""Client frames over a real WebSocket: mistakes answered without closing, limits, aliases, idempotency."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from support.clients import collect_run, open_ws, recv_json, send_message, signup
from support.live import LiveServer
from tokenwise.session.contract import violations


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _send(ws: ClientConnection, frame: dict[str, Any]) -> None:
    await ws.send(json.dumps(frame))


async def _assert_open(ws: ClientConnection) -> None:
    """The connection still serves frames: a ping is answered with a pong."""
    await _send(ws, {"type": "ping"})
    pong = await recv_json(ws)
    assert pong["type"] == "pong", pong
    datetime.fromisoformat(pong["server_time"])


# (what the client sends, expected error code, expected field or None)
MISTAKES: list[tuple[str, str | bytes, str, str | None]] = [
    ("not json", "{not json", "invalid_json", None),
    ("truncated json", '{"type": "ping"', "invalid_json", None),
    ("unknown type", '{"type": "teleport"}', "unknown_type", "type"),
    ("no type", '{"content": "hi"}', "invalid_message", "type"),
    ("not an object", "[1, 2, 3]", "invalid_message", "type"),
    ("empty content", '{"type": "user_message", "content": ""}', "invalid_message", "content"),
    ("blank content", '{"type": "user_message", "content": "   "}', "invalid_message", "content"),
    ("no text at all", '{"type": "user_message"}', "invalid_message", "content"),
    (
        "content too long",
        json.dumps({"type": "user_message", "content": "x" * 33_000}),
        "invalid_message",
        "content",
    ),
    (
        "resume after_seq -1",
        '{"type": "resume", "run_id": "r", "after_seq": -1}',
        "invalid_message",
        "after_seq",
    ),
    ("resume without run_id", '{"type": "resume", "after_seq": 0}', "invalid_message", "run_id"),
    ("stop_agent without run_id", '{"type": "stop_agent"}', "invalid_message", "run_id"),
    (
        "history limit 0",
        '{"type": "get_thread_history", "thread_id": "t", "limit": 0}',
        "invalid_message",
        "limit",
    ),
    ("history without thread_id", '{"type": "get_thread_history"}', "invalid_message", "thread_id"),
    ("binary frame", b'{"type": "ping"}', "invalid_message", "frame"),
]


async def test_client_mistakes_get_an_error_frame_and_the_connection_stays_open(server: LiveServer) -> None:
    account = await signup(server.url)
    ws, _ = await open_ws(server.ws_url, account.access_token)
    async with ws:
        for name, raw, code, field in MISTAKES:
            await ws.send(raw)
            error = await recv_json(ws)
            assert error["type"] == "error", (name, error)
            assert error["code"] == code, (name, error)
            assert error["message"], name
            if field is not None:
                assert error["field"] == field, (name, error)
            await _assert_open(ws)


async def test_too_many_messages_are_rate_limited_with_retry_after(
    start_server: Callable[..., LiveServer],
) -> None:
    live = start_server(messages_per_second=1, message_burst=3)
    account = await signup(live.url)
    ws, _ = await open_ws(live.ws_url, account.access_token)
    async with ws:
        for _ in range(6):
            await _send(ws, {"type": "ping"})
        replies = [await recv_json(ws) for _ in range(6)]
        assert [r["type"] for r in replies[:3]] == ["pong"] * 3
        limited = [r for r in replies[3:] if r["type"] == "error"]
        assert limited, replies
        for error in limited:
            assert error["code"] == "rate_limited"
            assert 0 < error["retry_after_s"] <= 1.0
        # Waiting as told is enough: the connection was never closed.
        await asyncio.sleep(max(e["retry_after_s"] for e in limited) + 0.05)
        await _assert_open(ws)


async def test_a_frame_over_max_message_bytes_closes_with_1009(server: LiveServer) -> None:
    account = await signup(server.url)
    ws, welcome = await open_ws(server.ws_url, account.access_token)
    limit = welcome["max_message_bytes"]
    assert limit == 64 * 1024
    async with ws:
        # Just under the limit is still a frame (answered, not closed).
        await _send(ws, {"type": "ping", "padding": "x" * (limit - 100)})
        assert (await recv_json(ws))["type"] == "pong"
        await _send(ws, {"type": "user_message", "content": "x" * (limit + 1)})
        with pytest.raises(ConnectionClosed) as closed:
            await recv_json(ws)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009


async def test_too_many_connections_for_one_user_close_with_4429(
    start_server: Callable[..., LiveServer],
) -> None:
    live = start_server(max_connections_per_user=2)
    account, other = await signup(live.url), await signup(live.url)
    first, _ = await open_ws(live.ws_url, account.access_token)
    second, _ = await open_ws(live.ws_url, account.access_token, method="subprotocol")
    async with first, second:
        async with connect(live.ws_url, additional_headers=_bearer(account.access_token)) as third:
            error = await recv_json(third)
            assert error["type"] == "error"
            assert error["code"] == "too_many_connections"
            with pytest.raises(ConnectionClosed) as closed:
                await recv_json(third)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4429
        assert closed.value.rcvd.reason
        # The limit is per user, and the two connections within it are untouched.
        other_ws, welcome = await open_ws(live.ws_url, other.access_token)
        async with other_ws:
            assert welcome["user_id"] == other.user_id
        await _assert_open(first)
        await _assert_open(second)
    # Closing a connection frees its place.
    again, _ = await open_ws(live.ws_url, account.access_token)
    async with again:
        await _assert_open(again)


def _untimed(frame: dict[str, Any]) -> dict[str, Any]:
    """A server frame without its `timestamp` (when it was sent)."""
    return {key: value for key, value in frame.items() if key != "timestamp"}


ALIAS_TYPES = ("user_message", "chat_message", "message", "start_agent")
TEXT_KEYS = ("content", "message", "text", "user_request")
PLACES = ("top", "payload", "data")


def _alias_frame(kind: str, key: str, place: str, text: str) -> dict[str, Any]:
    if place == "top":
        return {"type": kind, key: text}
    return {"type": kind, place: {key: text}}


async def test_every_accepted_alias_starts_a_run(
    start_server: Callable[..., LiveServer],
) -> None:
    live = start_server(message_burst=100, messages_per_second=100)
    account = await signup(live.url)
    ws, _ = await open_ws(live.ws_url, account.access_token)
    seen: dict[str, str] = {}
    async with ws:
        for kind, key, place in itertools.product(ALIAS_TYPES, TEXT_KEYS, PLACES):
            text = f"alias {kind}/{key}/{place}: where does our token spend go?"
            await _send(ws, _alias_frame(kind, key, place, text))
            ack = await recv_json(ws)
            assert ack["type"] == "ack", (kind, key, place, ack)
            events = await collect_run(ws, ack["run_id"])
            assert violations(events) == [], (kind, key, place)
            assert events[-1]["type"] == "agent_completed"
            seen[ack["thread_id"]] = text
    async with httpx.AsyncClient(base_url=live.url, headers=_bearer(account.access_token)) as http:
        for thread_id, text in seen.items():
            page = (await http.get(f"/api/threads/{thread_id}/messages")).json()
            assert [m["role"] for m in page["messages"]] == ["user", "assistant"]
            assert page["messages"][0]["content"] == text
    assert len(seen) == len(ALIAS_TYPES) * len(TEXT_KEYS) * len(PLACES)


async def test_a_repeated_client_message_id_gets_the_same_ack_and_no_second_run(server: LiveServer) -> None:
    account = await signup(server.url)
    ws, _ = await open_ws(server.ws_url, account.access_token)
    async with ws:
        ack = await send_message(ws, "Which model costs us the most?", client_message_id="cm-1")
        events = await collect_run(ws, ack["run_id"])
        again = await send_message(ws, "Which model costs us the most?", client_message_id="cm-1")
        assert _untimed(again) == _untimed(ack)  # the same ack, sent again now
        # Even with other content, the id decides: same ack, no run.
        other = await send_message(ws, "something else entirely", client_message_id="cm-1")
        assert _untimed(other) == _untimed(ack)
        # Nothing of a second run arrives before the answer to a later frame.
        await _assert_open(ws)
    async with httpx.AsyncClient(base_url=server.url, headers=_bearer(account.access_token)) as http:
        threads = (await http.get("/api/threads")).json()["threads"]
        messages = (await http.get(f"/api/threads/{ack['thread_id']}/messages")).json()["messages"]
        run = (await http.get(f"/api/runs/{ack['run_id']}")).json()
    assert [t["id"] for t in threads] == [ack["thread_id"]]
    assert [(m["role"], m["run_id"]) for m in messages] == [
        ("user", ack["run_id"]),
        ("assistant", ack["run_id"]),
    ]
    assert messages[0]["id"] == ack["message_id"]
    assert run["last_seq"] == len(events)


async def test_the_same_client_message_id_from_two_tabs_at_once_starts_one_run(server: LiveServer) -> None:
    account = await signup(server.url)
    tab_a, _ = await open_ws(server.ws_url, account.access_token)
    tab_b, _ = await open_ws(server.ws_url, account.access_token)
    async with tab_a, tab_b:
        frame = {"type": "user_message", "content": "Cut our costs", "client_message_id": "race-1"}
        await _send(tab_a, frame)
        await _send(tab_b, frame)
        acks, early = [], []
        for tab in (tab_a, tab_b):
            # The run started by one tab may reach the other before that tab's own (repeated) ack.
            seen = []
            while (reply := await recv_json(tab))["type"] != "ack":
                seen.append(reply)
            acks.append(reply)
            early.append(seen)
        assert _untimed(acks[0]) == _untimed(acks[1])
        # Both tabs follow the one run, whichever of them started it.
        runs = []
        for tab, seen in zip((tab_a, tab_b), early, strict=True):
            if not (seen and seen[-1]["data"].get("final")):
                seen += await collect_run(tab, acks[0]["run_id"])
            runs.append(seen)
        in_a, in_b = runs
        assert in_a == in_b
        assert violations(in_a) == []
    async with httpx.AsyncClient(base_url=server.url, headers=_bearer(account.access_token)) as http:
        threads = (await http.get("/api/threads")).json()["threads"]
        messages = (await http.get(f"/api/threads/{acks[0]['thread_id']}/messages")).json()["messages"]
    assert len(threads) == 1
    assert [m["role"] for m in messages] == ["user", "assistant"]


async def test_ping_answers_pong_with_server_time(server: LiveServer) -> None:
    account = await signup(server.url)
    ws, welcome = await open_ws(server.ws_url, account.access_token)
    async with ws:
        await _send(ws, {"type": "ping"})
        pong = await recv_json(ws)
    assert set(pong) == {"type", "server_time", "timestamp"}
    assert pong["type"] == "pong"
    assert datetime.fromisoformat(pong["server_time"]) >= datetime.fromisoformat(welcome["server_time"])
    assert datetime.fromisoformat(pong["timestamp"]) >= datetime.fromisoformat(welcome["timestamp"])


async def test_get_thread_history_returns_the_user_and_assistant_messages(server: LiveServer) -> None:
    account = await signup(server.url)
    ws, _ = await open_ws(server.ws_url, account.access_token)
    async with ws:
        ack = await send_message(ws, "How much did we spend on GPT-4 last month?")
        events = await collect_run(ws, ack["run_id"])
        await _send(ws, {"type": "get_thread_history", "thread_id": ack["thread_id"]})
        history = await recv_json(ws)
        await _send(ws, {"type": "get_thread_history", "thread_id": ack["thread_id"], "limit": 1})
        latest = await recv_json(ws)
        await _send(ws, {"type": "get_thread_history", "thread_id": "no-such-thread"})
        missing = await recv_json(ws)
        await _assert_open(ws)
    assert history["type"] == "thread_history"
    assert history["thread_id"] == ack["thread_id"]
    messages = history["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"]
    for message in messages:
        assert set(message) == {"id", "role", "content", "created_at", "run_id"}
        assert message["run_id"] == ack["run_id"]
        datetime.fromisoformat(message["created_at"])
    assert messages[0]["id"] == ack["message_id"]
    assert messages[0]["content"] == "How much did we spend on GPT-4 last month?"
    answer = "".join(e["data"]["delta"] for e in events if e["type"] == "partial_result")
    assert messages[1]["content"] == answer
    assert latest["messages"] == messages[1:]
    assert missing["type"] == "error"
    assert missing["code"] == "not_found"
