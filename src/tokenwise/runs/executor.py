"""One claimed run: the pipeline (or what is left of it after a takeover), then its end, recorded once.

The end - final event, outcome and the assistant's message - is one transaction fenced by the lease's
epoch, so of two holders at most one ends the run. It is published after the commit; if the holder dies
in between, the sweeper publishes it (the `final_published` outbox, kept when the bus crosses processes).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable

from tokenwise.agents.base import RunContext, RunOutcome, ThreadContext, UsageSource
from tokenwise.bus.base import EventBus
from tokenwise.config import Recovery
from tokenwise.db.database import Database
from tokenwise.errors import ServiceUnavailable
from tokenwise.faults import FaultPoint, die_at
from tokenwise.runs.event_log import EventLog
from tokenwise.runs.queue import Fenced, Outcome, RunJob, RunQueue
from tokenwise.runs.recorder import RunRecorder, close_open_steps, end
from tokenwise.session.events import RunEvent

log = logging.getLogger(__name__)
Pipeline = Callable[[RunContext], Awaitable[RunOutcome]]
ThreadFor = Callable[[RunJob], ThreadContext]
_FINISH_ATTEMPTS = 120
_STOPPED = "the worker running this run stopped"


class Executor:
    def __init__(
        self,
        db: Database,
        event_log: EventLog,
        queue: RunQueue,
        bus: EventBus,
        pipeline: Pipeline,
        usage_for: Callable[[str], UsageSource],
        thread_for: ThreadFor,
        *,
        recovery: Recovery = Recovery.INTERRUPT,
        on_finished: Callable[[float], None] = lambda _s: None,
        on_published: Callable[[str], None] = lambda _run_id: None,
        fault: FaultPoint | None = None,
    ) -> None:
        self._db, self._log, self._queue, self._bus = db, event_log, queue, bus
        self._direct = db.direct
        self._pipeline, self._usage_for, self._thread_for = pipeline, usage_for, thread_for
        self.recovery, self._on_finished, self._on_published = recovery, on_finished, on_published
        self._fault = fault  # TEST ONLY (faults.py)
        # The outbox only where a subscriber can outlive this process. Marking finals published is an
        # UPDATE of the run's row, report included (about 4 KiB of log per run, in one burst every
        # heartbeat): on SQLite that burst held the one connection up to 50 ms, other runs' first events
        # waiting behind it.
        self._owed = bus.crosses_processes

    def recorder(self, job: RunJob, on_fenced: Callable[[], None] | None = None) -> RunRecorder:
        results = dict(job.checkpoint or {}) if self.recovery is Recovery.CONTINUE else None
        return RunRecorder(
            self._log,
            user_id=job.user_id,
            run_id=job.run_id,
            thread_id=job.thread_id,
            epoch=job.epoch,
            seq=1 if job.announced else 0,  # a takeover numbers on from what is stored (_take_over)
            results=results,
            on_fenced=on_fenced,
        )

    def context(self, job: RunJob, recorder: RunRecorder) -> RunContext:
        return RunContext(
            run_id=job.run_id,
            user_id=job.user_id,
            thread_id=job.thread_id,
            question=job.question,
            sink=recorder,
            usage=self._usage_for(job.user_id),
            results=recorder.results if recorder.results is not None else {},
            thread=self._thread_for(job),
            stop_after=job.stop_after,
            announced=job.announced,
        )

    async def execute(self, job: RunJob, recorder: RunRecorder) -> None:
        """Run the job to its end; a takeover first closes what its previous holder left open."""
        context = self.context(job, recorder)
        loop = asyncio.get_running_loop()
        started = loop.time()
        outcome: RunOutcome | None = None
        if job.takeover:
            outcome = await self._take_over(job, recorder, context)
        if outcome is None:
            outcome = await self._run_pipeline(context, recorder)
        if recorder.fenced:
            return
        end(recorder, "internal_error", "the pipeline ended without a final event")
        # A stop that arrives once the pipeline has ended must not cut recording its end short: the final
        # event would never be stored or sent and the run would stay "running" for ever.
        finishing = asyncio.ensure_future(self.finish(job, recorder, outcome))
        while not finishing.done():
            try:
                await asyncio.shield(finishing)
            except asyncio.CancelledError:
                if finishing.cancelled():
                    raise
                task = asyncio.current_task()
                if task is not None:
                    task.uncancel()
        finishing.result()
        self._on_finished(loop.time() - started)

    async def _take_over(self, job: RunJob, recorder: RunRecorder, context: RunContext) -> RunOutcome | None:
        """Pick up after a dead holder: None when the pipeline should run (on) from here."""
        stored = await self._log.read(job.user_id, job.run_id, 0)
        recorder.seq = stored[-1].seq if stored else 0
        # A run a draining worker handed back goes on; one whose holder died, as the setting says.
        can_continue = (job.handed_back or self.recovery is Recovery.CONTINUE) and bool(job.question)
        if not stored and can_continue:
            return None  # it died before its first event was stored: start afresh
        message = f"{_STOPPED}; this step runs again" if can_continue else _STOPPED
        close_open_steps(recorder, [event.envelope() for event in stored], message)
        if can_continue:
            context.resumed = True
            return None
        end(recorder, "interrupted", "the server stopped while this run was in progress; ask again")
        return RunOutcome("failed", {}, "", error_code="interrupted")

    async def _run_pipeline(self, context: RunContext, recorder: RunRecorder) -> RunOutcome:
        try:
            return await self._pipeline(context)
        except asyncio.CancelledError:
            # Cancelled before the pipeline ran a line (once running, it handles cancellation itself).
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            end(recorder, "cancelled", "the run was stopped before it started")
            return RunOutcome("cancelled", {}, "", error_code="cancelled")
        except Exception:
            error_id = uuid.uuid4().hex[:12]
            log.exception("run %s failed outside the supervisor [error_id=%s]", context.run_id, error_id)
            end(recorder, "internal_error", f"internal error (error id {error_id})", error_id=error_id)
            return RunOutcome("failed", {}, "", error_code="internal_error")

    async def finish(self, job: RunJob, recorder: RunRecorder, outcome: RunOutcome) -> None:
        """Commit the final event with the run's outcome (fenced), then publish it."""
        final = recorder.final
        if final is None or recorder.fenced:
            return
        await self._log.flush()
        if recorder.fenced:  # the flush found the lease taken over
            return
        ending = Outcome(outcome.status, recorder.seq, outcome.error_code, outcome.report, outcome.markdown)
        for attempt in range(_FINISH_ATTEMPTS):
            try:
                async with self._direct.transaction() as tx:
                    await self._queue.finish(
                        tx,
                        run_id=job.run_id,
                        user_id=job.user_id,
                        thread_id=job.thread_id,
                        epoch=job.epoch,
                        outcome=ending,
                        owed=self._owed,
                    )
                    await self._log.store_in(tx, [final])
                break
            except Fenced:
                log.warning(
                    "run %s was taken over before it ended here; its end is the new holder's", job.run_id
                )
                recorder.fence()
                return
            except ServiceUnavailable:
                if attempt == _FINISH_ATTEMPTS - 1:
                    log.error("run %s: database unavailable, could not record its end", job.run_id)
                    return
                await asyncio.sleep(0.5)
        die_at(self._fault, FaultPoint.DIE_BEFORE_FINAL_PUBLISH)
        await self.publish_final(final)

    async def publish_final(self, final: RunEvent) -> None:
        await self._bus.publish(final)
        if self._owed:
            self._on_published(final.run_id)
