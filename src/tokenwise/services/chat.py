"""Threads, messages and runs as one user sees them. Another user's rows are simply not found."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tokenwise.bus.base import EventBus
from tokenwise.db.database import Database
from tokenwise.db.direct import INSERT_MESSAGE, Transaction
from tokenwise.db.tables import MessageRow, RunRow, ThreadRow, utcnow
from tokenwise.errors import NotFound, TooManyRuns
from tokenwise.runs.event_log import EventLog
from tokenwise.runs.queue import ACTIVE, Lease
from tokenwise.runs.recorder import opening
from tokenwise.session.events import RunEvent
from tokenwise.session.frames import THREAD_ID

CLIENT_THREAD_ID = re.compile(THREAD_ID)  # what a client-chosen id of a new thread may be
_COUNT_ACTIVE = "SELECT count(*) FROM runs WHERE user_id = :user_id AND status IN ('queued', 'running')"
_INSERT_RUN = (
    "INSERT INTO runs (id, thread_id, user_id, message_id, status, created_at, last_seq, question,"
    " stop_after, opens_thread, lease_owner, lease_expires_at, epoch, attempts, final_published)"
    " VALUES (:id, :thread_id, :user_id, :message_id, :status, :created_at, 1, :question,"
    " :stop_after, :opens_thread, :lease_owner, :lease_expires_at, :claims, :claims, TRUE)"
)


class _ThreadRace(Exception):
    """Two messages created the same client-chosen thread at once; the loser submits again."""


@dataclass(frozen=True)
class Submission:
    """The outcome of a user message: the ids to ack with, and whether a run must start."""

    message_id: str
    thread_id: str
    run_id: str
    client_message_id: str | None
    question: str
    is_new: bool  # False when the client_message_id was seen before: no second run
    opens_thread: bool = False  # the message started its thread: there is no context to read
    stop_after: str | None = None  # the last agent its run's pipeline runs (None: all)
    first: RunEvent | None = None  # a new run's first event, stored and published with it (`opening`)


def thread_json(row: ThreadRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "title": row.title,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }


def message_json(row: MessageRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "role": row.role,
        "content": row.content,
        "created_at": row.created_at.isoformat(),
        "run_id": row.run_id,
    }


def run_json(row: RunRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "thread_id": row.thread_id,
        "message_id": row.message_id,
        "status": row.status,
        "created_at": row.created_at.isoformat(),
        "finished_at": row.finished_at.isoformat() if row.finished_at else None,
        "last_seq": row.last_seq,
        "error_code": row.error_code,
        "report": row.report,
        # the report is stored with its run: GET /api/reports/{report_id}
        "report_id": row.id if row.report else None,
    }


class ThreadTurns:
    """The `ThreadContext` of one run: its thread's earlier turns, read from the database when asked."""

    def __init__(self, chat: Chat, user_id: str, thread_id: str, run_id: str) -> None:
        self._chat, self._user_id, self._thread_id, self._run_id = chat, user_id, thread_id, run_id

    async def turns(self) -> list[dict[str, Any]]:
        return await self._chat.earlier_turns(self._user_id, self._thread_id, self._run_id)


