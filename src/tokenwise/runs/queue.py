"""The run queue: the `runs` table is the queue, and a lease on a row says which worker executes it.

A run is enqueued by the transaction that stores its message (status `queued`). A worker claims it
(status `running`, a lease until `lease_expires_at`, `epoch` + 1) and renews the lease while it works.
Every write of the holder - its events, its end - is conditional on the epoch it claimed with, so a
worker whose lease was taken over (it paused, or its renewals stopped reaching the database) writes
nothing more. On PostgreSQL concurrent claims skip each other's rows (`FOR UPDATE SKIP LOCKED`); SQLite
serialises writers, and the same statements hold there.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, select, tuple_, update

from tokenwise.db.database import Database
from tokenwise.db.direct import INSERT_MESSAGE, Transaction, expand
from tokenwise.db.tables import RefreshTokenRow, RunRow, WsTicketRow, utcnow

ACTIVE = ("queued", "running")
# running runs whose lease expired (or was handed back: no owner); `owned` is IS NULL or IS NOT NULL
_DUE = (
    "SELECT 1 FROM runs WHERE status = 'running' AND (lease_expires_at IS NULL OR lease_expires_at < :now)"
    " AND lease_owner {owned} LIMIT 1"
)
_RENEW = (
    "UPDATE runs SET lease_expires_at = :until WHERE ({held}) AND lease_owner = :owner AND status = 'running'"
    " RETURNING id, cancel_requested_at"
)
_PUBLISHED = "UPDATE runs SET final_published = TRUE WHERE id IN ({ids})"
_UNPUBLISHED = (
    "SELECT id, user_id, last_seq FROM runs WHERE final_published = FALSE"
    " AND status NOT IN ('queued', 'running') AND lease_expires_at < :now LIMIT :limit"
)
_END_RUN = (
    "UPDATE runs SET status = :status, finished_at = :now, last_seq = :last_seq, error_code = :error_code,"
    " report = :report, report_markdown = :markdown, final_published = :published, lease_expires_at = :until"
    " WHERE id = :id AND epoch = :epoch AND status = 'running'"
)
_CLAIM = (
    "WITH picked AS {materialized}("
    " SELECT pick.id FROM runs AS pick JOIN ("
    "  SELECT id, user_id, status, created_at,"
    "   row_number() OVER (PARTITION BY user_id"
    "    ORDER BY CASE WHEN status = 'running' THEN 0 ELSE 1 END, created_at, id) AS turn,"
    "   row_number() OVER (PARTITION BY user_id, status ORDER BY created_at, id) AS place"
    "  FROM runs WHERE status IN ('queued', 'running')"
    " ) AS ranked ON ranked.id = pick.id"
    " WHERE pick.status = 'queued' AND ranked.status = 'queued'{allowed}"
    " ORDER BY ranked.turn, ranked.created_at, ranked.id LIMIT :limit{lock})"
    " UPDATE runs SET lease_owner = :owner, lease_expires_at = :until, epoch = epoch + 1,"
    " attempts = attempts + 1, status = 'running'"
    " WHERE id IN (SELECT id FROM picked) AND status = 'queued'"
    " RETURNING id, user_id, thread_id, question, opens_thread, epoch, attempts, checkpoint,"
    " cancel_requested_at, stop_after, last_seq"
)
_CLAIMED = (
    RunRow.id,
    RunRow.user_id,
    RunRow.thread_id,
    RunRow.question,
    RunRow.opens_thread,
    RunRow.epoch,
    RunRow.attempts,
    RunRow.checkpoint,
    RunRow.cancel_requested_at,
    RunRow.stop_after,
    RunRow.last_seq,
)


class Fenced(Exception):
    """The writer's lease was taken over: it may not write this run any more."""


