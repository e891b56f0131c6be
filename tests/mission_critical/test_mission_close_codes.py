"""Every way a connection is refused or closed carries a documented status or close code."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from mission_critical.deployment import (
    DOCUMENTED_CLOSE_CODES,
    PROTOCOL_DOC,
    SERVER_CLOSE_CODES,
    Connections,
    Target,
)
from support.clients import Account


def test_every_close_code_the_server_defines_is_documented() -> None:
    assert sorted(SERVER_CLOSE_CODES - DOCUMENTED_CLOSE_CODES) == [], f"missing from {PROTOCOL_DOC}"


async def test_failed_first_message_auth_closes_4401_with_a_reason(target: Target) -> None:
    async with connect(target.ws_url, open_timeout=30) as ws:
        await ws.send(json.dumps({"type": "auth", "token": "not-a-jwt"}))
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 30)
    assert ws.close_code == 4401
    assert ws.close_reason.startswith("unauthenticated")


async def test_a_frame_over_the_limit_closes_1009(account: Account, connections: Connections) -> None:
    ws, welcome = await connections.open(account)
    await ws.send("x" * (welcome["max_message_bytes"] + 1))
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(ws.recv(), 30)
    assert ws.close_code == 1009


@pytest.mark.parametrize(
    ("query", "headers"),
    [
        ("?token=abc.def.ghi", {}),  # a raw token in the URL is refused
        ("", {"Authorization": "Bearer not-a-jwt"}),
        ("?ticket=never-issued", {}),
    ],
)
async def test_bad_handshake_credentials_are_refused_with_401_json(
    target: Target, query: str, headers: dict[str, str]
) -> None:
    with pytest.raises(InvalidStatus) as denied:
        await connect(target.ws_url + query, additional_headers=headers, open_timeout=30)
    response = denied.value.response
    assert response.status_code == 401
    error = json.loads(response.body)["error"]
    assert error["code"] == "unauthenticated"
    assert error["message"]


async def test_a_client_close_is_answered_with_1000(account: Account, connections: Connections) -> None:
    ws, _ = await connections.open(account, "ticket")
    await ws.close()
    assert ws.close_code == 1000
