"""WebSocket credentials: each of the four methods connects, and every documented rejection has its code."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosedError, InvalidStatus

from support.clients import Account, open_ws, recv_json, signup, ticket_for
from support.live import LiveServer
from tokenwise.security.keys import KeyRing, generate_key_file
from tokenwise.security.tokens import TokenIssuer
from tokenwise.session.handshake import encode_subprotocol_token


async def _refused(url: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    """Open a handshake that must be denied; the HTTP status and the JSON error."""
    with pytest.raises(InvalidStatus) as caught:
        async with connect(url, open_timeout=10, **kwargs):
            pass
    response = caught.value.response
    assert response.headers["Content-Type"] == "application/json"
    error: dict[str, Any] = json.loads(response.body or b"{}")["error"]
    assert error["message"]
    return response.status_code, error


async def _closed_after_accept(ws: ClientConnection, timeout: float = 10) -> ConnectionClosedError:
    """Wait for the server to close an accepted connection; return the close exception."""
    with pytest.raises(ConnectionClosedError) as caught:
        await asyncio.wait_for(ws.recv(), timeout)
    return caught.value


async def _pong(ws: ClientConnection) -> None:
    await ws.send(json.dumps({"type": "ping"}))
    frame = await recv_json(ws, 10)
    assert frame["type"] == "pong", frame


@pytest.fixture
async def account(server: LiveServer) -> Account:
    return await signup(server.url)


# ---- the four methods ------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["header", "subprotocol", "ticket", "first_message"])
async def test_each_credential_method_connects(server: LiveServer, account: Account, method: str) -> None:
    ws, welcome = await open_ws(server.ws_url, account.access_token, method, base_url=server.url)
    async with ws:
        assert welcome["user_id"] == account.user_id
        assert welcome["protocol_version"] == 1
        await _pong(ws)


@pytest.mark.parametrize("token_first", [False, True], ids=["jwt-auth-first", "token-first"])
async def test_subprotocol_selects_jwt_auth_and_never_echoes_the_token(
    server: LiveServer, account: Account, token_first: bool
) -> None:
    offer = ["jwt-auth", encode_subprotocol_token(account.access_token)]
    if token_first:
        offer.reverse()
    async with connect(server.ws_url, subprotocols=offer, open_timeout=10) as ws:  # type: ignore[arg-type]
        assert ws.subprotocol == "jwt-auth"
        assert ws.response is not None
        assert ws.response.headers.get_all("Sec-WebSocket-Protocol") == ["jwt-auth"]
        for _name, value in ws.response.headers.raw_items():
            assert account.access_token not in value
            assert encode_subprotocol_token(account.access_token) not in value
        welcome = await recv_json(ws)
        assert welcome["user_id"] == account.user_id


async def test_ticket_endpoint_returns_a_short_lived_ticket_and_the_url(
    server: LiveServer, account: Account
) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.post(
            "/api/ws/ticket", headers={"Authorization": f"Bearer {account.access_token}"}
        )
        unauthenticated = await http.post("/api/ws/ticket")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"ticket", "expires_at", "websocket_url"}
    lifetime = datetime.fromisoformat(body["expires_at"]) - datetime.now(UTC)
    assert timedelta(seconds=0) < lifetime <= timedelta(seconds=60)
    assert body["websocket_url"] == server.ws_url
    assert unauthenticated.status_code == 401

    async with connect(f"{body['websocket_url']}?ticket={body['ticket']}", open_timeout=10) as ws:
        assert (await recv_json(ws))["user_id"] == account.user_id


async def test_alias_path_accepts_credentials(server: LiveServer, account: Account) -> None:
    alias = server.ws_url.removesuffix("/ws") + "/api/v1/websocket"
    ws, welcome = await open_ws(alias, account.access_token)
    async with ws:
        assert welcome["user_id"] == account.user_id


# ---- rejected in the handshake: HTTP 401 / 403 with a JSON error -----------------------------------


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _foreign_token(tmp_path: Path, server: LiveServer, user_id: str) -> str:
    """A well-formed token for a real user, signed by a key the server never published."""
    generate_key_file(tmp_path / "foreign-keys")
    ring = KeyRing.from_directory(tmp_path / "foreign-keys", generate=False)
    settings = server.settings
    issuer = TokenIssuer(ring, issuer=settings.jwt_issuer, audience=settings.jwt_audience, ttl_s=60)
    return issuer.issue(user_id)[0]


@pytest.mark.parametrize(
    ("authorization", "reason"),
    [
        pytest.param("Bearer not-a-jwt", "malformed", id="garbage"),
        pytest.param("Bearer ", "malformed", id="empty"),
        pytest.param("Basic dXNlcjpwYXNz", "malformed", id="not-bearer"),
    ],
)
async def test_bad_authorization_header_is_refused_with_401(
    server: LiveServer, authorization: str, reason: str
) -> None:
    status, error = await _refused(server.ws_url, additional_headers={"Authorization": authorization})
    assert status == 401
    assert error["code"] == "unauthenticated"
    assert error["reason"] == reason


async def test_expired_bearer_is_refused_with_token_expired(server: LiveServer, account: Account) -> None:
    expired, _ = server.services.issuer.issue(account.user_id, ttl_s=-5)
    status, error = await _refused(server.ws_url, additional_headers=_bearer(expired))
    assert status == 401
    assert error["code"] == "token_expired"


async def test_tampered_bearer_is_refused(server: LiveServer, account: Account) -> None:
    header, payload, signature = account.access_token.split(".")
    flipped = signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")
    status, error = await _refused(server.ws_url, additional_headers=_bearer(f"{header}.{payload}.{flipped}"))
    assert status == 401
    assert error["code"] == "unauthenticated"


async def test_wrong_audience_is_refused(server: LiveServer, account: Account) -> None:
    key = server.services.keyring.signing
    now = datetime.now(UTC)
    claims = {
        "iss": server.settings.jwt_issuer,
        "aud": "another-service",
        "sub": account.user_id,
        "iat": now,
        "exp": now + timedelta(minutes=5),
        "jti": "j",
    }
    token = jwt.encode(claims, key.private_key, algorithm="ES256", headers={"kid": key.kid})
    status, error = await _refused(server.ws_url, additional_headers=_bearer(token))
    assert (status, error["reason"]) == (401, "audience_mismatch")


async def test_token_from_another_key_ring_is_unknown_key(
    server: LiveServer, account: Account, tmp_path: Path
) -> None:
    token = _foreign_token(tmp_path, server, account.user_id)
    status, error = await _refused(server.ws_url, additional_headers=_bearer(token))
    assert status == 401
    assert error["reason"] == "unknown_key"


@pytest.mark.parametrize("key", ["token", "access_token", "jwt"])
async def test_raw_jwt_in_the_query_string_is_refused(server: LiveServer, account: Account, key: str) -> None:
    status, error = await _refused(f"{server.ws_url}?{key}={account.access_token}")
    assert status == 401
    assert error["code"] == "unauthenticated"
    assert error["reason"] == "token_in_url"
    assert account.access_token not in json.dumps(error)


async def test_jwt_subprotocol_without_jwt_auth_is_refused(server: LiveServer, account: Account) -> None:
    offer = [encode_subprotocol_token(account.access_token)]
    status, error = await _refused(server.ws_url, subprotocols=offer)
    assert status == 401
    assert error["reason"] == "malformed"
    assert "jwt-auth" in error["message"]


async def test_jwt_subprotocol_that_is_not_base64url_is_refused(server: LiveServer) -> None:
    status, error = await _refused(server.ws_url, subprotocols=["jwt-auth", "jwt.a"])
    assert (status, error["reason"]) == (401, "malformed")
    assert "base64url" in error["message"]


async def test_ticket_is_single_use(server: LiveServer, account: Account) -> None:
    ticket = await ticket_for(server.url, account.access_token)
    async with connect(f"{server.ws_url}?ticket={ticket}", open_timeout=10) as ws:
        assert (await recv_json(ws))["type"] == "connection_established"
    status, error = await _refused(f"{server.ws_url}?ticket={ticket}")
    assert status == 401
    assert error["reason"] == "ticket_invalid"


async def test_unknown_ticket_is_refused(server: LiveServer) -> None:
    status, error = await _refused(f"{server.ws_url}?ticket=made-up")
    assert (status, error["reason"]) == (401, "ticket_invalid")


async def test_expired_ticket_is_refused(start_server: Callable[..., LiveServer]) -> None:
    live = start_server(ws_ticket_ttl_s=1)
    account = await signup(live.url)
    ticket = await ticket_for(live.url, account.access_token)
    await asyncio.sleep(1.2)
    status, error = await _refused(f"{live.ws_url}?ticket={ticket}")
    assert (status, error["reason"]) == (401, "ticket_invalid")


# ---- origins ---------------------------------------------------------------------------------------


async def test_same_origin_is_allowed_and_other_origins_get_403(server: LiveServer, account: Account) -> None:
    ws, _ = await open_ws(server.ws_url, account.access_token, origin=server.url)
    await ws.close()
    status, error = await _refused(
        server.ws_url, additional_headers=_bearer(account.access_token), origin="https://evil.example"
    )
    assert status == 403
    assert error["code"] == "forbidden"


async def test_configured_origin_is_allowed(start_server: Callable[..., LiveServer]) -> None:
    live = start_server(allowed_origins="https://app.example")
    account = await signup(live.url)
    ws, welcome = await open_ws(live.ws_url, account.access_token, origin="https://app.example")
    async with ws:
        assert welcome["user_id"] == account.user_id
    status, _ = await _refused(
        live.ws_url, additional_headers=_bearer(account.access_token), origin="https://evil.example"
    )
    assert status == 403


# ---- first-message auth: accepted, then closed with 4401 -------------------------------------------


async def test_no_credentials_and_no_auth_message_closes_4401_after_the_timeout(
    start_server: Callable[..., LiveServer],
) -> None:
    live = start_server(auth_timeout_s=1)
    async with connect(live.ws_url, open_timeout=10) as ws:
        started = time.monotonic()
        closed = await _closed_after_accept(ws)
        waited = time.monotonic() - started
    assert closed.rcvd is not None
    assert closed.rcvd.code == 4401
    assert closed.rcvd.reason.startswith("auth_timeout")
    assert 0.8 < waited < 5


@pytest.mark.parametrize(
    "first",
    [
        pytest.param(json.dumps({"type": "auth", "token": "not-a-jwt"}), id="garbage-token"),
        pytest.param(json.dumps({"type": "ping"}), id="not-an-auth-frame"),
        pytest.param("{not json", id="invalid-json"),
        pytest.param(json.dumps({"type": "auth"}), id="no-token"),
    ],
)
async def test_bad_first_message_closes_4401_with_a_reason(server: LiveServer, first: str) -> None:
    async with connect(server.ws_url, open_timeout=10) as ws:
        await ws.send(first)
        closed = await _closed_after_accept(ws)
    assert closed.rcvd is not None
    assert closed.rcvd.code == 4401
    assert closed.rcvd.reason


async def test_expired_first_message_token_closes_4401(server: LiveServer, account: Account) -> None:
    expired, _ = server.services.issuer.issue(account.user_id, ttl_s=-5)
    async with connect(server.ws_url, open_timeout=10) as ws:
        await ws.send(json.dumps({"type": "auth", "token": expired}))
        closed = await _closed_after_accept(ws)
    assert closed.rcvd is not None
    assert closed.rcvd.code == 4401
    assert closed.rcvd.reason.startswith("token_expired")


# ---- metrics ---------------------------------------------------------------------------------------


async def test_ws_health_counts_authentication_failures_by_reason(
    start_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    live = start_server(auth_timeout_s=1)
    account = await signup(live.url)
    await _refused(live.ws_url, additional_headers=_bearer("not-a-jwt"))
    await _refused(live.ws_url, additional_headers=_bearer("still-not-a-jwt"))
    await _refused(f"{live.ws_url}?token={account.access_token}")
    await _refused(live.ws_url, additional_headers=_bearer(_foreign_token(tmp_path, live, account.user_id)))
    await _refused(f"{live.ws_url}?ticket=made-up")
    expired, _ = live.services.issuer.issue(account.user_id, ttl_s=-5)
    await _refused(live.ws_url, additional_headers=_bearer(expired))
    async with connect(live.ws_url, open_timeout=10) as ws:
        await _closed_after_accept(ws)
    ws, _ = await open_ws(live.ws_url, account.access_token)
    await ws.close()

    async with httpx.AsyncClient(base_url=live.url) as http:
        health = (await http.get("/ws/health")).json()
    assert health["service"] == "websocket"
    authentication = health["metrics"]["authentication"]
    assert authentication["failures_by_reason"] == {
        "malformed": 2,
        "token_in_url": 1,
        "unknown_key": 1,
        "ticket_invalid": 1,
        "expired": 1,
        "auth_timeout": 1,
    }
    assert authentication["success_rate"] == round(1 / 8, 4)
