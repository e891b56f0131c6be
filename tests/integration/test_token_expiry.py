"""An access token expiring on a live connection: `token_expired` then 4401, unless refreshed in time."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosedError

from support.clients import open_ws, recv_json, signup
from support.live import LiveServer

# Token times have whole-second precision, so a 3 s token lives between 2 and 3 s: room to connect.
TTL_S = 3


def _claims(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


async def _sleep_until(epoch_s: float) -> None:
    await asyncio.sleep(max(0.0, epoch_s - time.time()))


async def _expect_expiry(ws: ClientConnection, expires_at: float) -> None:
    """The next frame is `token_expired`, sent at the token's expiry, then the close 4401."""
    frame = await recv_json(ws, TTL_S + 5)
    arrived = time.time()
    assert frame["type"] == "error", frame
    assert frame["code"] == "token_expired"
    assert expires_at - 0.1 <= arrived <= expires_at + 2
    with pytest.raises(ConnectionClosedError) as caught:
        await asyncio.wait_for(ws.recv(), 5)
    assert caught.value.rcvd is not None
    assert caught.value.rcvd.code == 4401
    assert caught.value.rcvd.reason == "token_expired"


async def _ping(ws: ClientConnection) -> None:
    await ws.send(json.dumps({"type": "ping"}))
    frame = await recv_json(ws, 5)
    assert frame["type"] == "pong", frame


async def test_every_credential_method_is_closed_when_the_token_expires(
    start_server: Callable[..., LiveServer],
) -> None:
    live = start_server(access_token_ttl_s=TTL_S)
    account = await signup(live.url)
    expires_at = _claims(account.access_token)["exp"]
    connections = [
        (await open_ws(live.ws_url, account.access_token, method, base_url=live.url))[0]
        for method in ("header", "subprotocol", "ticket", "first_message")
    ]
    assert time.time() < expires_at, "connecting took longer than the token lived"
    await asyncio.gather(*(_expect_expiry(ws, expires_at) for ws in connections))
    async with httpx.AsyncClient(base_url=live.url) as http:
        metrics = (await http.get("/metrics")).text
    assert 'tokenwise_ws_closes_total{code="4401"} 4.0' in metrics


async def test_auth_refresh_keeps_the_connection_open_past_the_original_expiry(
    start_server: Callable[..., LiveServer],
) -> None:
    live = start_server(access_token_ttl_s=TTL_S)
    account = await signup(live.url)
    first = _claims(account.access_token)
    ws, _ = await open_ws(live.ws_url, account.access_token)
    async with ws, httpx.AsyncClient(base_url=live.url) as http:
        # Wait for the next whole second so that the new token really outlives the first one.
        await _sleep_until(first["iat"] + 1.05)
        refreshed = await http.post("/auth/refresh", json={"refresh_token": account.refresh_token})
        new_token = refreshed.json()["access_token"]
        second = _claims(new_token)
        assert second["exp"] > first["exp"]

        await ws.send(json.dumps({"type": "auth_refresh", "token": new_token}))
        ack = await recv_json(ws, 5)
        assert ack.pop("timestamp")  # every server frame carries one
        assert ack == {
            "type": "auth_refreshed",
            "expires_at": datetime.fromtimestamp(second["exp"], UTC).isoformat(),
        }

        await _sleep_until(first["exp"] + 0.4)
        assert time.time() < second["exp"]
        await _ping(ws)  # still open past the first token's expiry, with nothing in between

        # The new expiry is enforced in its turn.
        await _expect_expiry(ws, second["exp"])


async def test_auth_refresh_with_a_token_from_login_is_accepted(server: LiveServer) -> None:
    account = await signup(server.url)
    ws, _ = await open_ws(server.ws_url, account.access_token)
    async with ws, httpx.AsyncClient(base_url=server.url) as http:
        login = await http.post("/auth/login", json={"email": account.email, "password": account.password})
        await ws.send(json.dumps({"type": "auth_refresh", "token": login.json()["access_token"]}))
        frame = await recv_json(ws, 5)
        assert frame["type"] == "auth_refreshed"
        assert (
            frame["expires_at"]
            == datetime.fromtimestamp(_claims(login.json()["access_token"])["exp"], UTC).isoformat()
        )


@pytest.mark.parametrize("whose", ["another-user", "garbage"])
async def test_rejected_auth_refresh_sends_an_error_and_keeps_the_connection(
    server: LiveServer, whose: str
) -> None:
    account = await signup(server.url)
    token = (await signup(server.url)).access_token if whose == "another-user" else "not-a-jwt"
    ws, welcome = await open_ws(server.ws_url, account.access_token)
    async with ws:
        await ws.send(json.dumps({"type": "auth_refresh", "token": token}))
        frame = await recv_json(ws, 5)
        assert frame["type"] == "error", frame
        assert frame["code"] == "unauthenticated"
        assert frame["reason"] == ("user_mismatch" if whose == "another-user" else "malformed")
        await _ping(ws)
    assert welcome["user_id"] == account.user_id
