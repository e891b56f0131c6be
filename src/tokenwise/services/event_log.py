"""The run event log: every event is committed to storage, then published on the bus.

Appends are group-committed: one writer task drains whatever has queued up and stores it in a single
transaction, so throughput grows with load instead of paying one commit per event. Publishing only after
the commit is what makes resume exact: anything a client could have seen is already readable.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from tokenwise.bus.base import EventBus
from tokenwise.db.database import Database
from tokenwise.db.tables import RunEventRow
from tokenwise.errors import ServiceUnavailable
from tokenwise.session.events import RunEvent

log = logging.getLogger(__name__)
_BATCH = 512
_RETRY_S = 0.5


class EventLog:
    def __init__(self, db: Database, bus: EventBus) -> None:
        self._db, self._bus = db, bus
        self._queue: asyncio.Queue[RunEvent | asyncio.Future[None]] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._writer = asyncio.create_task(self._write_forever(), name="event-log-writer")

    async def stop(self) -> None:
        if self._writer is not None:
            await self.flush()
            self._writer.cancel()
            self._writer = None

    def append(self, event: RunEvent) -> None:
        """Queue an event for storage and delivery, in append order."""
        self._queue.put_nowait(event)

    async def flush(self) -> None:
        """Wait until every event appended so far is stored and published."""
        done = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(done)
        await done

    @staticmethod
    async def store_in(session: AsyncSession, events: Sequence[RunEvent]) -> None:
        """Store events inside the caller's transaction (a run's final event, with the run's outcome)."""
        rows = [{"run_id": e.run_id, "seq": e.seq, "type": e.type, "body": e.body} for e in events]
        await session.execute(insert(RunEventRow), rows)

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

    async def _store(self, events: Sequence[RunEvent]) -> None:
        async with self._db.session() as session:
            await self.store_in(session, events)

    async def _write_forever(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < _BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            events = [item for item in batch if isinstance(item, RunEvent)]
            while events:
                try:
                    await self._store(events)
                    break
                except ServiceUnavailable:
                    # Keep the events and their order; they are delivered once the database is back.
                    log.warning("event log: database unavailable, retrying %d events", len(events))
                    await asyncio.sleep(_RETRY_S)
                except Exception:
                    # A bug must not stop the writer for every other run; the lost events are logged.
                    log.exception("event log: could not store %d events; dropped", len(events))
                    events = []
            for event in events:
                await self._bus.publish(event)
            for item in batch:
                if isinstance(item, asyncio.Future) and not item.done():
                    item.set_result(None)
