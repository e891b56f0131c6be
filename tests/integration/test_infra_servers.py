"""The real-server test infrastructure itself works (tests/support/servers.py, tests/conftest.py)."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import asyncpg
import pytest
import redis.asyncio as aioredis

from support.servers import PostgresServer, RedisServer, free_port, to_asyncpg_dsn


async def _fetchval(url: str, sql: str) -> object:
    conn = await asyncpg.connect(to_asyncpg_dsn(url))
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


@pytest.mark.postgres
async def test_postgres_url_is_a_fresh_database_reachable_with_asyncpg(postgres_url: str) -> None:
    parts = urlsplit(postgres_url)
    assert parts.scheme == "postgresql+asyncpg"
    assert parts.hostname == "127.0.0.1"
    dbname = parts.path.lstrip("/")
    assert await _fetchval(postgres_url, "SELECT current_database()") == dbname
    assert await _fetchval(postgres_url, "SELECT 6 * 7") == 42
    tables = await _fetchval(
        postgres_url, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
    )
    assert tables == 0


@pytest.mark.postgres
async def test_each_test_gets_its_own_database(postgres_server: PostgresServer, postgres_url: str) -> None:
    assert postgres_url != postgres_server.url
    assert urlsplit(postgres_url).port == postgres_server.port


@pytest.mark.postgres
@pytest.mark.parametrize("how", ["immediate", "fast", "kill"])
async def test_postgres_survives_stop_and_start(
    postgres_server: PostgresServer, postgres_url: str, how: str
) -> None:
    conn = await asyncpg.connect(to_asyncpg_dsn(postgres_url))
    await conn.execute("CREATE TABLE survivor (v int); INSERT INTO survivor VALUES (1)")

    if how == "kill":
        postgres_server.kill()
    else:
        postgres_server.stop(mode="immediate" if how == "immediate" else "fast")
    assert not postgres_server.is_running()

    # "Database down" as the app sees it: open connections break, new ones are refused.
    with pytest.raises((asyncpg.PostgresConnectionError, asyncpg.InterfaceError, ConnectionError)):
        await conn.fetchval("SELECT 1")
    await conn.close()
    with pytest.raises(ConnectionRefusedError):
        await asyncpg.connect(to_asyncpg_dsn(postgres_url), timeout=5)

    postgres_server.start()
    assert postgres_server.is_running()
    # Same URL works again and committed data survived (crash recovery after immediate/kill).
    assert await _fetchval(postgres_url, "SELECT sum(v) FROM survivor") == 1


@pytest.mark.redis
async def test_redis_ping_set_get(redis_server: RedisServer) -> None:
    assert redis_server.url.startswith("redis://127.0.0.1:")
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        assert await client.ping() is True
        await client.set("tokenwise:infra", "ok", ex=60)
        assert await client.get("tokenwise:infra") == b"ok"
    finally:
        await client.aclose()


def test_free_port_is_bindable() -> None:
    import socket

    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_tokenwise_env_is_cleared() -> None:
    assert not [k for k in os.environ if k.startswith("TOKENWISE_") or k == "PORT"]
