"""Runs: execute the agent pipeline for a submitted message, record its events, finish it exactly once."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import select

from tokenwise.agents.base import NoThreadContext, RunContext, RunOutcome, UsageSource
from tokenwise.bus.base import EventBus
from tokenwise.db.database import Database
from tokenwise.db.tables import RunRow
from tokenwise.errors import ServiceUnavailable
from tokenwise.services.chat import Chat, Submission, ThreadTurns
from tokenwise.services.event_log import EventLog
from tokenwise.session.events import SUPERVISOR, RunEvent

log = logging.getLogger(__name__)
Pipeline = Callable[[RunContext], Awaitable[RunOutcome]]
_FINISH_ATTEMPTS = 120


class RunRecorder:
    """The EventSink of one run: numbers events, appends them to the log, holds back the final one."""

    def __init__(self, event_log: EventLog, *, user_id: str, run_id: str, thread_id: str) -> None:
        self._log, self.user_id, self.run_id, self.thread_id = event_log, user_id, run_id, thread_id
        self.seq = 0
        self.final: RunEvent | None = None

    def emit(self, type: str, agent_name: str, data: dict[str, Any], tool_name: str | None = None) -> None:
        if self.final is not None:
            raise RuntimeError(f"run {self.run_id} already ended; {type} from {agent_name} refused")
        self.seq += 1
        event = RunEvent.create(
            user_id=self.user_id,
            run_id=self.run_id,
            thread_id=self.thread_id,
            seq=self.seq,
            type=type,
            agent_name=agent_name,
            data=data,
            tool_name=tool_name,
        )
        if event.final:
            # Committed together with the run's outcome, so whoever sees it can read the finished run.
            self.final = event
        else:
            self._log.append(event)


def _end(recorder: RunRecorder, code: str, message: str, **extra: Any) -> None:
    """Close a run that has no final event yet with the supervisor's final agent_error."""
    if recorder.final is not None:
        return
    if recorder.seq == 0:
        recorder.emit("agent_started", SUPERVISOR, {})
    recorder.emit("agent_error", SUPERVISOR, {"code": code, "message": message, "final": True, **extra})


def _close_open_steps(recorder: RunRecorder, events: list[dict[str, Any]]) -> None:
    """Close the tool call and sub-agents an interrupted run left open, so it still obeys the contract."""
    open_agents: dict[str, None] = {}
    open_call: dict[str, Any] | None = None
    for event in events:
        kind, agent = event["type"], event["agent_name"]
        if kind == "agent_started":
            open_agents[agent] = None
        elif kind in ("agent_completed", "agent_error"):
            open_agents.pop(agent, None)
        elif kind == "tool_executing":
            open_call = event
        elif kind == "tool_completed":
            open_call = None
    if open_call is not None:
        recorder.emit(
            "tool_completed",
            open_call["agent_name"],
            {
                "tool_call_id": open_call["data"].get("tool_call_id"),
                "result": {"error": "interrupted"},
                "duration_ms": 0.0,
            },
            tool_name=open_call.get("tool_name"),
        )
    for agent in reversed([a for a in open_agents if a != SUPERVISOR]):
        recorder.emit("agent_error", agent, {"code": "interrupted", "message": "the server stopped"})


