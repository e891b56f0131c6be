"""Handshake races seen behind cloud load balancers: bursts of connects, and messages sent at once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from support.clients import Account, collect_run, open_ws, recv_json, signup, ticket_for
from support.live import LiveServer
from tokenwise.session.contract import violations
from tokenwise.session.handshake import SUBPROTOCOL, encode_subprotocol_token

METHODS = ("header", "subprotocol", "ticket", "first_message")
PER_USER = 20  # the default max_connections_per_user


async def _ping(ws: ClientConnection) -> dict[str, Any]:
    await ws.send(json.dumps({"type": "ping"}))
    return await recv_json(ws)


async def _ws_health(server: LiveServer) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.url) as http:
        body: dict[str, Any] = (await http.get("/ws/health")).json()
    return body


async def test_two_hundred_connections_opened_at_once_all_get_their_welcome(server: LiveServer) -> None:
    accounts = await asyncio.gather(*(signup(server.url) for _ in range(200 // PER_USER)))
    plan = [(accounts[i % len(accounts)], METHODS[i % len(METHODS)]) for i in range(200)]
    opened = await asyncio.gather(
        *(open_ws(server.ws_url, a.access_token, method=m, base_url=server.url) for a, m in plan),
        return_exceptions=True,
    )
    failures = [result for result in opened if isinstance(result, BaseException)]
    connections = [result for result in opened if not isinstance(result, BaseException)]
    try:
        assert failures == []
        welcomes = [welcome for _, welcome in connections]
        assert [w["user_id"] for w in welcomes] == [a.user_id for a, _ in plan]
        assert len({w["connection_id"] for w in welcomes}) == 200
        assert all(w["protocol_version"] == 1 for w in welcomes)
        assert (await _ws_health(server))["metrics"]["websocket"]["active_connections"] >= 200
        pongs = await asyncio.gather(*(_ping(ws) for ws, _ in connections))
        assert {p["type"] for p in pongs} == {"pong"}
    finally:
        await asyncio.gather(*(ws.close() for ws, _ in connections))
    # Every one of them was released: a user can open their full allowance again.
    again = await asyncio.gather(*(open_ws(server.ws_url, accounts[0].access_token) for _ in range(PER_USER)))
    await asyncio.gather(*(ws.close() for ws, _ in again))


async def _raw_connect(server: LiveServer, account: Account, method: str) -> ClientConnection:
    """Open the socket with one credential method without reading anything yet."""
    url, headers, subprotocols = server.ws_url, {}, None
    if method == "header":
        headers["Authorization"] = f"Bearer {account.access_token}"
    elif method == "subprotocol":
        subprotocols = [SUBPROTOCOL, encode_subprotocol_token(account.access_token)]
    elif method == "ticket":
        url = f"{url}?ticket={await ticket_for(server.url, account.access_token)}"
    return await connect(
        url,
        additional_headers=headers,
        subprotocols=subprotocols,  # type: ignore[arg-type]
        open_timeout=30,
        max_queue=None,
    )


async def _message_at_welcome(server: LiveServer, account: Account, method: str, index: int) -> None:
    ws = await _raw_connect(server, account, method)
    async with ws:
        if method == "first_message":
            await ws.send(json.dumps({"type": "auth", "token": account.access_token}))
        welcome = json.loads(await asyncio.wait_for(ws.recv(), 30))
        assert welcome["type"] == "connection_established", welcome
        await ws.send(
            json.dumps(
                {"type": "user_message", "content": f"race {index}", "client_message_id": f"r-{index}"}
            )
        )
        # Other tabs of the same user run at the same time: their events may come first, never instead.
        while (frame := await recv_json(ws))["type"] != "ack" or frame["client_message_id"] != f"r-{index}":
            assert frame["type"] != "error", frame
        events = await collect_run(ws, frame["run_id"])
    assert violations(events) == [], (method, index)


async def test_a_message_sent_the_instant_the_welcome_arrives_is_never_lost(server: LiveServer) -> None:
    # Five runs at once per user at most (TOKENWISE_MAX_ACTIVE_RUNS_PER_USER): 10 users x 5 tabs.
    accounts = await asyncio.gather(*(signup(server.url) for _ in range(10)))
    await asyncio.gather(
        *(
            _message_at_welcome(server, accounts[i % len(accounts)], METHODS[i % len(METHODS)], i)
            for i in range(50)
        )
    )


async def test_a_message_pipelined_right_behind_the_auth_frame_is_never_lost(server: LiveServer) -> None:
    """First-message auth: the client sends auth and its question together, before any welcome."""
    accounts = await asyncio.gather(signup(server.url), signup(server.url))  # 5 runs at once each

    async def pipelined(index: int) -> None:
        account = accounts[index % 2]
        ws = await _raw_connect(server, account, "first_message")
        async with ws:
            await ws.send(json.dumps({"type": "auth", "token": account.access_token}))
            await ws.send(json.dumps({"type": "user_message", "content": f"pipelined {index}"}))
            welcome = await recv_json(ws)
            assert welcome["type"] == "connection_established"
            while (frame := await recv_json(ws))["type"] != "ack":
                assert "seq" in frame, frame  # only other tabs' run events may come first
            events = await collect_run(ws, frame["run_id"])
        assert violations(events) == []

    await asyncio.gather(*(pipelined(i) for i in range(10)))


async def test_connections_dropped_during_the_handshake_leave_nothing_behind(
    start_server: Callable[..., LiveServer],
) -> None:
    live = start_server(max_connections_per_user=5)
    account = await signup(live.url)

    async def drop_right_away(method: str) -> None:
        ws = await _raw_connect(live, account, method)
        ws.transport.abort()  # gone before the welcome, or before the first-message auth
        await ws.close()

    for _ in range(4):
        await asyncio.gather(*(drop_right_away(METHODS[i % len(METHODS)]) for i in range(20)))
    for _ in range(200):
        health = await _ws_health(live)
        if health["metrics"]["websocket"]["active_connections"] == 0:
            break
        await asyncio.sleep(0.05)
    assert health["metrics"]["websocket"]["active_connections"] == 0
    # 80 abandoned connections and the user's 5 places are all free again; the server still serves.
    opened = await asyncio.gather(*(open_ws(live.ws_url, account.access_token) for _ in range(5)))
    try:
        assert {(await _ping(ws))["type"] for ws, _ in opened} == {"pong"}
    finally:
        await asyncio.gather(*(ws.close() for ws, _ in opened))