class Chat:
    def __init__(self, db: Database, bus: EventBus, *, max_active_runs: int = 5) -> None:
        self._db, self._bus, self._max_active = db, bus, max_active_runs
        self._direct = db.direct

    async def _owned_thread(self, session: AsyncSession, user_id: str, thread_id: str) -> ThreadRow:
        row = await session.get(ThreadRow, thread_id)
        if row is None or row.user_id != user_id:
            raise NotFound(f"no thread {thread_id!r}", field="thread_id")
        return row

    async def create_thread(self, user_id: str, title: str | None = None) -> ThreadRow:
        row = ThreadRow(id=str(uuid.uuid4()), user_id=user_id, title=title or "New thread")
        async with self._db.session() as session:
            session.add(row)
        return row

    async def list_threads(self, user_id: str, limit: int = 100) -> list[ThreadRow]:
        query = (
            select(ThreadRow)
            .where(ThreadRow.user_id == user_id)
            .order_by(ThreadRow.updated_at.desc())
            .limit(limit)
        )
        async with self._db.session() as session:
            return list((await session.scalars(query)).all())

    async def get_thread(self, user_id: str, thread_id: str) -> ThreadRow:
        async with self._db.session() as session:
            return await self._owned_thread(session, user_id, thread_id)

    async def messages(
        self, user_id: str, thread_id: str, *, limit: int = 50, before: datetime | None = None
    ) -> list[MessageRow]:
        """The newest `limit` messages before `before`, returned oldest first."""
        async with self._db.session() as session:
            await self._owned_thread(session, user_id, thread_id)
            query = select(MessageRow).where(MessageRow.thread_id == thread_id)
            if before is not None:
                query = query.where(MessageRow.created_at < before)
            query = query.order_by(MessageRow.created_at.desc(), MessageRow.id.desc()).limit(limit)
            rows = list((await session.scalars(query)).all())
        return rows[::-1]

    async def submit(
        self,
        user_id: str,
        content: str,
        *,
        thread_id: str | None = None,
        client_message_id: str | None = None,
        create_thread: bool = False,
        stop_after: str | None = None,
        lease: Lease | None = None,
    ) -> Submission:
        """Store a user message and its run (a new thread when none is named); idempotent per client id.

        A new run is stored with its first event (the supervisor's `agent_started`), published once
        committed: the caller sends it right after the ack, before any worker has claimed the run.

        `create_thread`: a well-formed `thread_id` that does not exist yet opens that thread for this user
        (one of another user's stays NotFound). `stop_after`: the last agent the run's pipeline runs.
        `lease`: the run is stored already leased to that (in-process) worker instead of queued.
        """
        for attempt in (1, 2):
            try:
                return await self._submit(
                    user_id, content, thread_id, client_message_id, create_thread, stop_after, lease
                )
            except _ThreadRace:
                if attempt == 2:
                    raise NotFound(f"no thread {thread_id!r}", field="thread_id") from None
        raise AssertionError("unreachable")

    async def _submit(
        self,
        user_id: str,
        content: str,
        thread_id: str | None,
        client_message_id: str | None,
        create_thread: bool,
        stop_after: str | None,
        lease: Lease | None = None,
    ) -> Submission:
        # No lookup first: a repeated client_message_id is caught by the unique constraint, so the common
        # case (a new message) costs one transaction on the way to the run's first event.
        message_id, run_id = str(uuid.uuid4()), str(uuid.uuid4())
        now = utcnow()
        opens_thread = chosen = False
        try:
            async with self._direct.transaction() as tx:
                await self._admit(tx, user_id)
                owner = None
                if thread_id is not None:
                    found = await tx.fetch("SELECT user_id FROM threads WHERE id = :id", {"id": thread_id})
                    owner = found[0][0] if found else None
                chosen = owner is None and create_thread and bool(CLIENT_THREAD_ID.fullmatch(thread_id or ""))
                if thread_id is None or chosen:
                    opens_thread = True
                    thread_id = thread_id or str(uuid.uuid4())
                    await tx.execute(
                        "INSERT INTO threads (id, user_id, title, created_at, updated_at)"
                        " VALUES (:id, :user_id, :title, :now, :now)",
                        {"id": thread_id, "user_id": user_id, "title": content[:80], "now": now},
                    )
                elif owner != user_id:
                    raise NotFound(f"no thread {thread_id!r}", field="thread_id")
                else:
                    await tx.execute(
                        "UPDATE threads SET updated_at = :now WHERE id = :id", {"id": thread_id, "now": now}
                    )
                message: dict[str, Any] = {"id": message_id, "thread_id": thread_id, "user_id": user_id}
                message |= {"role": "user", "content": content, "run_id": run_id}
                message |= {"client_message_id": client_message_id}
                await tx.execute(INSERT_MESSAGE, message | {"created_at": now})
                # The run is queued by the same transaction: a stored message always has its run.
                await tx.execute(
                    _INSERT_RUN,
                    {
                        "id": run_id,
                        "thread_id": thread_id,
                        "user_id": user_id,
                        "message_id": message_id,
                        "status": "queued" if lease is None else "running",
                        "created_at": now,
                        "question": content,
                        "opens_thread": opens_thread,
                        "stop_after": stop_after,
                        "lease_owner": None if lease is None else lease.owner,
                        "lease_expires_at": None if lease is None else lease.expires_at,
                        "claims": 0 if lease is None else 1,  # epoch and attempts
                    },
                )
                first = opening(user_id=user_id, run_id=run_id, thread_id=thread_id)
                await EventLog.store_in(tx, [first])
        except (IntegrityError, TooManyRuns) as exc:
            # This client_message_id was seen before (or raced with a twin, or is resent at the run
            # limit after a reconnect): the first one owns the run, and gets the same ack.
            seen = await self._seen(user_id, client_message_id) if client_message_id else None
            if seen is not None:
                return seen
            if isinstance(exc, IntegrityError) and chosen:
                raise _ThreadRace from exc  # another message created the same client-chosen thread first
            raise
        await self._bus.publish(first)  # stored first: a resume or another tab reads what this sends
        return Submission(
            message_id,
            thread_id,
            run_id,
            client_message_id,
            content,
            is_new=True,
            opens_thread=opens_thread,
            stop_after=stop_after,
            first=first,
        )

    async def _admit(self, tx: Transaction, user_id: str) -> None:
        """Refuse a run over the user's limit of active runs (the transaction then stores nothing).

        Counted under a lock on the user's row (PostgreSQL) that is held until the run is stored, so
        two processes admitting the same user at once count each other: the limit holds cluster-wide.
        """
        if not tx.is_sqlite:  # SQLite has one writer at a time already
            await tx.fetch("SELECT id FROM users WHERE id = :id FOR UPDATE", {"id": user_id})
        (active,) = (await tx.fetch(_COUNT_ACTIVE, {"user_id": user_id}))[0]
        if active >= self._max_active:
            raise TooManyRuns(
                f"at most {self._max_active} runs at once per user; wait for one to finish",
                retry_after_s=1.0,
            )

    async def _seen(self, user_id: str, client_message_id: str) -> Submission | None:
        async with self._db.session() as session:
            row = await session.scalar(
                select(MessageRow).where(
                    MessageRow.user_id == user_id, MessageRow.client_message_id == client_message_id
                )
            )
        if row is None or row.run_id is None:
            return None
        return Submission(row.id, row.thread_id, row.run_id, client_message_id, row.content, is_new=False)

    async def earlier_turns(
        self, user_id: str, thread_id: str, run_id: str, limit: int = 5
    ) -> list[dict[str, Any]]:
        """The last `limit` answered questions of the thread before `run_id`, oldest first, with the plan
        each was answered with (what a follow-up is read against)."""
        async with self._db.session() as session:
            current = await session.get(RunRow, run_id)
            query = (
                select(RunRow.report, MessageRow.content)
                .join(MessageRow, MessageRow.id == RunRow.message_id)
                .where(RunRow.thread_id == thread_id, RunRow.user_id == user_id, RunRow.id != run_id)
                .where(RunRow.status == "completed")
                .order_by(RunRow.created_at.desc())
                .limit(limit)
            )
            if current is not None:
                query = query.where(RunRow.created_at <= current.created_at)
            found = (await session.execute(query)).all()
        turns = []
        for report, question in reversed(found):
            report = report or {}
            answer = report.get("answer") or {}
            rows = ((answer.get("table") or {}).get("rows")) or [[None]]
            turns.append(
                {
                    "question": question,
                    "plan": report.get("plan") or {},
                    "answer": str(answer.get("text") or report.get("summary") or "")[:1000],
                    "top": None if rows[0][0] is None else str(rows[0][0])[:200],
                }
            )
        return turns

    async def active_runs(self, user_id: str) -> list[RunRow]:
        """The user's runs still queued or running, oldest first."""
        query = (
            select(RunRow)
            .where(RunRow.user_id == user_id, RunRow.status.in_(ACTIVE))
            .order_by(RunRow.created_at)
        )
        async with self._db.session() as session:
            return list((await session.scalars(query)).all())

    async def reports(self, user_id: str, limit: int = 50) -> list[RunRow]:
        """The user's runs that wrote a report, newest first."""
        query = (
            select(RunRow)
            .where(RunRow.user_id == user_id, RunRow.status == "completed")
            .order_by(RunRow.created_at.desc())
            .limit(limit)
        )
        async with self._db.session() as session:
            return [row for row in (await session.scalars(query)).all() if row.report]

    async def get_run(self, user_id: str, run_id: str) -> RunRow:
        async with self._db.session() as session:
            row = await session.get(RunRow, run_id)
        if row is None or row.user_id != user_id:
            raise NotFound(f"no run {run_id!r}", field="run_id")
        return row
