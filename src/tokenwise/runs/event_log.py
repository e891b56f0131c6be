"""The run event log: every event is committed to storage, then published on the bus.

Appends are group-committed: one writer task drains whatever has queued up and stores it in a single
transaction, so throughput grows with load instead of paying one commit per event. Publishing only after
the commit is what makes resume exact: anything a client could have seen is already readable.

Every append carries its writer's lease epoch. The batch's transaction first reads which of
its runs still have that epoch (the fence, a shared row lock on PostgreSQL); the events of a run whose
writer was fenced out are dropped and that writer is told, and no other run's events are touched.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select

from tokenwise.bus.base import RESYNC_S, EventBus
from tokenwise.db.database import Database
from tokenwise.db.direct import Transaction, expand
from tokenwise.db.tables import RunEventRow, RunRow, utcnow
from tokenwise.errors import ServiceUnavailable
from tokenwise.session.events import RunEvent

log = logging.getLogger(__name__)
_BATCH = 512
_FENCE = "SELECT id, epoch FROM runs WHERE status = 'running' AND id IN ({ids}){lock}"
_INSERT_EVENT = "INSERT INTO run_events (run_id, seq, type, body) VALUES (:run_id, :seq, :type, :body)"
_RETRY_S = 0.5
_LINGER_S = 0.002
# The runs stored lately (`started_since`): how far back, how many, and how long one lookup serves.
_RECENT_S = 60.0
_RECENT_MAX = 5000
_RECENT_FRESH_S = RESYNC_S / 2


class Writer(Protocol):
    """Who appends a run's events: the epoch of its lease, and how it learns it lost the lease."""

    epoch: int

    def fence(self) -> None: ...


@dataclass(frozen=True, slots=True)
class _Append:
    event: RunEvent
    writer: Writer


@dataclass(frozen=True, slots=True)
class _Checkpoint:
    run_id: str
    writer: Writer
    results: dict[str, Any]


_Item = _Append | _Checkpoint | asyncio.Future[None]


def _urgent(item: _Item) -> bool:
    """A run's first events (its first is stored with the run: services/chat.py; the next is the first a
    worker appends, what its user waits for next) or a flush (a run's end waits on it)."""
    return isinstance(item, asyncio.Future) or (isinstance(item, _Append) and item.event.seq <= 2)


