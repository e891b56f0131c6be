"""A deleted account's still-valid token is refused with 401 everywhere, never 500 or 1011."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from support.clients import signup, ticket_for
from support.live import LiveServer
from tokenwise.services.active_users import CACHE_TTL_S


def _delete_user(live: LiveServer, user_id: str) -> None:
    path = live.settings.data_dir / "tokenwise.db"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA foreign_keys=ON")
        assert db.execute("DELETE FROM users WHERE id = ?", (user_id,)).rowcount == 1


def test_a_deleted_users_token_is_401_everywhere(server: LiveServer) -> None:
    account = asyncio.run(signup(server.url))
    token = account.access_token
    ticket = asyncio.run(ticket_for(server.url, token))
    bearer = {"Authorization": f"Bearer {token}"}
    live_ws = connect(server.ws_url, additional_headers=bearer, legacy=True)
    assert json.loads(live_ws.recv(timeout=10))["type"] == "connection_established"
    _delete_user(server, account.user_id)
    time.sleep(CACHE_TTL_S + 0.2)

    with httpx.Client(base_url=server.url, headers=bearer, timeout=10) as http:
        answers = {
            "threads": http.get("/api/threads"),
            "new thread": http.post("/api/threads", json={}),
            "ticket": http.post("/api/ws/ticket"),
            "workload events": http.post("/api/workload/events", json={"records": [{"input_tokens": 1}]}),
            "datasets": http.get("/api/datasets"),
            "me": http.get("/auth/me"),
        }
    for name, response in answers.items():
        assert response.status_code == 401, (name, response.status_code, response.text)
        assert response.json()["error"]["reason"] in ("user_gone", "unknown_user"), (name, response.text)

    with pytest.raises(InvalidStatus) as refused:
        connect(server.ws_url, additional_headers=bearer, legacy=True)
    assert refused.value.response.status_code == 401

    with pytest.raises(InvalidStatus) as refused:
        connect(f"{server.ws_url}?ticket={ticket}", legacy=True)
    assert refused.value.response.status_code == 401

    with connect(server.ws_url) as ws:
        ws.send(json.dumps({"type": "auth", "token": token}))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4401

    live_ws.send(json.dumps({"type": "user_message", "content": "still there?"}))
    error = json.loads(live_ws.recv(timeout=10))
    assert (error["type"], error["code"]) == ("error", "unauthenticated")
    with pytest.raises(ConnectionClosed) as closed:
        live_ws.recv(timeout=10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4401
    assert "no longer exists" in closed.value.rcvd.reason
