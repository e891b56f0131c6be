"""SQLite's write-ahead log is checkpointed by a thread of its own (db/checkpoint.py), not inside the
commits every transaction waits for: the log stays bounded and everything committed is in the file."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from sqlalchemy import text

from tokenwise.db import checkpoint
from tokenwise.db.database import Database
from tokenwise.db.direct import Direct
from tokenwise.db.migrate import upgrade


async def test_the_log_is_checkpointed_off_the_commits_and_stays_bounded(tmp_path: Path) -> None:
    path = tmp_path / "checkpoints.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    db = Database(f"sqlite+aiosqlite:///{path}")
    try:
        async with db.session() as session:
            # the server's connection never checkpoints by itself
            assert (await session.execute(text("PRAGMA wal_autocheckpoint"))).scalar() == 0
            await session.execute(text("PRAGMA foreign_keys=OFF"))
        body = "x" * 1000
        wal = path.with_name(path.name + "-wal")
        rows = 0
        while _size(wal) <= checkpoint.MAX_WAL_BYTES and rows < 100_000:  # past the thread's bound
            async with Direct(db).transaction() as tx:
                batch = [{"r": f"r{rows + i}", "b": body} for i in range(200)]
                await tx.executemany(
                    "INSERT INTO run_events (run_id, seq, type, body) VALUES (:r, 1, 't', :b)", batch
                )
            rows += len(batch)
        # the thread finds the log too long and has it start over, cut back (the writes go on meanwhile)
        deadline = time.monotonic() + 10
        while _size(wal) > checkpoint.MAX_WAL_BYTES and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            async with Direct(db).transaction() as tx:
                await tx.execute(
                    "INSERT INTO run_events (run_id, seq, type, body) VALUES (:r, 1, 't', 'x')",
                    {"r": f"r{rows}"},
                )
            rows += 1
        assert _size(wal) <= checkpoint.MAX_WAL_BYTES, "the log was emptied"
    finally:
        await db.dispose()
    assert _count(path) == rows  # every committed row, read by another connection after the server's


def _count(path: Path) -> int:
    with sqlite3.connect(path) as connection:
        (count,) = connection.execute("SELECT count(*) FROM run_events").fetchone()
    return int(count)


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0
