"""tokenwise.client: pure parts with plain calls, the connection against a scripted real WebSocket server."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest
from rich.console import Console
from websockets.asyncio.server import ServerConnection, serve
from websockets.typing import Subprotocol

from tokenwise.cli.chat import Conversation, RunView, summarize
from tokenwise.client import (
    Client,
    ConnectionClosed,
    Event,
    HandshakeRejected,
    Method,
    ProtocolViolation,
    ServerError,
    Tokens,
    Unreachable,
    User,
    connect,
    ws_url_for,
)
from tokenwise.client.errors import error_body
from tokenwise.client.load import Tally, error_key, percentile
from tokenwise.session.handshake import SUBPROTOCOL

WELCOME = {
    "type": "connection_established",
    "connection_id": "c1",
    "user_id": "u1",
    "server_time": "2025-01-01T00:00:00.000Z",
    "protocol_version": 1,
    "heartbeat_interval_s": 20.0,
    "max_message_bytes": 65536,
}


def event(run_id: str, seq: int, type: str = "agent_thinking", **data: Any) -> dict[str, Any]:
    return {
        "type": type,
        "run_id": run_id,
        "thread_id": "t1",
        "seq": seq,
        "event_id": f"{run_id}:{seq}",
        "timestamp": "2025-01-01T00:00:00.000Z",
        "agent_name": "supervisor",
        "data": data,
    }


def final(run_id: str, seq: int) -> dict[str, Any]:
    return event(run_id, seq, "agent_completed", final=True, result={"title": "Report"})


Script = Callable[[ServerConnection], Awaitable[None]]


def _first_offered(_ws: ServerConnection, offered: Sequence[Subprotocol]) -> Subprotocol | None:
    return offered[0] if offered else None


@asynccontextmanager
async def scripted(script: Script) -> AsyncIterator[str]:
    """A real WebSocket server on a free port: sends the welcome, then runs `script`."""

    async def handler(ws: ServerConnection) -> None:
        await ws.send(json.dumps(WELCOME))
        await script(ws)

    async with serve(handler, "127.0.0.1", 0, select_subprotocol=_first_offered) as server:
        port = server.sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}/ws"


# ---- pure parts ----------------------------------------------------------------------------------------
def test_ws_url_for_maps_scheme_and_keeps_a_path_prefix() -> None:
    assert ws_url_for("http://127.0.0.1:8000") == "ws://127.0.0.1:8000/ws"
    assert ws_url_for("https://chat.example.com/tokenwise/") == "wss://chat.example.com/tokenwise/ws"


def test_error_body_reads_the_json_error_and_tolerates_anything_else() -> None:
    assert error_body(b'{"error": {"code": "invalid_credentials", "message": "no"}}') == (
        "invalid_credentials",
        "no",
    )
    assert error_body(b"<html>Bad Gateway</html>") == ("error", "<html>Bad Gateway</html>")


def test_event_final_is_only_the_supervisors_last_event() -> None:
    assert Event.from_frame(final("r", 9)).final
    assert not Event.from_frame(event("r", 3, "agent_completed")).final
    assert Event.from_frame(event("r", 1)).time is not None


def test_tokens_from_login_body() -> None:
    tokens = Tokens.from_json(
        {
            "access_token": "a",
            "refresh_token": "r",
            "token_type": "Bearer",
            "expires_in": 900,
            "user": {"id": "u", "email": "e@example.com", "name": None},
        }
    )
    assert (tokens.access_token, tokens.expires_in, tokens.user.email) == ("a", 900, "e@example.com")


def test_tally_counts_lost_duplicated_and_reordered_events() -> None:
    tally = Tally()
    tally.check_run([1, 2, 3, 4])
    tally.check_run([1, 2, 2, 4, 3, 6])  # 2 twice, 3 late, 5 missing
    assert (tally.runs, tally.events) == (2, 10)
    assert (tally.lost, tally.duplicated, tally.reordered) == (1, 1, 1)


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert [percentile(values, p) for p in (50, 95, 99, 100)] == [50.0, 95.0, 99.0, 100.0]


def test_errors_are_counted_by_close_code_or_status() -> None:
    assert error_key(ConnectionClosed(4429, "too many")) == "close 4429"
    assert error_key(HandshakeRejected("no", status=401, code="unauthenticated")) == "http 401"
    assert error_key(ServerError("rate_limited", "slow down", {})) == "error rate_limited"
    assert error_key(TimeoutError()) == "timeout"


def test_summarize_keeps_tool_arguments_on_one_bounded_line() -> None:
    assert summarize({"category": "cost", "rows": 0}, 80) == "category='cost', rows=0"
    assert summarize({"fields": list(range(30))}, 80) == "fields=[30 items]"
    assert len(summarize({"text": "x" * 500, "more": {"a": 1}}, 40)) == 40


# ---- the connection, against a real server ---------------------------------------------------------------
async def test_send_message_acks_and_events_of_another_run_do_not_leak_in() -> None:
    async def script(ws: ServerConnection) -> None:
        message = json.loads(await ws.recv())
        ack = {"type": "ack", "client_message_id": message["client_message_id"], "message_id": "m"}
        await ws.send(json.dumps({**ack, "thread_id": "t1", "run_id": "mine"}))
        for frame in (
            event("other", 1),
            event("mine", 1),
            event("other", 2),
            {"type": "pong"},
            final("mine", 2),
        ):
            await ws.send(json.dumps(frame))
        await ws.wait_closed()

    async with scripted(script) as url:
        conn = await connect(url, "token")
        async with conn:
            assert conn.welcome.user_id == "u1"
            ack = await conn.send_message("hello")
            seqs = [e.seq async for e in conn.events(ack.run_id)]
        assert ack.run_id == "mine"
        assert seqs == [1, 2]
        assert conn.ignored_events == 2  # another tab's run: not followed here, not buffered


async def test_resume_asks_for_events_after_a_seq() -> None:
    async def script(ws: ServerConnection) -> None:
        frame = json.loads(await ws.recv())
        assert frame == {"type": "resume", "run_id": "r", "after_seq": 3}
        for seq in (4, 5):
            await ws.send(json.dumps(event("r", seq)))
        await ws.send(json.dumps(final("r", 6)))
        await ws.wait_closed()

    async with scripted(script) as url, await connect(url, "token") as conn:
        assert [e.seq async for e in conn.resume("r", 3)] == [4, 5, 6]


async def test_an_error_frame_raises_server_error_and_a_close_raises_with_its_code() -> None:
    async def script(ws: ServerConnection) -> None:
        await ws.recv()
        await ws.send(
            json.dumps({"type": "error", "code": "rate_limited", "message": "slow", "retry_after_s": 1})
        )
        await ws.recv()
        await ws.close(4401, "token_expired")

    async with scripted(script) as url, await connect(url, "token") as conn:
        with pytest.raises(ServerError) as error:
            await conn.send_message("one")
        assert (error.value.code, error.value.details) == ("rate_limited", {"retry_after_s": 1})
        with pytest.raises(ConnectionClosed) as closed:
            await conn.send_message("two")
        assert (closed.value.code, closed.value.reason) == (4401, "token_expired")


async def test_credentials_travel_as_the_method_says() -> None:
    seen: list[dict[str, Any]] = []

    async def script(ws: ServerConnection) -> None:
        seen.append(
            {
                "authorization": ws.request.headers.get("Authorization") if ws.request else None,
                "subprotocol": ws.subprotocol,
                "path": ws.request.path if ws.request else None,
            }
        )
        await ws.wait_closed()

    async with scripted(script) as url:
        for method in ("header", "subprotocol"):
            conn = await connect(url, "tok", method)
            await conn.close()
        conn = await connect(url, "tok", "ticket", ticket="tkt")
        await conn.close()
    assert seen[0]["authorization"] == "Bearer tok"
    assert seen[1]["subprotocol"] == SUBPROTOCOL
    assert seen[1]["authorization"] is None
    assert seen[2]["path"] == "/ws?ticket=tkt"


async def test_a_first_frame_that_is_not_the_welcome_is_a_protocol_violation() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send(json.dumps({"type": "pong"}))
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(ProtocolViolation):
            await connect(f"ws://127.0.0.1:{port}/ws", "token")


async def test_nobody_listening_is_unreachable() -> None:
    async with serve(lambda _ws: None, "127.0.0.1", 0) as server:  # type: ignore[arg-type,return-value]
        port = server.sockets[0].getsockname()[1]
    with pytest.raises(Unreachable) as error:
        await connect(f"ws://127.0.0.1:{port}/ws", "token")
    assert "connection refused" in error.value.message


async def test_chat_follows_a_run_across_a_server_restart_without_gaps_or_repeats() -> None:
    connections: list[int] = []

    async def script(ws: ServerConnection) -> None:
        connections.append(1)
        if len(connections) == 1:
            message = json.loads(await ws.recv())
            ack = {"type": "ack", "client_message_id": message["client_message_id"], "message_id": "m"}
            await ws.send(json.dumps({**ack, "thread_id": "t1", "run_id": "r"}))
            for seq in (1, 2, 3):
                await ws.send(json.dumps(event("r", seq)))
            await ws.close(1012, "server_shutdown")
        else:
            assert json.loads(await ws.recv()) == {"type": "resume", "run_id": "r", "after_seq": 3}
            for seq in (3, 4):  # a repeat across the reconnect must not be shown twice
                await ws.send(json.dumps(event("r", seq)))
            await ws.send(json.dumps(final("r", 5)))
            await ws.wait_closed()

    async with scripted(script) as url, Client(url.replace("ws://", "http://").removesuffix("/ws")) as client:
        client.tokens = Tokens("token", "refresh", 900, User("u1", "u@example.com", None))
        shown: list[int] = []
        view = RunView(Console(file=io.StringIO()))
        view.show = lambda e: shown.append(e.seq)  # type: ignore[method-assign]
        async with Conversation(client, Method.HEADER) as conversation:
            assert conversation.conn is not None
            ack = await conversation.conn.send_message("hello")
            last = await conversation.follow(ack.run_id, view)
    assert shown == [1, 2, 3, 4, 5]
    assert last.final
    assert len(connections) == 2