class EventLog:
    def __init__(self, db: Database, bus: EventBus) -> None:
        self._db, self._bus = db, bus
        self._direct = db.direct
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._lingering: asyncio.Future[None] | None = None  # the writer's moment for more events
        self._recent: tuple[float, list[RunRow]] | None = None  # (when looked up, the runs)
        self._recent_lock = asyncio.Lock()

    def start(self) -> None:
        self._writer = asyncio.create_task(self._write_forever(), name="event-log-writer")

    async def stop(self) -> None:
        if self._writer is not None:
            await self.flush()
            self._writer.cancel()
            self._writer = None

    def append(self, event: RunEvent, writer: Writer) -> None:
        """Queue an event for storage and delivery, in append order."""
        item = _Append(event, writer)
        self._queue.put_nowait(item)
        if _urgent(item):
            self._hurry()

    def _hurry(self) -> None:
        if self._lingering is not None and not self._lingering.done():
            self._lingering.set_result(None)

    async def _linger(self) -> None:
        loop = asyncio.get_running_loop()
        self._lingering = loop.create_future()
        timer = loop.call_later(_LINGER_S, self._hurry)
        try:
            await self._lingering
        finally:
            timer.cancel()
            self._lingering = None

    def checkpoint(self, run_id: str, writer: Writer, results: dict[str, Any]) -> None:
        """Store the run's agent results with the events appended so far (what a takeover continues)."""
        self._queue.put_nowait(_Checkpoint(run_id, writer, results))

    async def flush(self) -> None:
        """Wait until every event appended so far is stored and published."""
        done = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(done)
        self._hurry()
        await done

    @staticmethod
    async def store_in(tx: Transaction, events: Sequence[RunEvent]) -> None:
        """Store events inside the caller's transaction (a run's final event, with the run's outcome)."""
        rows = [{"run_id": e.run_id, "seq": e.seq, "type": e.type, "body": e.body} for e in events]
        await tx.executemany(_INSERT_EVENT, rows)

    async def read(
        self, user_id: str, run_id: str, after_seq: int, until_seq: int | None = None
    ) -> list[RunEvent]:
        """Stored events of a run with after_seq < seq (<= until_seq), in order."""
        query = select(RunEventRow.body).where(RunEventRow.run_id == run_id, RunEventRow.seq > after_seq)
        if until_seq is not None:
            query = query.where(RunEventRow.seq <= until_seq)
        async with self._db.session() as session:
            bodies = (await session.scalars(query.order_by(RunEventRow.seq))).all()
        return [RunEvent.from_body(user_id, body) for body in bodies]

    async def started_since(self, user_id: str, since: datetime) -> list[str]:
        """The user's runs stored at or after `since` (within the last minute), oldest first: for a feed
        that cannot count on the bus to announce them (Redis away). One lookup serves every feed of this
        process for half a resync, so an outage costs the database a query or two a second per process,
        not one per connection."""
        loop = asyncio.get_running_loop()
        async with self._recent_lock:
            if self._recent is None or loop.time() - self._recent[0] >= _RECENT_FRESH_S:
                rows = await self._direct.rows(
                    RunRow,
                    "created_at >= :since",
                    {"since": utcnow() - timedelta(seconds=_RECENT_S)},
                    order_by="created_at DESC",
                    columns=("id", "user_id", "created_at"),
                    limit=_RECENT_MAX,
                )
                self._recent = (loop.time(), rows[::-1])
            recent = self._recent[1]
        return [run.id for run in recent if run.user_id == user_id and run.created_at >= since]

    async def _store(
        self, groups: dict[tuple[str, int], list[_Append]], checkpoints: list[_Checkpoint]
    ) -> set[tuple[str, int]]:
        """Store the groups whose writer still holds its run, in one transaction; the fenced keys."""
        async with self._direct.transaction() as tx:
            # FOR SHARE (PostgreSQL): a takeover's UPDATE of the row waits for this batch's commit, so
            # the new holder numbers on from everything this holder stored. SQLite has one writer.
            keys = set(groups) | {(point.run_id, point.writer.epoch) for point in checkpoints}
            ids, params = expand("run", sorted({run_id for run_id, _ in keys}))
            lock = "" if tx.is_sqlite else " FOR SHARE"
            kept = await tx.fetch(_FENCE.format(ids=ids, lock=lock), params)
            current = {(run_id, epoch) for run_id, epoch in kept} & keys
            events = [a.event for key in groups if key in current for a in groups[key]]
            if events:
                await self.store_in(tx, events)
            for point in checkpoints:
                if (point.run_id, point.writer.epoch) in current:
                    await tx.execute(
                        "UPDATE runs SET checkpoint = :checkpoint WHERE id = :id AND epoch = :epoch",
                        {"checkpoint": point.results, "id": point.run_id, "epoch": point.writer.epoch},
                    )
        return set(groups) - current

    async def _write_forever(self) -> None:
        while True:
            batch = [await self._queue.get()]
            if not _urgent(batch[0]):
                # A moment for the events right behind it: every commit rewrites whole pages of the
                # log, so one commit for several runs' steps instead of one each writes a fraction of
                # it, and the checkpoints that sync it stay small. A run's first event (or a flush)
                # cuts the moment short: that is what a user is waiting for.
                await self._linger()
            while len(batch) < _BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            groups: defaultdict[tuple[str, int], list[_Append]] = defaultdict(list)
            for item in batch:
                if isinstance(item, _Append):
                    groups[(item.event.run_id, item.writer.epoch)].append(item)
            checkpoints = [item for item in batch if isinstance(item, _Checkpoint)]
            stored = await self._store_batch(dict(groups), checkpoints)
            await self._bus.publish_many([append.event for key in stored for append in groups[key]])
            for item in batch:
                if isinstance(item, asyncio.Future) and not item.done():
                    item.set_result(None)

    async def _store_batch(
        self, groups: dict[tuple[str, int], list[_Append]], checkpoints: list[_Checkpoint]
    ) -> list[tuple[str, int]]:
        """Store a batch (retrying while the database is away); the keys stored, in append order."""
        if not groups and not checkpoints:
            return []
        while True:
            try:
                fenced = await self._store(groups, checkpoints)
                break
            except ServiceUnavailable:
                # Keep the events and their order; they are delivered once the database is back.
                log.warning("event log: database unavailable, retrying %d runs' events", len(groups))
                await asyncio.sleep(_RETRY_S)
            except Exception:
                if len(groups) <= 1:
                    # A bug must not stop the writer for every other run: this run's writer stops, and
                    # the run is ended by whoever takes over its lease.
                    log.exception("event log: could not store the events of %s; dropped", list(groups))
                    fenced = set(groups)
                    break
                # Find the one run at fault by storing each run on its own.
                stored: list[tuple[str, int]] = []
                for key, appends in groups.items():
                    stored += await self._store_batch({key: appends}, [])
                return stored
        for key in fenced:
            groups[key][0].writer.fence()
            log.warning("event log: run %s epoch %d was taken over; its writer is fenced out", *key)
        return [key for key in groups if key not in fenced]
