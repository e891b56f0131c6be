"""Integration fixtures: a real server on a free loopback port, real SQLite in a temporary directory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from support.live import LiveServer, ServerProcess, test_settings
from tokenwise.db.migrate import upgrade


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server with default settings, shared by a test module (tests sign up their own users)."""
    live = LiveServer(test_settings(tmp_path_factory.mktemp("server"))).start()
    yield live
    live.stop()


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    """Start a server with setting overrides, e.g. `start_server(access_token_ttl_s=2)`; stopped after."""
    started: list[LiveServer] = []

    def start(**overrides: Any) -> LiveServer:
        data_dir = overrides.pop("data_dir", tmp_path / f"server{len(started)}")
        live = LiveServer(test_settings(data_dir, **overrides)).start()
        started.append(live)
        return live

    yield start
    for live in started:
        live.stop()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[list[ServerProcess]]:
    """Server processes of one test (see `support.live.spawn`), sharing one database migrated here in
    `tmp_path`; every one is killed afterwards, whatever happened."""
    upgrade(f"sqlite+aiosqlite:///{(tmp_path / 'tokenwise.db').resolve()}")
    started: list[ServerProcess] = []
    yield started
    for process in started:
        process.stop()
