"""Migration 0009 on SQLite and PostgreSQL: thread ids a client chooses (up to 128 characters) and the
agent a run stops after are stored, and the migration goes down and up again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from alembic import command

from support.clients import signup
from support.live import LiveServer
from tokenwise.db.migrate import alembic_config, upgrade

LONGEST = "t" * 120 + ":a_b.c-d"  # 128 characters, every kind a client may use


async def _run_in_a_thread_of_our_own(live: LiveServer) -> None:
    account = await signup(live.url)
    headers = {"Authorization": f"Bearer {account.access_token}"}
    async with httpx.AsyncClient(base_url=live.url, headers=headers, timeout=30) as http:
        body = {"message": "How many requests did we make?", "thread_id": LONGEST}
        accepted = await http.post("/api/agents/triage", json=body)
        assert accepted.status_code == 202, accepted.text
        assert accepted.json()["thread_id"] == LONGEST
        deadline = time.monotonic() + 30
        while (run := (await http.get(f"/api/runs/{accepted.json()['run_id']}")).json())["status"] in (
            "queued",
            "running",
        ):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        thread = (await http.get(f"/api/threads/{LONGEST}")).json()
    assert run["status"] == "completed"
    assert run["thread_id"] == LONGEST
    assert run["report"]["agent"]["name"] == "triage"
    assert thread["id"] == LONGEST


def _down_and_up(url: str) -> None:
    upgrade(url)
    # Alembic's environment runs its own event loop: not in the test's.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(command.downgrade, alembic_config(url), "0008").result()
    upgrade(url)


async def test_sqlite(start_server: Callable[..., LiveServer], tmp_path: Path) -> None:
    _down_and_up(f"sqlite+aiosqlite:///{(tmp_path / 'down-up.db').resolve()}")
    await _run_in_a_thread_of_our_own(start_server())


@pytest.mark.postgres
async def test_postgres(start_server: Callable[..., LiveServer], postgres_url: str) -> None:
    _down_and_up(postgres_url)
    live = start_server(database_url=postgres_url)
    assert live.services.db.is_sqlite is False
    await _run_in_a_thread_of_our_own(live)
