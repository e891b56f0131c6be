"""Doctor fixtures: a user on the module's server, and nginx in front of a server."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from support.clients import Account, signup
from support.live import LiveServer
from support.nginx import Nginx, Proxy


@pytest.fixture(scope="module")
def account(server: LiveServer) -> Account:
    """A user on the module's server."""
    return asyncio.run(signup(server.url))


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[Callable[..., Nginx]]:
    """Start nginx with `routes` ({prefix: upstream URL}) and a `Proxy` behaviour; stopped after the test."""
    started: list[Nginx] = []

    def start(routes: dict[str, str], behaviour: Proxy | None = None) -> Nginx:
        nginx = Nginx(tmp_path / f"nginx{len(started)}", routes, behaviour).start()
        started.append(nginx)
        return nginx

    yield start
    for nginx in started:
        nginx.stop()
