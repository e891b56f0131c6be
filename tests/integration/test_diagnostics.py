"""The server's diagnostics: the echo of a request and of a WebSocket handshake (never a secret), a reason
on every close, and the test-only fault injection that takes the path of a real bug (1011 + error id)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from support.clients import open_ws, recv_json, signup
from support.live import LiveServer, ServerProcess
from tokenwise.config import Settings
from tokenwise.session.handshake import encode_subprotocol_token

ECHO = "/api/diagnostics/echo"


async def test_the_echo_needs_a_token(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.get(ECHO)
    assert response.status_code == 401
    assert response.json()["error"]["reason"] == "missing"


async def test_the_echo_reports_what_arrived_and_never_a_secret(server: LiveServer) -> None:
    account = await signup(server.url)
    headers = {
        "Authorization": f"Bearer {account.access_token}",
        "Cookie": "session=s3cr3t-cookie; theme=dark",
        "Origin": "https://app.example",
        "Via": "1.1 edge-proxy",
        "X-Forwarded-For": "203.0.113.7",
        "X-Real-IP": "203.0.113.7",
        "Sec-WebSocket-Protocol": f"jwt-auth, {encode_subprotocol_token(account.access_token)}",
        "X-Custom": "kept as sent",
    }
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.get(ECHO, params={"ticket": "t1cket-secret", "page": "2"}, headers=headers)

    assert response.status_code == 200, response.text
    carried = encode_subprotocol_token(account.access_token)[len("jwt.") :]
    for secret in (account.access_token, carried, "s3cr3t-cookie", "t1cket-secret"):
        assert secret not in response.text
    echo = response.json()
    assert (echo["method"], echo["path"], echo["scheme"]) == ("GET", ECHO, "http")
    # The client as the application sees it: uvicorn applies X-Forwarded-For from a trusted (loopback) peer.
    assert echo["client"].startswith("203.0.113.7:")
    assert echo["credentials"]["authorization"] == {
        "present": True,
        "scheme": "Bearer",
        "length": len(account.access_token),
    }
    assert echo["credentials"]["cookie"] == {"present": True, "count": 2, "length": len(headers["Cookie"])}
    assert echo["credentials"]["ticket"] == {"present": True, "length": len("t1cket-secret")}
    assert echo["credentials"]["subprotocol_token"]["present"] is True
    assert echo["subprotocols"] == ["jwt-auth", "jwt.[redacted]"]
    assert echo["headers"]["authorization"] == "[redacted]"
    assert echo["headers"]["cookie"] == "[redacted]"
    assert echo["headers"]["origin"] == "https://app.example"
    assert echo["headers"]["x-custom"] == "kept as sent"
    assert echo["query"] == {"ticket": "[redacted]", "page": "2"}
    assert echo["proxy_headers"] == {
        "via": "1.1 edge-proxy",
        "x-forwarded-for": "203.0.113.7",
        "x-real-ip": "203.0.113.7",
    }


@pytest.mark.parametrize("method", ["header", "subprotocol", "ticket", "first_message"])
async def test_the_diagnostics_frame_echoes_the_handshake(server: LiveServer, method: str) -> None:
    account = await signup(server.url)
    ws, _welcome = await open_ws(
        server.ws_url,
        account.access_token,
        method,
        base_url=server.url,
        additional_headers={"Origin": server.url},
    )
    async with ws:
        await ws.send(json.dumps({"type": "diagnostics"}))
        raw = await asyncio.wait_for(ws.recv(), 10)
    reply = json.loads(raw)

    assert account.access_token not in str(raw)
    assert reply["type"] == "diagnostics"
    assert reply["credential_method"] == method
    handshake = reply["handshake"]
    assert handshake["path"] == "/ws"
    assert handshake["scheme"] == "ws"
    assert handshake["headers"]["upgrade"] == "websocket"
    assert "upgrade" in handshake["headers"]["connection"].lower()
    assert handshake["headers"]["origin"] == server.url
    credentials = handshake["credentials"]
    assert credentials["authorization"]["present"] is (method == "header")
    assert credentials["subprotocol_token"]["present"] is (method == "subprotocol")
    assert credentials["ticket"]["present"] is (method == "ticket")
    if method == "subprotocol":
        assert handshake["subprotocols"] == ["jwt-auth", "jwt.[redacted]"]
        assert (
            credentials["subprotocol_token"]["length"]
            == len(encode_subprotocol_token(account.access_token)) - 4
        )
    if method == "ticket":
        assert handshake["query"] == {"ticket": "[redacted]"}


async def test_a_close_reason_is_cut_to_123_bytes_not_characters(server: LiveServer) -> None:
    # A 4401 reason quotes the client's frame type; in multi-byte characters it used to overflow the
    # close frame (and turn into a 1011).
    async with connect(server.ws_url) as ws:
        await ws.send(json.dumps({"type": "é" * 100}))
        with pytest.raises(ConnectionClosed) as closed:
            await recv_json(ws, 10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4401
    reason = closed.value.rcvd.reason
    assert reason.startswith("unauthenticated: unknown message type 'éé")
    assert len(reason.encode()) <= 123


@pytest.mark.slow
async def test_a_shutdown_closes_a_connection_still_authenticating_with_a_reason(tmp_path: Path) -> None:
    process = ServerProcess(tmp_path, TOKENWISE_SHUTDOWN_GRACE_S="1").start()
    try:
        async with connect(process.ws_url) as ws:  # no credential: the server waits for an auth frame
            await asyncio.sleep(0.2)
            assert process.process is not None
            process.process.send_signal(signal.SIGTERM)
            frames = []
            with contextlib.suppress(ConnectionClosed):
                while True:
                    frames.append(await recv_json(ws, 10))
        assert [frame["type"] for frame in frames] == ["server_shutdown"]
        assert ws.close_code == 1012
        assert ws.close_reason == "server_shutdown"
    finally:
        process.stop()


async def test_an_injected_fault_closes_with_1011_and_logs_its_error_id(
    start_server: Callable[..., LiveServer], caplog: pytest.LogCaptureFixture
) -> None:
    live = start_server(fault_injection="message_handling")
    account = await signup(live.url)
    ws, _welcome = await open_ws(live.ws_url, account.access_token)
    with caplog.at_level(logging.ERROR, logger="tokenwise.websocket"):
        async with ws:
            await ws.send(json.dumps({"type": "user_message", "content": "hello"}))
            with pytest.raises(ConnectionClosed):
                await recv_json(ws, 10)
        await asyncio.sleep(0.1)
    assert ws.close_code == 1011
    reason = ws.close_reason or ""
    assert reason.startswith("internal_error:")
    error_id = reason.partition(":")[2]
    logged = [record for record in caplog.records if f"[error_id={error_id}]" in record.getMessage()]
    assert logged, [record.getMessage() for record in caplog.records]
    assert logged[0].exc_info is not None
    assert "InjectedFault" in repr(logged[0].exc_info[1])


def test_fault_injection_is_refused_in_production() -> None:
    with pytest.raises(ValueError, match="TOKENWISE_FAULT_INJECTION is for tests"):
        Settings(environment="production", fault_injection="message_handling")  # type: ignore[arg-type]
    assert Settings(fault_injection="message_handling").fault_injection == "message_handling"  # type: ignore[arg-type]