class Runs:
    """Starts, cancels and finishes the runs of this process."""

    def __init__(
        self,
        db: Database,
        event_log: EventLog,
        bus: EventBus,
        chat: Chat,
        pipeline: Pipeline,
        usage_for: Callable[[str], UsageSource],
        on_finished: Callable[[float], None],
    ) -> None:
        self._db, self._log, self._bus, self._chat = db, event_log, bus, chat
        self._pipeline, self._usage_for, self._on_finished = pipeline, usage_for, on_finished
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._owners: dict[str, str] = {}
        self._endings: set[asyncio.Future[None]] = set()

    def start(self, user_id: str, submission: Submission) -> None:
        """Run the pipeline for a new submission in the background."""
        recorder = RunRecorder(
            self._log, user_id=user_id, run_id=submission.run_id, thread_id=submission.thread_id
        )
        context = RunContext(
            run_id=submission.run_id,
            user_id=user_id,
            thread_id=submission.thread_id,
            question=submission.question,
            sink=recorder,
            usage=self._usage_for(user_id),
            # a new thread has no earlier turns: no query on the way to the answer
            thread=NoThreadContext()
            if submission.opens_thread
            else ThreadTurns(self._chat, user_id, submission.thread_id, submission.run_id),
        )
        task = asyncio.create_task(self._execute(context, recorder), name=f"run-{submission.run_id}")
        self._tasks[submission.run_id] = task
        self._owners[submission.run_id] = user_id

        def done(finished: asyncio.Task[None]) -> None:
            self._tasks.pop(submission.run_id, None)
            self._owners.pop(submission.run_id, None)
            if finished.cancelled() and recorder.final is None:
                # Cancelled before its first step, the task never entered _execute: end the run here.
                _end(recorder, "cancelled", "the run was stopped before it started")
                assert recorder.final is not None
                outcome = RunOutcome("cancelled", {}, "", error_code="cancelled")
                ending = asyncio.ensure_future(self._finish(context, recorder, recorder.final, outcome))
                self._endings.add(ending)
                ending.add_done_callback(self._endings.discard)

        task.add_done_callback(done)

    async def cancel(self, user_id: str, run_id: str) -> RunRow:
        """Stop a run of this user (NotFound for anyone else's); a finished run is left as it is."""
        task = self._tasks.get(run_id)
        if task is not None and self._owners.get(run_id) == user_id:
            task.cancel()  # at once: the stop lands before the run takes another step
        return await self._chat.get_run(user_id, run_id)

    async def recover_interrupted(self) -> int:
        """End runs left `running` by a process that died: each gets its final agent_error (interrupted).

        Only safe when this process is the only one running runs (the in-process bus); returns how many.
        """
        async with self._db.session() as session:
            orphans = (
                await session.execute(
                    select(RunRow.id, RunRow.user_id, RunRow.thread_id).where(RunRow.status == "running")
                )
            ).all()
        for run_id, user_id, thread_id in orphans:
            recorder = RunRecorder(self._log, user_id=user_id, run_id=run_id, thread_id=thread_id)
            stored = await self._log.read(user_id, run_id, 0)
            recorder.seq = stored[-1].seq if stored else 0
            _close_open_steps(recorder, [event.envelope() for event in stored])
            _end(recorder, "interrupted", "the server stopped while this run was in progress; ask again")
            assert recorder.final is not None
            outcome = RunOutcome("failed", {}, "", error_code="interrupted")
            context = RunContext(
                run_id=run_id,
                user_id=user_id,
                thread_id=thread_id,
                question="",
                sink=recorder,
                usage=self._usage_for(user_id),
            )
            await self._finish(context, recorder, recorder.final, outcome)
        return len(orphans)

    async def stop(self, grace_s: float) -> None:
        """Let runs finish within the grace period, then cancel the rest (each still ends).

        Runs that start while we wait (a message that was being stored as shutdown began) are waited
        for too, so every acknowledged run ends before connections are told to go.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_s
        while self._tasks and loop.time() < deadline:
            await asyncio.wait(list(self._tasks.values()), timeout=deadline - loop.time())
        pending = list(self._tasks.values())
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=5.0)
        if self._endings:
            await asyncio.wait(list(self._endings), timeout=5.0)

    async def _execute(self, context: RunContext, recorder: RunRecorder) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            outcome = await self._pipeline(context)
        except asyncio.CancelledError:
            # Cancelled before the pipeline ran a line (once running, it handles cancellation itself).
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            outcome = RunOutcome("cancelled", {}, "", error_code="cancelled")
            _end(recorder, "cancelled", "the run was stopped before it started")
        except Exception:
            error_id = uuid.uuid4().hex[:12]
            log.exception("run %s failed outside the supervisor [error_id=%s]", context.run_id, error_id)
            outcome = RunOutcome("failed", {}, "", error_code="internal_error")
            _end(recorder, "internal_error", f"internal error (error id {error_id})", error_id=error_id)
        _end(recorder, "internal_error", "the pipeline ended without a final event")
        assert recorder.final is not None
        # A stop that arrives once the pipeline has ended must not cut recording its end short: the final
        # event would never be stored or sent and the run would stay "running" for ever.
        finishing = asyncio.ensure_future(self._finish(context, recorder, recorder.final, outcome))
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

    async def _finish(
        self, context: RunContext, recorder: RunRecorder, final: RunEvent, outcome: RunOutcome
    ) -> None:
        await self._log.flush()
        for attempt in range(_FINISH_ATTEMPTS):
            try:
                async with self._db.session() as session:
                    await self._log.store_in(session, [final])
                    await Chat.finish_run(
                        session,
                        user_id=context.user_id,
                        thread_id=context.thread_id,
                        run_id=context.run_id,
                        status=outcome.status,
                        last_seq=recorder.seq,
                        error_code=outcome.error_code,
                        report=outcome.report,
                        markdown=outcome.markdown,
                    )
                break
            except ServiceUnavailable:
                if attempt == _FINISH_ATTEMPTS - 1:
                    log.error("run %s: database unavailable, could not record its end", context.run_id)
                    return
                await asyncio.sleep(0.5)
        await self._bus.publish(final)
