"""Which server the deployment-capable suites talk to: the in-process server, or `TOKENWISE_E2E_URL`.

Shared by tests/mission_critical and tests/e2e. The variables are read when this module is imported
(collection time): the autouse fixture of tests/conftest.py clears every TOKENWISE_* variable before
each test, so a test itself would never see them.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection

from support.clients import Account, open_ws
from support.live import LiveServer, test_settings
from tokenwise import errors

E2E_URL = (os.environ.get("TOKENWISE_E2E_URL") or "").rstrip("/") or None
E2E_EMAIL = os.environ.get("TOKENWISE_E2E_EMAIL") or None
E2E_PASSWORD = os.environ.get("TOKENWISE_E2E_PASSWORD") or None

PROTOCOL_DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
# The close codes the server defines (tokenwise.errors), each of which the protocol document must list.
SERVER_CLOSE_CODES = frozenset(
    value for name, value in vars(errors).items() if name.startswith("CLOSE_") and isinstance(value, int)
)


def documented_close_codes(document: Path = PROTOCOL_DOC) -> frozenset[int]:
    """The codes in the first column of the "Close codes" table of docs/protocol.md."""
    section = document.read_text().partition("\n## Close codes")[2].partition("\n## ")[0]
    codes: set[int] = set()
    for line in section.splitlines():
        cells = line.split("|")
        if line.startswith("|") and len(cells) > 2:
            codes.update(int(code) for code in re.findall(r"\b\d{4}\b", cells[1]))
    return frozenset(codes)


DOCUMENTED_CLOSE_CODES = documented_close_codes()
# 1005/1006 mean no close frame at all, 1011 a genuine bug: the golden path must never see them.
GOLDEN_PATH_CLOSE_CODES = DOCUMENTED_CLOSE_CODES - {1005, 1006, errors.CLOSE_INTERNAL_ERROR}


@dataclass(frozen=True)
class Target:
    """A server to test, and an existing user on it."""

    url: str  # base URL, e.g. https://staging.example
    email: str
    password: str
    external: bool  # True: a running deployment (TOKENWISE_E2E_URL); False: started by the tests

    @property
    def ws_url(self) -> str:
        return "ws" + self.url.removeprefix("http") + "/ws"

    async def login(self, email: str | None = None, password: str | None = None) -> Account:
        """Sign in (the target's user by default) and return fresh tokens."""
        email, password = email or self.email, password or self.password
        async with httpx.AsyncClient(base_url=self.url, timeout=30) as http:
            response = await http.post("/auth/login", json={"email": email, "password": password})
        assert response.status_code == 200, f"login of {email} at {self.url}: {response.text}"
        body = response.json()
        return Account(body["user"]["id"], email, password, body["access_token"], body["refresh_token"])

    async def new_account(self) -> Account:
        """Register a fresh user and sign in (on a deployment too: it must allow registration)."""
        email, password = register(self.url)
        return await self.login(email, password)


def register(url: str) -> tuple[str, str]:
    """Register a fresh user at `url`; its (email, password)."""
    email, password = f"mc-{uuid.uuid4().hex[:12]}@example.com", f"mc-{uuid.uuid4().hex}"
    response = httpx.post(f"{url}/auth/register", json={"email": email, "password": password}, timeout=30)
    assert response.status_code == 201, f"register at {url}: {response.status_code} {response.text}"
    return email, password


def serve_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """The body of a session `target` fixture: the deployment when configured, else an in-process server."""
    if E2E_URL is not None:
        if E2E_EMAIL and E2E_PASSWORD:
            yield Target(E2E_URL, E2E_EMAIL, E2E_PASSWORD, external=True)
        else:
            yield Target(E2E_URL, *register(E2E_URL), external=True)
        return
    # Session fixtures are set up before the per-test environment clean-up: clear it here too.
    with pytest.MonkeyPatch.context() as env:
        for name in list(os.environ):
            if name.startswith("TOKENWISE_") or name == "PORT":
                env.delenv(name)
        live = LiveServer(test_settings(tmp_path_factory.mktemp("target"))).start()
    try:
        yield Target(live.url, *register(live.url), external=False)
    finally:
        live.stop()


class Connections:
    """Opens WebSockets to the target and remembers each one, to check every close code observed."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.opened: list[ClientConnection] = []
        self.dropped: list[ClientConnection] = []  # cut by the test itself: no close code to check

    async def open(self, account: Account, method: str = "header") -> tuple[ClientConnection, dict[str, Any]]:
        ws, welcome = await open_ws(
            self.target.ws_url, account.access_token, method, base_url=self.target.url
        )
        self.opened.append(ws)
        return ws, welcome

    async def drop(self, ws: ClientConnection) -> None:
        """Cut the connection the way a network failure does: no close frame."""
        self.dropped.append(ws)
        ws.transport.abort()
        await ws.wait_closed()

    async def close_all(self) -> None:
        for ws in self.opened:
            await ws.close()

    def undocumented_closes(self) -> list[tuple[int | None, str | None]]:
        """(code, reason) of every closed connection whose code the golden path must never see."""
        return [
            (ws.close_code, ws.close_reason)
            for ws in self.opened
            if ws not in self.dropped and ws.close_code not in GOLDEN_PATH_CLOSE_CODES
        ]
