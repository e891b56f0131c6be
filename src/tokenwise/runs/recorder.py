"""The EventSink of one run held by one lease: numbers events, appends them, holds back the final one."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from tokenwise.agents.catalogue import SUPERVISOR_DESCRIPTION
from tokenwise.runs.event_log import EventLog
from tokenwise.session.events import SUPERVISOR, RunEvent

log = logging.getLogger(__name__)


def opening(*, user_id: str, run_id: str, thread_id: str) -> RunEvent:
    """A run's first event, the supervisor's `agent_started` (seq 1): stored with the run by whoever stores
    it (services/chat.py) and sent with the ack, so the first event a user waits for needs no worker."""
    return RunEvent.create(
        user_id=user_id,
        run_id=run_id,
        thread_id=thread_id,
        seq=1,
        type="agent_started",
        agent_name=SUPERVISOR,
        data={"description": SUPERVISOR_DESCRIPTION},
    )


class RunRecorder:
    """Seqs continue from what is stored (`seq` is set by whoever claims the run); every append carries
    the lease's `epoch`. Once fenced out, it records nothing more: another holder owns the run."""

    def __init__(
        self,
        event_log: EventLog,
        *,
        user_id: str,
        run_id: str,
        thread_id: str,
        epoch: int,
        seq: int = 0,
        results: dict[str, dict[str, Any]] | None = None,
        on_fenced: Callable[[], None] | None = None,
    ) -> None:
        self._log, self.user_id, self.run_id, self.thread_id = event_log, user_id, run_id, thread_id
        self.epoch, self.seq = epoch, seq
        self.final: RunEvent | None = None
        self.fenced = False
        # Agent results checkpointed with each agent_completed (None: no checkpoints kept).
        self.results = results
        self._on_fenced = on_fenced

    def fence(self) -> None:
        if not self.fenced:
            self.fenced = True
            if self._on_fenced is not None:
                self._on_fenced()

    def emit(self, type: str, agent_name: str, data: dict[str, Any], tool_name: str | None = None) -> None:
        if self.fenced:
            return  # the lease is someone else's: whatever this holder still does is not recorded
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
            return
        self._log.append(event, self)
        if self.results is not None and type == "agent_completed" and agent_name != SUPERVISOR:
            self._checkpoint()

    def _checkpoint(self) -> None:
        assert self.results is not None
        try:
            # A copy as JSON: what is stored is what a takeover reads, and later changes do not leak in.
            results = json.loads(json.dumps(self.results))
        except (TypeError, ValueError):
            log.warning("run %s: agent results are not JSON; no checkpoint", self.run_id)
            return
        self._log.checkpoint(self.run_id, self, results)


def end(recorder: RunRecorder, code: str, message: str, **extra: Any) -> None:
    """Close a run that has no final event yet with the supervisor's final agent_error."""
    if recorder.final is not None or recorder.fenced:
        return
    if recorder.seq == 0:
        recorder.emit("agent_started", SUPERVISOR, {})
    recorder.emit("agent_error", SUPERVISOR, {"code": code, "message": message, "final": True, **extra})


def close_open_steps(recorder: RunRecorder, events: list[dict[str, Any]], message: str) -> list[str]:
    """Close the tool call and sub-agents an interrupted holder left open, so the run still obeys the
    ordering contract; returns the sub-agents that were open (the step a continuation runs again)."""
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
    interrupted = [a for a in open_agents if a != SUPERVISOR]
    for agent in reversed(interrupted):
        recorder.emit("agent_error", agent, {"code": "interrupted", "message": message})
    return interrupted
