"""The run queue and the fenced event log on real SQLite and PostgreSQL: one holder per run at a time,
and a holder whose lease was taken over writes nothing more, without touching any other run."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select, update

from tokenwise.bus.memory import MemoryBus
from tokenwise.db.database import Database
from tokenwise.db.migrate import upgrade
from tokenwise.db.tables import RunEventRow, RunRow, UserRow, utcnow
from tokenwise.errors import TooManyRuns
from tokenwise.runs.event_log import EventLog
from tokenwise.runs.queue import Outcome, RunQueue
from tokenwise.runs.recorder import RunRecorder
from tokenwise.services.chat import Chat


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{(tmp_path / 'queue.db').resolve()}"
    else:
        url = request.getfixturevalue("postgres_url")
    upgrade(url)
    database = Database(url)
    async with database.session() as session:
        session.add(UserRow(id="u1", email="u1@example.com", password_hash="x"))
        session.add(UserRow(id="u2", email="u2@example.com", password_hash="x"))
    yield database
    await database.dispose()


async def _queued(db: Database, user_id: str, count: int) -> list[str]:
    chat = Chat(db, MemoryBus(), max_active_runs=1000)
    return [(await chat.submit(user_id, f"question {i}")).run_id for i in range(count)]


async def test_concurrent_claims_take_each_run_exactly_once(db: Database) -> None:
    runs = await _queued(db, "u1", 40)
    queue = RunQueue(db, lease_s=30)
    claims = await asyncio.gather(*(queue.claim(f"worker-{i}", 7) for i in range(8)))
    claimed = [job.run_id for jobs in claims for job in jobs]
    assert sorted(claimed) == sorted(runs)  # every run, none twice
    assert all(job.epoch == 1 and not job.takeover for jobs in claims for job in jobs)
    assert await queue.claim("late", 10) == []


async def test_an_expired_lease_is_taken_over_with_the_next_epoch(db: Database) -> None:
    (run_id,) = await _queued(db, "u1", 1)
    queue = RunQueue(db, lease_s=30)
    (first,) = await queue.claim("a", 1)
    assert await queue.take_over("b", 10) == []  # the lease is alive
    async with db.session() as session:
        await session.execute(update(RunRow).values(lease_expires_at=utcnow()))
    (second,) = await queue.take_over("b", 10)
    assert (second.run_id, second.epoch, second.takeover) == (run_id, first.epoch + 1, True)
    renewal = await queue.renew("a", {run_id: first.epoch})
    assert renewal.lost == {run_id}
    assert (await queue.renew("b", {run_id: second.epoch})).lost == frozenset()


async def test_a_fenced_writer_loses_only_its_own_events(db: Database) -> None:
    bus = MemoryBus()
    log = EventLog(db, bus)
    log.start()
    try:
        taken, other = await _queued(db, "u1", 2)
        queue = RunQueue(db, lease_s=30)
        jobs = {job.run_id: job for job in await queue.claim("a", 2)}
        # Each run's first event (seq 1) was stored with it: the holders number on from there.
        assert jobs[taken].announced
        assert jobs[other].announced
        old = RunRecorder(log, user_id="u1", run_id=taken, thread_id="t", epoch=jobs[taken].epoch, seq=1)
        bystander = RunRecorder(
            log, user_id="u1", run_id=other, thread_id="t", epoch=jobs[other].epoch, seq=1
        )
        old.emit("agent_thinking", "supervisor", {"thought": "early"})
        await log.flush()
        async with db.session() as session:
            await session.execute(update(RunRow).where(RunRow.id == taken).values(lease_expires_at=utcnow()))
        (successor,) = await queue.take_over("b", 10)
        new = RunRecorder(log, user_id="u1", run_id=taken, thread_id="t", epoch=successor.epoch, seq=2)
        # One batch holds the zombie's late events, its successor's and another run's.
        old.emit("agent_thinking", "supervisor", {"thought": "late"})
        new.emit("agent_thinking", "supervisor", {"thought": "successor"})
        bystander.emit("agent_thinking", "supervisor", {"thought": "bystander"})
        await log.flush()
        assert old.fenced
        assert not new.fenced
        assert not bystander.fenced
        old.emit("agent_completed", "supervisor", {})  # nothing more is recorded once fenced
        await log.flush()
        async with db.session() as session:
            stored = (
                await session.execute(select(RunEventRow.run_id, RunEventRow.seq, RunEventRow.body))
            ).all()
        mine = sorted((seq, body) for run, seq, body in stored if run == taken)
        assert [seq for seq, _ in mine] == [1, 2, 3]
        assert "early" in mine[1][1]
        assert "successor" in mine[2][1]
        assert sorted(seq for run, seq, _ in stored if run == other) == [1, 2]
    finally:
        await log.stop()


async def test_runs_over_the_users_limit_are_refused_and_nothing_is_stored(db: Database) -> None:
    chat = Chat(db, MemoryBus(), max_active_runs=2)
    await chat.submit("u1", "one")
    await chat.submit("u1", "two")
    with pytest.raises(TooManyRuns) as refused:
        await chat.submit("u1", "three", client_message_id="c3")
    assert refused.value.details["retry_after_s"] > 0
    await chat.submit("u2", "another user is not limited by u1")
    async with db.session() as session:
        questions = (await session.scalars(select(RunRow.question).where(RunRow.user_id == "u1"))).all()
    assert sorted(q or "" for q in questions) == ["one", "two"]


async def test_claims_take_each_users_oldest_run_in_turn(db: Database) -> None:
    # A user's backlog does not hold back another user's first run: one's turn among one's own runs
    # first. (RETURNING gives the claimed rows in no particular order: sets.)
    a = await _queued(db, "u1", 10)
    (b,) = await _queued(db, "u2", 1)
    queue = RunQueue(db, lease_s=30)
    assert {job.run_id for job in await queue.claim("w", 2)} == {a[0], b}
    assert {job.run_id for job in await queue.claim("w", 3)} == set(a[1:4])
    (c,) = await _queued(db, "u2", 1)
    # u1 has four runs under way, u2 one: u2's next run comes first, though queued last.
    assert {job.run_id for job in await queue.claim("w", 2)} == {c, a[4]}


async def test_a_claim_gives_a_user_no_more_than_its_share(db: Database) -> None:
    a = await _queued(db, "u1", 5)
    b = await _queued(db, "u2", 3)
    queue = RunQueue(db, lease_s=30)
    # The claimer executes one run of u1 and two of u2 already: u1 gets one more, u2 none.
    claimed = await queue.claim("w", 10, per_user=3, busy={"u1": 2, "u2": 3})
    assert {job.run_id for job in claimed} == set(a[:1])
    # u1 has a run under way: u2's first, then each one's next by age (u1's were queued first).
    claimed = await queue.claim("w", 3, per_user=2, busy={})
    assert {job.run_id for job in claimed} == {b[0], a[1], b[1]}
    claimed = await queue.claim("w", 10, per_user=2, busy={"u2": 1})  # u1: two more, u2: one
    assert {job.run_id for job in claimed} == {a[2], a[3], b[2]}


async def test_a_requeued_run_is_claimed_again_with_the_next_epoch(db: Database) -> None:
    (run_id,) = await _queued(db, "u1", 1)
    queue = RunQueue(db, lease_s=30)
    (first,) = await queue.claim("a", 1)
    assert not await queue.requeue("b", run_id, first.epoch)  # not b's
    assert not await queue.requeue("a", run_id, first.epoch + 1)
    assert await queue.requeue("a", run_id, first.epoch)
    assert await queue.has_queued()
    (again,) = await queue.claim("c", 1)
    assert (again.run_id, again.epoch, again.attempts) == (run_id, first.epoch + 1, first.attempts)
    assert (await queue.renew("a", {run_id: first.epoch})).lost == {run_id}


async def test_only_an_owed_end_waits_in_the_outbox(db: Database) -> None:
    """A run ended `owed` (the bus crosses processes) is listed as unpublished once its holder's lease
    runs out, until marked published; one ended without (an in-process bus) never is."""
    owed_run, unowed_run = await _queued(db, "u1", 2)
    queue = RunQueue(db, lease_s=30)
    jobs = {job.run_id: job for job in await queue.claim("w", 2)}
    outcome = Outcome("completed", 1, None, {"answer": 42}, "done")
    for run_id, owed in ((owed_run, True), (unowed_run, False)):
        async with db.direct.transaction() as tx:
            await queue.finish(
                tx,
                run_id=run_id,
                user_id="u1",
                thread_id=jobs[run_id].thread_id,
                epoch=1,
                outcome=outcome,
                owed=owed,
            )
    assert await queue.unpublished() == []  # the holder's lease still runs: it publishes them itself
    async with db.session() as session:
        await session.execute(update(RunRow).values(lease_expires_at=utcnow()))
    assert await queue.unpublished() == [(owed_run, "u1", 1)]
    await queue.mark_published([owed_run])
    assert await queue.unpublished() == []
    async with db.session() as session:
        ended = {row.id: row.status for row in await session.scalars(select(RunRow))}
    assert ended == {owed_run: "completed", unowed_run: "completed"}