@dataclass(frozen=True)
class RunJob:
    """A claimed run: what to execute, and the epoch every write of this holder carries."""

    run_id: str
    user_id: str
    thread_id: str
    question: str
    opens_thread: bool
    epoch: int
    attempts: int
    checkpoint: dict[str, Any] | None
    takeover: bool  # claimed from a holder whose lease expired: events may exist already
    cancel_requested: bool = False  # a stop arrived before the claim
    handed_back: bool = False  # released by a draining worker: it goes on, whatever the recovery setting
    stop_after: str | None = None  # the last agent to run (POST /api/agents/{agent}); None: all of them
    announced: bool = False  # its first event (the supervisor's start) was stored with it (`opening`)

    @classmethod
    def from_values(cls, values: Sequence[Any]) -> RunJob:
        """A queued run just claimed, from the plain SQL's row (`_CLAIM`'s RETURNING): the JSON
        checkpoint comes back as its text there."""
        run_id, user_id, thread_id, question, opened, epoch, attempts, checkpoint, cancel, stop, seq = values
        return cls(
            run_id=run_id,
            user_id=user_id,
            thread_id=thread_id,
            question=question or "",
            opens_thread=bool(opened),
            epoch=epoch,
            attempts=attempts,
            checkpoint=json.loads(checkpoint) if isinstance(checkpoint, str) else checkpoint,
            takeover=False,
            cancel_requested=cancel is not None,
            stop_after=stop,
            announced=seq > 0,
        )

    @classmethod
    def from_row(cls, row: Any, *, takeover: bool, handed_back: bool = False) -> RunJob:
        return cls(
            run_id=row.id,
            user_id=row.user_id,
            thread_id=row.thread_id,
            question=row.question or "",
            opens_thread=bool(row.opens_thread),
            epoch=row.epoch,
            attempts=row.attempts,
            checkpoint=row.checkpoint,
            takeover=takeover,
            cancel_requested=row.cancel_requested_at is not None,
            handed_back=handed_back,
            stop_after=row.stop_after,
            announced=row.last_seq > 0,
        )


@dataclass(frozen=True)
class Lease:
    """A lease taken at submit time by the in-process worker: the run is stored `running`, epoch 1,
    and handed straight to that worker (no claim transaction, no wake-up on the way to its first event)."""

    owner: str
    expires_at: datetime


@dataclass(frozen=True)
class Renewal:
    lost: frozenset[str]  # runs whose lease this worker no longer holds
    cancel: frozenset[str]  # held runs whose cancellation was requested


@dataclass(frozen=True)
class Outcome:
    """How a run ended, recorded with its final event."""

    status: str
    last_seq: int
    error_code: str | None
    report: dict[str, Any]
    markdown: str


