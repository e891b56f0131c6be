"""Real clients for tests: sign up over HTTP, connect over WebSocket, collect a run's events."""

from __future__ import annotations

import asyncio
import json
import ssl
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from tokenwise.session.handshake import SUBPROTOCOL, encode_subprotocol_token


@dataclass
class Account:
    user_id: str
    email: str
    password: str
    access_token: str
    refresh_token: str


async def signup(
    base_url: str, *, email: str | None = None, password: str = "correct-horse-1", ca: Path | None = None
) -> Account:
    """Register a fresh user and sign in (`ca`: the CA to trust for an https server with a private CA)."""
    email = email or f"user-{uuid.uuid4().hex[:10]}@example.com"
    verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=str(ca)) if ca else True
    async with httpx.AsyncClient(base_url=base_url, timeout=30, verify=verify) as http:
        created = await http.post("/auth/register", json={"email": email, "password": password})
        assert created.status_code == 201, created.text
        login = await http.post("/auth/login", json={"email": email, "password": password})
        assert login.status_code == 200, login.text
        body = login.json()
    return Account(body["user"]["id"], email, password, body["access_token"], body["refresh_token"])


async def ticket_for(base_url: str, token: str) -> str:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        response = await http.post("/api/ws/ticket", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.text
        ticket: str = response.json()["ticket"]
        return ticket


async def open_ws(
    ws_url: str, token: str, method: str = "header", *, base_url: str | None = None, **kwargs: Any
) -> tuple[ClientConnection, dict[str, Any]]:
    """Connect with one credential method and read the welcome frame."""
    url, headers, subprotocols = ws_url, dict(kwargs.pop("additional_headers", {})), None
    if method == "header":
        headers["Authorization"] = f"Bearer {token}"
    elif method == "subprotocol":
        subprotocols = [SUBPROTOCOL, encode_subprotocol_token(token)]  # type: ignore[list-item]
    elif method == "ticket":
        assert base_url is not None
        url = f"{ws_url}?ticket={await ticket_for(base_url, token)}"
    ws = await connect(url, additional_headers=headers, subprotocols=subprotocols, open_timeout=30, **kwargs)
    if method == "first_message":
        await ws.send(json.dumps({"type": "auth", "token": token}))
    welcome = json.loads(await asyncio.wait_for(ws.recv(), 30))
    assert welcome["type"] == "connection_established", welcome
    return ws, welcome


async def recv_json(ws: ClientConnection, timeout: float = 30.0) -> dict[str, Any]:
    frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout))
    return frame


async def send_message(
    ws: ClientConnection, content: str = "How do I cut my LLM costs by 30%?", **fields: Any
) -> dict[str, Any]:
    """Send a user message and return its ack."""
    await ws.send(json.dumps({"type": "user_message", "content": content, **fields}))
    while True:
        frame = await recv_json(ws)
        if frame["type"] == "ack":
            return frame


async def collect_run(ws: ClientConnection, run_id: str, *, timeout: float = 30.0) -> list[dict[str, Any]]:
    """Read frames until the run's final event; return that run's events in arrival order."""
    events: list[dict[str, Any]] = []
    while True:
        frame = await recv_json(ws, timeout)
        if frame.get("run_id") == run_id and "seq" in frame:
            events.append(frame)
            if frame.get("data", {}).get("final"):
                return events
