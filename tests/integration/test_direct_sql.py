"""The golden path's plain-SQL transactions (db/direct.py) on real SQLite and PostgreSQL: what they write
reads back through the ORM exactly as the ORM would have written it, and the other way round; a failed
transaction leaves nothing behind; a repeated key is the ORM's IntegrityError."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from tokenwise.bus.memory import MemoryBus
from tokenwise.db.database import Database
from tokenwise.db.direct import Direct
from tokenwise.db.migrate import upgrade
from tokenwise.db.tables import DatasetRow, MessageRow, RunEventRow, RunRow, ThreadRow, UserRow, utcnow
from tokenwise.runs.event_log import EventLog
from tokenwise.runs.queue import Lease
from tokenwise.services.chat import Chat

_INSERT_THREAD = (
    "INSERT INTO threads (id, user_id, title, created_at, updated_at)"
    " VALUES (:id, :user_id, :title, :now, :now)"
)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{(tmp_path / 'direct.db').resolve()}"
    else:
        url = request.getfixturevalue("postgres_url")
    upgrade(url)
    database = Database(url)
    async with database.session() as session:
        session.add(UserRow(id="u1", email="u1@example.com", password_hash="x"))
    yield database
    await database.dispose()


async def test_a_submitted_run_reads_back_through_the_orm_as_written(db: Database) -> None:
    lease = Lease("worker-a", utcnow() + timedelta(seconds=6))
    before = utcnow()
    submitted = await Chat(db, MemoryBus()).submit(
        "u1", "What did we spend?", client_message_id="c1", lease=lease
    )
    async with db.session() as session:
        run = await session.get(RunRow, submitted.run_id)
        message = await session.get(MessageRow, submitted.message_id)
        thread = await session.get(ThreadRow, submitted.thread_id)
    assert run is not None
    assert message is not None
    assert thread is not None
    assert (run.status, run.epoch, run.attempts, run.last_seq) == ("running", 1, 1, 1)
    assert (run.lease_owner, run.lease_expires_at) == (lease.owner, lease.expires_at)
    assert run.opens_thread is True
    assert run.final_published is True
    assert run.question == "What did we spend?"
    assert before <= run.created_at <= utcnow()
    assert run.created_at.tzinfo is not None
    assert (message.content, message.client_message_id, message.run_id) == (
        "What did we spend?",
        "c1",
        submitted.run_id,
    )
    assert (thread.user_id, thread.title, thread.created_at) == ("u1", "What did we spend?", run.created_at)
    # the run's first event is stored with it, as the submission hands it to the caller to send
    async with db.session() as session:
        events = (
            (await session.execute(select(RunEventRow).where(RunEventRow.run_id == run.id))).scalars().all()
        )
    assert [(event.seq, event.type) for event in events] == [(1, "agent_started")]
    assert submitted.first is not None
    assert submitted.first.body == events[0].body
    assert json.loads(events[0].body)["agent_name"] == "supervisor"
    # stored datetimes compare with the ORM's own: a lease query sees the run as leased until its expiry
    async with db.session() as session:
        leased = await session.scalar(select(RunRow.id).where(RunRow.lease_expires_at > lease.expires_at))
        expired = await session.scalar(
            select(RunRow.id).where(RunRow.lease_expires_at > lease.expires_at - timedelta(microseconds=1))
        )
    assert (leased, expired) == (None, submitted.run_id)


async def test_rows_read_without_the_orm_equal_the_orms_own(db: Database) -> None:
    start = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)
    written = [
        DatasetRow(
            id=f"d{i}",
            user_id="u1",
            name=f"usage {i}.csv",
            source_format="csv",
            detected_format="openai_usage",
            row_count=10**12 + i,
            mapping={"model": "model", "nested": {"list": [1, 2.5, None, "é"]}},
            details=None if i else {"notes": ["a note"], "bucketed": True},
            model=None if i else "gpt-4o",
            keep_prompt_text=bool(i),
            period_start=start if i else None,
            period_end=start + timedelta(days=i),
            bytes=1234,
            path=f"datasets/d{i}.parquet",
            created_at=start + timedelta(seconds=i),
            content_hash=None,
            included=not i,
        )
        for i in range(3)
    ]
    async with db.session() as session:
        session.add_all(written)
    async with db.session() as session:
        expected = list(await session.scalars(select(DatasetRow).order_by(DatasetRow.created_at)))
    read = await Direct(db).rows(DatasetRow, "user_id = :user_id", {"user_id": "u1"}, "created_at")
    columns = [column.key for column in DatasetRow.__table__.columns]
    assert [[getattr(row, c) for c in columns] for row in read] == [
        [getattr(row, c) for c in columns] for row in expected
    ]
    assert await Direct(db).rows(DatasetRow, "user_id = :user_id", {"user_id": "nobody"}) == []


async def test_a_failed_transaction_writes_nothing(db: Database) -> None:
    class Boom(Exception):
        pass

    async def half_written() -> None:
        async with Direct(db).transaction() as tx:
            await tx.execute(
                _INSERT_THREAD, {"id": "t-half", "user_id": "u1", "title": "half", "now": utcnow()}
            )
            raise Boom

    with pytest.raises(Boom):
        await half_written()
    async with db.session() as session:
        assert await session.get(ThreadRow, "t-half") is None


async def test_a_repeated_key_is_an_integrity_error_and_the_first_row_stays(db: Database) -> None:
    async def threads(*ids_and_titles: tuple[str, str]) -> None:
        async with Direct(db).transaction() as tx:
            for id, title in ids_and_titles:
                await tx.execute(_INSERT_THREAD, {"id": id, "user_id": "u1", "title": title, "now": utcnow()})

    await threads(("t1", "first"))
    with pytest.raises(IntegrityError):
        await threads(("t2", "second"), ("t1", "again"))
    async with db.session() as session:
        titles = list(await session.scalars(select(ThreadRow.title).order_by(ThreadRow.id)))
    assert titles == ["first"]  # t2 went with the failed transaction


async def test_the_runs_stored_lately_are_found_per_user_from_a_moment(db: Database) -> None:
    """What a feed looks up when the bus could not announce a run (runs/event_log.py `started_since`)."""
    async with db.session() as session:
        session.add(UserRow(id="u2", email="u2@example.com", password_hash="x"))
    chat, log = Chat(db, MemoryBus()), EventLog(db, MemoryBus())
    before = (await chat.submit("u1", "an earlier question")).run_id
    moment = utcnow()
    mine = [(await chat.submit("u1", f"question {i}")).run_id for i in range(3)]
    await chat.submit("u2", "someone else's")
    assert await log.started_since("u1", moment) == mine  # oldest first, only u1's, none from before
    assert before in await log.started_since("u1", moment - timedelta(seconds=5))
    # only the columns asked for are read; they come back as the ORM reads them
    (row,) = await db.direct.rows(RunRow, "id = :id", {"id": mine[0]}, columns=("id", "created_at"))
    async with db.session() as session:
        orm = await session.get(RunRow, mine[0])
    assert orm is not None
    assert (row.id, row.created_at) == (orm.id, orm.created_at)
    assert row.question is None  # not read
    assert orm.question == "question 0"
