"""Redirects go to the configured public URL, never to the Host header a client sent (raw requests)."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import pytest

from support.live import LiveServer, test_settings

PUBLIC = "https://chat.example.com"


def _raw_get(live: LiveServer, path: str, host: str) -> tuple[str, dict[str, str]]:
    with socket.create_connection(("127.0.0.1", live.settings.port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    status, *lines = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    return status, {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}


@pytest.fixture(scope="module")
def public(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(test_settings(tmp_path_factory.mktemp("public"), public_url=PUBLIC)).start()
    yield live
    live.stop()


@pytest.mark.parametrize(
    ("path", "target"),
    [
        ("/api/threads/", "/api/threads"),  # Starlette's trailing-slash redirect
        ("/auth/login/", "/auth/login"),
        ("/health/?x=1", "/health?x=1"),
        ("/static", "/static/"),  # the static files' mount
    ],
)
@pytest.mark.parametrize("host", ["evil.example", "evil.example:8080", "EVIL.example"])
def test_a_redirect_goes_to_the_public_url(public: LiveServer, path: str, target: str, host: str) -> None:
    status, headers = _raw_get(public, path, host)
    assert status.split()[1] in ("301", "302", "307", "308"), status
    assert headers["location"] == PUBLIC + target, headers
    assert "evil" not in headers["location"].lower()


def test_without_a_public_url_it_is_the_servers_own_address(start_server: Callable[..., LiveServer]) -> None:
    live = start_server()
    status, headers = _raw_get(live, "/api/threads/", "evil.example")
    assert status.split()[1] == "307", status
    assert headers["location"] == f"{live.settings.resolved_public_url}/api/threads"
