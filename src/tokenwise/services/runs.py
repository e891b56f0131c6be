"""Runs as the API sees them: wake a worker for a queued run, and stop a run wherever it executes.

The API process executes nothing itself (unless it embeds a worker, `role=all`): a stored message is
a queued run, and some worker claims it. A stop is persisted on the run (the holder reads it at its
next lease renewal) and signalled over the bus (the holder stops at once). A run no worker has claimed
yet is ended here, under a lease of its own, so a stop never waits for a worker.
"""

from __future__ import annotations

import asyncio
import logging

from tokenwise.agents.base import RunOutcome
from tokenwise.bus.base import EventBus
from tokenwise.db.tables import RunRow
from tokenwise.runs.executor import Executor
from tokenwise.runs.queue import Lease, RunJob, RunQueue
from tokenwise.runs.recorder import end
from tokenwise.runs.worker import CANCEL, WAKE, Worker, worker_id
from tokenwise.services.chat import Chat, Submission

log = logging.getLogger(__name__)


class Runs:
    def __init__(
        self,
        chat: Chat,
        queue: RunQueue,
        bus: EventBus,
        executor: Executor,
        worker: Worker | None,
    ) -> None:
        self._chat, self._queue, self._bus, self._executor = chat, queue, bus, executor
        self.worker = worker
        self._owner = f"api:{worker_id()}"
        self._requeues: set[asyncio.Future[None]] = set()

    def reserve(self, user_id: str | None = None) -> Lease | None:
        """A lease for a run about to be stored, when this process's own worker has a free slot (for
        `user_id`'s runs, when given): the run then goes straight to it (`started`), which keeps the
        embedded golden path one transaction short. A user at its share is stored queued instead."""
        if self.worker is None or (user_id is not None and not self.worker.admits(user_id)):
            return None
        if not self.worker.reserve():
            return None
        return self._queue.lease(self.worker.owner)

    async def started(self, user_id: str, submission: Submission | None, lease: Lease | None) -> None:
        """After a submit: hand a leased run to the worker, or wake a worker for a queued one.

        A leased run whose user already executes its share of the worker (`worker_runs_per_user`) goes
        back to the queue instead; the worker claims it when one of that user's runs ends. Only such a
        run costs a write more: the worker counts its runs per user in memory."""
        worker = self.worker
        if lease is not None and worker is not None:
            if submission is None or not submission.is_new:
                worker.unreserve()
                return
            job = RunJob(
                run_id=submission.run_id,
                user_id=user_id,
                thread_id=submission.thread_id,
                question=submission.question,
                opens_thread=submission.opens_thread,
                epoch=1,
                attempts=1,
                checkpoint=None,
                takeover=False,
                stop_after=submission.stop_after,
                announced=submission.first is not None,
            )
            if worker.admits(user_id):
                worker.adopt(job)
                return
            worker.unreserve()
            # Its own task: the run is stored leased here, so it is queued (or started) even if the
            # caller (the connection's handler) is cancelled meanwhile.
            requeue = asyncio.ensure_future(self._requeue(worker, job))
            self._requeues.add(requeue)
            requeue.add_done_callback(self._requeues.discard)
            await asyncio.shield(requeue)
        elif submission is not None and submission.is_new:
            await self.wake()

    async def _requeue(self, worker: Worker, job: RunJob) -> None:
        try:
            queued = await self._queue.requeue(worker.owner, job.run_id, job.epoch)
        except Exception:
            log.exception("run %s: could not put it back in the queue; it starts now", job.run_id)
            queued = False
        if queued:
            worker.wake()  # one of the user's runs may have ended meanwhile
        else:
            worker.adopt(job, reserved=False)  # still leased here: it runs over the user's share

    async def wake(self) -> None:
        """A run was queued: the in-process worker, or every worker over the bus, looks now."""
        if self.worker is not None:
            self.worker.wake()
        else:
            await self._bus.signal(WAKE, "")

    async def cancel(self, user_id: str, run_id: str) -> RunRow:
        """Stop a run of this user (NotFound for anyone else's); a finished run is left as it is."""
        run = await self._chat.get_run(user_id, run_id)
        if run.status not in ("queued", "running"):
            return run
        if self.worker is not None and self.worker.cancel(run_id):
            return run  # held right here: stopped at once
        if not await self._queue.request_cancel(user_id, run_id):
            return await self._chat.get_run(user_id, run_id)  # it ended meanwhile
        await self._bus.signal(CANCEL, run_id)
        job = await self._queue.claim_queued(self._owner, run_id)
        if job is not None:
            recorder = self._executor.recorder(job)
            end(recorder, "cancelled", "the run was stopped before it started")
            await self._executor.finish(
                job, recorder, RunOutcome("cancelled", {}, "", error_code="cancelled")
            )
            await self._queue.mark_published([run_id])
        return run
