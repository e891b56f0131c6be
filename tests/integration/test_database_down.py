"""PostgreSQL goes away under a live server: `service_unavailable` + close 1013 (not 1011), then recovery."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from support.clients import collect_run, open_ws, recv_json, send_message, signup, ticket_for
from support.live import LiveServer
from support.servers import PostgresServer
from tokenwise.session.contract import violations

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


async def _message_fails_with_1013(ws: ClientConnection) -> dict[str, object]:
    """Send a user message; return the error frame, after checking that the server then closed 1013."""
    await ws.send(json.dumps({"type": "user_message", "content": "Is anyone there?"}))
    error = await recv_json(ws, timeout=20)
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(ws.recv(), 20)
    assert ws.close_code == 1013, (ws.close_code, ws.close_reason)
    assert ws.close_reason.startswith("service_unavailable")
    return error


async def test_database_down_gives_service_unavailable_then_recovers(
    start_server: Callable[..., LiveServer], postgres_server: PostgresServer, postgres_url: str
) -> None:
    live = start_server(database_url=postgres_url)
    account = await signup(live.url)
    bearer = {"Authorization": f"Bearer {account.access_token}"}
    ticket = await ticket_for(live.url, account.access_token)  # redeemed while the database is down
    ws, _ = await open_ws(live.ws_url, account.access_token)
    ack = await send_message(ws, client_message_id="before-outage")
    assert violations(await collect_run(ws, ack["run_id"])) == []  # the pool holds live connections now

    postgres_server.stop(mode="immediate")
    try:
        error = await _message_fails_with_1013(ws)
        assert error["type"] == "error"
        assert error["code"] == "service_unavailable"
        assert isinstance(error["retry_after_s"], int | float)
        assert error["retry_after_s"] > 0
        assert error["dependency"] == "database"

        async with httpx.AsyncClient(base_url=live.url, timeout=20) as http:
            ready = await http.get("/health/ready")
            assert ready.status_code == 503, ready.text
            assert ready.json()["failing"] == ["database"]
            assert ready.json()["checks"]["database"]["status"] == "failing"
            assert (await http.get("/health")).status_code == 200  # alive, just not ready
            for response in [
                await http.post("/api/ws/ticket", headers=bearer),
                await http.get("/api/threads", headers=bearer),
                await http.post("/auth/login", json={"email": account.email, "password": account.password}),
            ]:
                assert response.status_code == 503, response.text
                assert response.json()["error"]["code"] == "service_unavailable"
                assert int(response.headers["Retry-After"]) >= 1

        # A ticket needs the database to be redeemed: the upgrade is refused cleanly, with JSON.
        with pytest.raises(InvalidStatus) as denied:
            await connect(f"{live.ws_url}?ticket={ticket}", open_timeout=20)
        assert denied.value.response.status_code == 503
        assert json.loads(denied.value.response.body)["error"]["code"] == "service_unavailable"

        # A bearer token is verified without the database: the connection opens, the message fails.
        ws, welcome = await open_ws(live.ws_url, account.access_token, "subprotocol")
        assert welcome["user_id"] == account.user_id
        assert (await _message_fails_with_1013(ws))["code"] == "service_unavailable"
    finally:
        postgres_server.start()

    async with httpx.AsyncClient(base_url=live.url, timeout=20) as http:
        ready = await http.get("/health/ready")
        assert ready.status_code == 200, ready.text
    ws, _ = await open_ws(live.ws_url, account.access_token, "ticket", base_url=live.url)
    async with ws:
        ack = await send_message(ws, client_message_id="after-outage")
        events = await collect_run(ws, ack["run_id"])
    assert violations(events) == []
    assert events[-1]["type"] == "agent_completed"
