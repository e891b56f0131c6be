"""A client that stops reading is closed with 4408 `slow_consumer` within a bounded time, its connection
slot is freed, and it can resume afterwards (a real server, a real client that stops reading)."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Callable

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from support.clients import collect_run, open_ws, send_message, signup
from support.live import LiveServer


async def test_a_client_that_stops_reading_is_closed_and_can_resume(
    start_server: Callable[..., LiveServer],
) -> None:
    server = start_server(
        ws_send_buffer_bytes=16 * 1024,
        ws_slow_consumer_s=1.0,
        # the server runs in this process: under its load this client drains what it is owed slowly
        ws_close_grace_s=60.0,
        messages_per_second=200,
        message_burst=400,
        max_active_runs_per_user=1000,
        runs_per_minute_per_user=100_000,  # the runs follow one another until the slow reader is closed
    )
    account = await signup(server.url)
    count = server.services.connections.count

    # A client whose socket takes in little, and whose library stops reading after one queued frame; it
    # follows every run of its user, which another connection (a normal reader) starts one after another.
    sock = socket.create_connection(("127.0.0.1", server.settings.port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sock.setblocking(False)
    slow, _ = await open_ws(server.ws_url, account.access_token, sock=sock, max_queue=1)
    driver, _ = await open_ws(server.ws_url, account.access_token)
    question = "How do I cut my LLM costs? " + "x" * 30_000  # each run: about 100 KB of events
    started, runs, stop = time.monotonic(), [], asyncio.Event()

    async def start_runs() -> None:
        while not stop.is_set() and time.monotonic() - started < 60:
            runs.append((await send_message(driver, question))["run_id"])

    async with driver:
        sender = asyncio.create_task(start_runs())
        # watched apart from the sender: the close is noticed at once, well inside the server's grace
        while count(account.user_id) == 2 and time.monotonic() - started < 60 and not sender.done():
            await asyncio.sleep(0.02)
        closed_after = time.monotonic() - started
        stop.set()
        # reading again at once: what was sent before the close, then the close frame itself
        with pytest.raises(ConnectionClosed) as closed:
            await _read_all(slow)
        await sender
        assert count(account.user_id) == 1, len(runs)  # the slow one's slot is free
        assert closed_after < 20, (closed_after, len(runs))
        await collect_run(driver, runs[-1], timeout=60)
    assert closed.value.rcvd is not None, closed.value
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4408, "slow_consumer")

    again, _ = await open_ws(server.ws_url, account.access_token)
    async with again:
        await again.send(json.dumps({"type": "resume", "run_id": runs[0], "after_seq": 0}))
        replayed = await collect_run(again, runs[0], timeout=30)
    assert replayed[0]["seq"] == 1
    assert replayed[-1]["type"] == "agent_completed"


async def _read_all(ws: ClientConnection) -> None:
    while True:
        await asyncio.wait_for(ws.recv(), 10)
