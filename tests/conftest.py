"""Generic test infrastructure fixtures. Logic lives in tests/support; keep this file small."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from support.servers import PostgresServer, RedisServer, start_or_fail


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings come from TOKENWISE_* / PORT: never let the shell or another test leak them in."""
    for name in list(os.environ):
        if name.startswith("TOKENWISE_") or name == "PORT":
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL for the whole session (tests may stop()/kill() and start() it)."""
    server = start_or_fail(PostgresServer)
    yield server
    server.close()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """SQLAlchemy URL (postgresql+asyncpg://...) of a fresh, empty database for this test."""
    postgres_server.start()  # no-op normally; revives the server if an earlier test left it down
    name = postgres_server.create_database()
    yield postgres_server.url_for(name)
    postgres_server.start()
    postgres_server.drop_database(name)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One real redis-server for the whole session; ``.url`` is redis://127.0.0.1:PORT/0."""
    server = start_or_fail(RedisServer)
    yield server
    server.close()