class RunQueue:
    """The queue's statements. The ones a worker repeats every second or two whether or not there is
    anything to do (is anything queued, expired or unpublished; renewals) are plain SQL (db/direct.py):
    through the ORM each held the one SQLite connection across several awaits, and the golden path's
    transactions queued behind them."""

    def __init__(self, db: Database, *, lease_s: float) -> None:
        self._db, self._lease = db, timedelta(seconds=lease_s)
        self._direct = db.direct

    async def _exists(self, sql: str, params: Mapping[str, Any]) -> bool:
        async with self._direct.transaction() as tx:
            return bool(await tx.fetch(sql, params))

    def _until(self, now: datetime) -> datetime:
        return now + self._lease

    def lease(self, owner: str) -> Lease:
        return Lease(owner, self._until(utcnow()))

    async def _take(self, owner: str, *where: Any, start: bool) -> Sequence[Any]:
        """Lease the rows `where` selects to `owner` (epoch + 1); `start` moves them queued -> running."""
        values: dict[str, Any] = {
            "lease_owner": owner,
            "lease_expires_at": self._until(utcnow()),
            "epoch": RunRow.epoch + 1,
            "attempts": RunRow.attempts + 1,
        }
        if start:
            values["status"] = "running"
        statement = (
            update(RunRow)
            .where(*where)
            .values(**values)
            .returning(*_CLAIMED)
            .execution_options(synchronize_session=False)
        )
        async with self._db.session() as session:
            return (await session.execute(statement)).all()

    @staticmethod
    def _oldest(limit: int, *where: Any) -> Any:
        """The ids of the oldest `limit` rows `where` selects that no other claim has locked."""
        query = select(RunRow.id).where(*where).order_by(RunRow.created_at).limit(limit)
        return RunRow.id.in_(query.with_for_update(skip_locked=True).scalar_subquery())

    def _fair(
        self, owner: str, limit: int, per_user: int | None, busy: Mapping[str, int], *, postgres: bool
    ) -> tuple[str, dict[str, Any]]:
        """The claim of `limit` queued rows no other claim has locked, fairly: by each run's turn in its
        own user's runs first (the user's runs under way count first, then its queued ones by age), then by
        age, so one user's backlog - or its runs under way - do not hold back another user's first run.
        With `per_user`, a user gets at most `per_user` minus its `busy` runs (the claimer's own count).

        Plain SQL: built through the ORM, this statement cost a worker about 20 ms of CPU per claim, the
        largest part of a cluster run's way to its first event (docs/performance.md). PostgreSQL refuses
        FOR UPDATE beside a window function: the positions are ranked in a derived table, and only the
        `pick` rows are locked (SKIP LOCKED after the ordering, so concurrent claims take the next rows
        rather than none). The pick is a MATERIALIZED common table expression: as a plain subquery of the
        UPDATE, PostgreSQL may run it again per row, and each run skips the rows the statement has updated
        already and picks more - past `limit`. SQLite serialises writers and has no row locks."""
        params: dict[str, Any] = {"owner": owner, "until": self._until(utcnow()), "limit": limit}
        allowed = ""
        if per_user is not None:
            room = {user: per_user - running for user, running in busy.items() if running > 0}
            params["per_user"] = per_user
            others = "ranked.place <= :per_user"
            if room:
                names, users = expand("busy", list(room))
                others += f" AND ranked.user_id NOT IN ({names})"
                params |= users
            clauses = [f"({others})"]
            for i, left in enumerate(room.values()):
                if left > 0:
                    clauses.append(f"(ranked.user_id = :busy{i} AND ranked.place <= :left{i})")
                    params[f"left{i}"] = left
            allowed = f" AND ({' OR '.join(clauses)})"
        sql = _CLAIM.format(
            materialized="MATERIALIZED " if postgres else "",
            allowed=allowed,
            lock=" FOR UPDATE OF pick SKIP LOCKED" if postgres else "",
        )
        return sql, params

    async def claim(
        self, owner: str, limit: int, *, per_user: int | None = None, busy: Mapping[str, int] | None = None
    ) -> list[RunJob]:
        """Lease up to `limit` queued runs, fairly (`_fair`): each user's oldest first, users in turn.
        `per_user` caps a user's runs at this claimer counting the ones it `busy` executes already."""
        if limit <= 0 or not await self.has_queued():
            return []
        sql, params = self._fair(owner, limit, per_user, busy or {}, postgres=not self._db.is_sqlite)
        async with self._direct.transaction() as tx:
            rows = await tx.fetch(sql, params)
        return [RunJob.from_values(row) for row in rows]

    async def requeue(self, owner: str, run_id: str, epoch: int) -> bool:
        """Put a run stored leased to `owner` that it has not started back in the queue (its user executes
        its share there already); False when the run is no longer leased to `owner` at `epoch`."""
        async with self._db.session() as session:
            moved = await session.execute(
                update(RunRow)
                .where(
                    RunRow.id == run_id,
                    RunRow.epoch == epoch,
                    RunRow.lease_owner == owner,
                    RunRow.status == "running",
                )
                .values(
                    status="queued", lease_owner=None, lease_expires_at=None, attempts=RunRow.attempts - 1
                )
                .execution_options(synchronize_session=False)
            )
        return bool(moved.rowcount)  # type: ignore[attr-defined]

    async def has_queued(self) -> bool:
        return await self._exists("SELECT 1 FROM runs WHERE status = 'queued' LIMIT 1", {})

    async def take_over(self, owner: str, limit: int, *, handed_back: bool = False) -> list[RunJob]:
        """Lease up to `limit` running runs whose holder's lease expired (it died or paused), or with
        `handed_back` the ones a draining worker released (their lease has no owner)."""
        now = utcnow()
        owned = "IS NULL" if handed_back else "IS NOT NULL"
        if not await self._exists(_DUE.format(owned=owned), {"now": now}):
            return []  # the common case, every sweep: nothing expired
        expired = or_(RunRow.lease_expires_at.is_(None), RunRow.lease_expires_at < now)
        owner_test = RunRow.lease_owner.is_(None) if handed_back else RunRow.lease_owner.is_not(None)
        due = (RunRow.status == "running", expired, owner_test)
        rows = await self._take(owner, self._oldest(limit, *due), *due, start=False)
        return [RunJob.from_row(row, takeover=True, handed_back=handed_back) for row in rows]

    async def renew(self, owner: str, held: Mapping[str, int]) -> Renewal:
        """Extend the leases this worker holds; says which it lost and which were asked to stop."""
        if not held:
            return Renewal(frozenset(), frozenset())
        params: dict[str, Any] = {"owner": owner, "until": self._until(utcnow())}
        pairs = []
        for i, (run_id, epoch) in enumerate(held.items()):
            pairs.append(f"(id = :id{i} AND epoch = :epoch{i})")
            params |= {f"id{i}": run_id, f"epoch{i}": epoch}
        async with self._direct.transaction() as tx:
            rows = await tx.fetch(_RENEW.format(held=" OR ".join(pairs)), params)
        return Renewal(
            lost=frozenset(set(held) - {run_id for run_id, _ in rows}),
            cancel=frozenset(
                run_id for run_id, cancel_requested_at in rows if cancel_requested_at is not None
            ),
        )

    async def release(self, owner: str, held: Mapping[str, int]) -> None:
        """Hand runs back: their leases expire now, so another worker takes them over at once."""
        if not held:
            return
        async with self._db.session() as session:
            await session.execute(
                update(RunRow)
                .where(
                    tuple_(RunRow.id, RunRow.epoch).in_(list(held.items())),
                    RunRow.lease_owner == owner,
                    RunRow.status == "running",
                )
                .values(lease_owner=None, lease_expires_at=utcnow() - timedelta(seconds=1))
                .execution_options(synchronize_session=False)
            )

    async def finish(
        self,
        tx: Transaction,
        *,
        run_id: str,
        user_id: str,
        thread_id: str,
        epoch: int,
        outcome: Outcome,
        owed: bool = True,
    ) -> None:
        """Record the run's end inside the caller's transaction (with its final event); Fenced when the
        caller's epoch is no longer the run's. With `owed`, the final event is then owed to the bus (the
        outbox) until `mark_published`; without (an in-process bus), it counts as published already."""
        now = utcnow()
        ended = await tx.execute(
            _END_RUN,
            {
                "id": run_id,
                "epoch": epoch,
                "status": outcome.status,
                "now": now,
                "last_seq": outcome.last_seq,
                "error_code": outcome.error_code,
                "report": outcome.report,
                "markdown": outcome.markdown,
                "published": not owed,
                "until": self._until(now),
            },
        )
        if ended != 1:
            raise Fenced(run_id)
        message: dict[str, Any] = {"id": str(uuid.uuid4()), "thread_id": thread_id, "user_id": user_id}
        message |= {"role": "assistant"}
        message |= {"content": outcome.markdown, "run_id": run_id, "client_message_id": None}
        await tx.execute(INSERT_MESSAGE, message | {"created_at": now})

    async def mark_published(self, run_ids: Iterable[str]) -> None:
        ids = list(run_ids)
        if not ids:
            return
        names, params = expand("run", ids)
        async with self._direct.transaction() as tx:
            await tx.execute(_PUBLISHED.format(ids=names), params)

    async def unpublished(self, limit: int = 100) -> list[tuple[str, str, int]]:
        """(run_id, user_id, last_seq) of ended runs whose final event its holder may not have published: the
        holder's lease expired before it said it had."""
        async with self._direct.transaction() as tx:
            rows = await tx.fetch(_UNPUBLISHED, {"now": utcnow(), "limit": limit})
        return [(run_id, user_id, last_seq) for run_id, user_id, last_seq in rows]

    async def request_cancel(self, user_id: str, run_id: str) -> bool:
        """Persist a stop request (the holder reads it at its next renewal); False if the run ended."""
        async with self._db.session() as session:
            asked = await session.execute(
                update(RunRow)
                .where(RunRow.id == run_id, RunRow.user_id == user_id, RunRow.status.in_(ACTIVE))
                .values(cancel_requested_at=utcnow())
                .execution_options(synchronize_session=False)
            )
        return bool(asked.rowcount)  # type: ignore[attr-defined]

    async def claim_queued(self, owner: str, run_id: str) -> RunJob | None:
        """Lease one run only if it is still queued (a stop before any worker took it)."""
        rows = await self._take(owner, RunRow.id == run_id, RunRow.status == "queued", start=True)
        return RunJob.from_row(rows[0], takeover=False) if rows else None

    async def purge_expired_credentials(self) -> int:
        """Delete WebSocket tickets and refresh tokens past their expiry; how many went."""
        now = utcnow()
        async with self._db.session() as session:
            tickets = await session.execute(delete(WsTicketRow).where(WsTicketRow.expires_at < now))
            tokens = await session.execute(delete(RefreshTokenRow).where(RefreshTokenRow.expires_at < now))
        return int(tickets.rowcount or 0) + int(tokens.rowcount or 0)  # type: ignore[attr-defined]
