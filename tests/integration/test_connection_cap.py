"""The cap on open connections per client address, against the real server over real sockets: the one
over it gets a 503 and is closed, for a plain request and a WebSocket upgrade alike; a WebSocket holds its
slot while it is open; closing a connection frees its slot."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from contextlib import ExitStack

import pytest
from websockets.asyncio.client import ClientConnection

from support.clients import open_ws, signup
from support.live import LiveServer

CAP = 5
UPGRADE = (
    "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
HEALTH = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def _open(server: LiveServer) -> socket.socket:
    return socket.create_connection((server.settings.host, server.settings.port), timeout=5)


def _ask(sock: socket.socket, request: str) -> bytes:
    """Send a request and read its response (head and a body of content-length bytes)."""
    sock.sendall(request.encode())
    answer = b""
    while b"\r\n\r\n" not in answer and (chunk := sock.recv(65536)):
        answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":")[1])
            for line in head.lower().split(b"\r\n")
            if line.startswith(b"content-length")
        ),
        0,
    )
    while len(body) < length and (chunk := sock.recv(65536)):
        body += chunk
    return head + b"\r\n\r\n" + body


def _closed_by_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def _held(server: LiveServer) -> int:
    """The server's own count of this address's open connections (to wait for, not to assert on)."""
    return int(server.server.config.http_protocol_class.slots.held("127.0.0.1"))


def _wait_held(server: LiveServer, expected: int) -> None:
    deadline = time.monotonic() + 5
    while _held(server) != expected:
        assert time.monotonic() < deadline, f"{_held(server)} connections open, expected {expected}"
        time.sleep(0.02)


@pytest.fixture
def capped(start_server: Callable[..., LiveServer]) -> LiveServer:
    server = start_server(max_connections_per_address=CAP)
    _wait_held(server, 0)
    return server


def test_connections_over_the_cap_get_503_and_are_closed(capped: LiveServer) -> None:
    with ExitStack() as stack:
        held = [stack.enter_context(_open(capped)) for _ in range(CAP)]
        for sock in held:  # keep-alive connections that have been served: each is counted
            assert _ask(sock, HEALTH).startswith(b"HTTP/1.1 200"), "a connection under the cap is served"
        _wait_held(capped, CAP)

        for request in (HEALTH, UPGRADE):
            with _open(capped) as extra:
                answer = _ask(extra, request)
                head, _, body = answer.partition(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 503"), answer
                assert b"connection: close" in head.lower(), answer
                assert b"at most 5" in body, answer
                assert _closed_by_server(extra)

        held.pop(0).close()  # one closes: its slot is free for the next
        _wait_held(capped, CAP - 1)
        with _open(capped) as next_one:
            assert _ask(next_one, HEALTH).startswith(b"HTTP/1.1 200")


def test_a_refused_client_that_sends_nothing_still_gets_its_answer(capped: LiveServer) -> None:
    with ExitStack() as stack:
        for _ in range(CAP):
            assert _ask(stack.enter_context(_open(capped)), HEALTH).startswith(b"HTTP/1.1 200")
        with _open(capped) as extra:
            extra.settimeout(5)
            answer = extra.recv(65536)
            assert answer.startswith(b"HTTP/1.1 503"), answer
            assert _closed_by_server(extra)


def test_a_websocket_holds_its_slot_until_it_closes(capped: LiveServer) -> None:
    account = asyncio.run(signup(capped.url))
    _wait_held(capped, 0)

    async def scenario() -> None:
        sockets: list[ClientConnection] = []
        for _ in range(CAP):
            ws, _welcome = await open_ws(capped.ws_url, account.access_token)
            sockets.append(ws)
        assert _held(capped) == CAP
        with _open(capped) as extra:
            assert (await asyncio.to_thread(_ask, extra, HEALTH)).startswith(b"HTTP/1.1 503")
        await sockets.pop().close()
        await asyncio.to_thread(_wait_held, capped, CAP - 1)
        ws, _welcome = await open_ws(capped.ws_url, account.access_token)  # the freed slot
        sockets.append(ws)
        for ws in sockets:
            await ws.close()
        await asyncio.to_thread(_wait_held, capped, 0)

    asyncio.run(scenario())


def test_no_cap_when_set_to_zero(start_server: Callable[..., LiveServer]) -> None:
    server = start_server(max_connections_per_address=0)
    with ExitStack() as stack:
        for _ in range(CAP * 4):
            assert _ask(stack.enter_context(_open(server)), HEALTH).startswith(b"HTTP/1.1 200")
