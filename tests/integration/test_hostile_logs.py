"""No credential in any log line: a server process at log level info, credentials put in URLs every way."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import httpx
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from support.clients import signup, ticket_for
from support.live import ServerProcess, wait_healthy

JWT = re.compile(r"eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+")


class InfoServerProcess(ServerProcess):
    """A server process that logs at info: the access log and the WebSocket lines included."""

    def start(self, *, wait: bool = True) -> ServerProcess:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tokenwise", "serve", "--log-level", "info"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_healthy(self.url)
        return self


def _ws_attempt(url: str) -> None:
    try:
        with connect(url, open_timeout=10) as ws:
            ws.recv(timeout=10)
    except (InvalidStatus, OSError, TimeoutError):
        pass


def test_credentials_in_urls_never_reach_the_log(tmp_path: Path) -> None:
    server = InfoServerProcess(tmp_path).start()
    try:
        account = asyncio.run(signup(server.url, password="the-password-1"))
        ticket = asyncio.run(ticket_for(server.url, account.access_token))
        token, refresh = account.access_token, account.refresh_token
        bearer = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=server.url, timeout=10) as http:
            for name in ("token", "access_token", "jwt", "auth"):
                http.get(f"/api/threads?{name}={token}")
                http.get(f"/api/threads?{name}={token}", headers=bearer)
            http.post(f"/auth/refresh?refresh_token={refresh}", json={"refresh_token": refresh})
            http.post(f"/auth/login?password={account.password}&email={account.email}", json={})
            http.get(f"/api/runs/x/events?ticket={ticket}&after_seq=0", headers=bearer)
        for query in (f"token={token}", f"access_token={token}", f"ticket={ticket}", "ticket=forged-ticket"):
            _ws_attempt(f"{server.ws_url}?{query}")
        fresh = asyncio.run(ticket_for(server.url, token))
        _ws_attempt(f"{server.ws_url}?ticket={fresh}")  # accepted: the line says so, without the ticket
    finally:
        server.terminate()
    log = server.log()
    assert '"GET /api/threads?token=[redacted]' in log  # the access log is on, and redacted
    assert "WebSocket /ws?ticket=[redacted]" in log
    assert not JWT.findall(log)
    for secret in (token, refresh, ticket, fresh, account.password, "forged-ticket"):
        assert secret not in log
