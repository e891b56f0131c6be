"""Agents, tools, and the scope through which an agent emits its events and calls its tools."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from tokenwise.agents.base import EventSink, RunContext, RunOutcome
from tokenwise.errors import TokenwiseError

JSON = dict[str, Any]
ToolFn = Callable[[RunContext, JSON], Awaitable[JSON]]


def _same(result: JSON) -> JSON:
    return result


# TEST ONLY: `Settings.test_step_delay_ms` (refused outside development) sets this for a run's task, so
# browser tests can watch a run mid-flight. Zero everywhere else.
STEP_DELAY_S: ContextVar[float] = ContextVar("tokenwise_test_step_delay_s", default=0.0)


async def checkpoint() -> None:
    """Yield to the event loop: a yield, not a delay (unless a test asked for one, above).

    A step that never awaits would run the whole pipeline in one go: its events would be stored and
    delivered only at the end (nothing live), other connections would wait, and a stop could not land.
    """
    await asyncio.sleep(STEP_DELAY_S.get())


def with_step_delay(
    pipeline: Callable[[RunContext], Awaitable[RunOutcome]], delay_s: float
) -> Callable[[RunContext], Awaitable[RunOutcome]]:
    """TEST ONLY: `pipeline` with a pause of `delay_s` at every checkpoint of its runs."""

    async def slowed(ctx: RunContext) -> RunOutcome:
        STEP_DELAY_S.set(delay_s)  # the run's own task context: no other run is affected
        return await pipeline(ctx)

    return slowed


@dataclass(frozen=True)
class Tool:
    """A named operation an agent calls; `compact` shrinks its result for the event stream."""

    name: str
    description: str
    args_schema: JSON
    fn: ToolFn
    compact: Callable[[JSON], JSON] = _same


@dataclass(frozen=True)
class Agent:
    """A sub-agent of the pipeline: what it is, which tools it may call, and how it runs."""

    name: str
    description: str
    tools: Sequence[Tool]
    run: Callable[[RunContext, AgentScope], Awaitable[JSON]]
    # What its agent_completed event carries; the full result stays in `RunContext.results`.
    compact: Callable[[JSON], JSON] = _same


class ToolFailed(Exception):
    """A tool raised; its tool_completed already carries the error."""

    code = "tool_failed"

    def __init__(self, tool_name: str, reason: str) -> None:
        super().__init__(f"tool {tool_name} failed: {reason}")
        self.tool_name = tool_name


def describe(exc: BaseException) -> str:
    """What a client may see of an exception: domain errors say why, anything else only its type."""
    # Arbitrary exception text can carry SQL, paths or connection strings; those stay in the log.
    if isinstance(exc, TokenwiseError | ToolFailed):
        return str(exc)[:300]
    return type(exc).__name__


@dataclass
class _OpenCall:
    agent_name: str
    tool_name: str
    started: float


@dataclass
class CallLedger:
    """Numbers the run's tool calls and remembers which are open, so none is left unanswered."""

    sink: EventSink
    _count: int = 0
    _open: dict[str, _OpenCall] = field(default_factory=dict)

    def begin(self, agent_name: str, tool_name: str, args: JSON) -> str:
        """Emit tool_executing and return the new call's id."""
        self._count += 1
        call_id = f"{agent_name}-{self._count}"
        self._open[call_id] = _OpenCall(agent_name, tool_name, time.perf_counter())
        self.sink.emit("tool_executing", agent_name, {"tool_call_id": call_id, "args": args}, tool_name)
        return call_id

    def finish(self, call_id: str, result: JSON) -> None:
        """Emit the tool_completed that answers `call_id`."""
        call = self._open.pop(call_id)
        duration_ms = round((time.perf_counter() - call.started) * 1000, 3)
        data = {"tool_call_id": call_id, "result": result, "duration_ms": duration_ms}
        self.sink.emit("tool_completed", call.agent_name, data, call.tool_name)

    def close_all(self, reason: str) -> None:
        """Answer every call still open with an error result."""
        for call_id in list(self._open):
            self.finish(call_id, {"error": reason})


@dataclass
class AgentScope:
    """One agent's view of the run: its events carry its name, its tool calls go through the ledger."""

    ctx: RunContext
    agent_name: str
    ledger: CallLedger

    def think(self, thought: str) -> None:
        """Emit agent_thinking."""
        self.ctx.sink.emit("agent_thinking", self.agent_name, {"thought": thought})

    async def stream(self, delta: str) -> None:
        """Emit the next piece of the answer text, and let it go out before the next one."""
        self.ctx.sink.emit("partial_result", self.agent_name, {"delta": delta})
        await checkpoint()

    async def call(self, tool: Tool, args: JSON) -> JSON:
        """Run `tool`, wrapped in its tool_executing / tool_completed pair whatever happens."""
        call_id = self.ledger.begin(self.agent_name, tool.name, args)
        try:
            await checkpoint()
            result = await tool.fn(self.ctx, args)
        except asyncio.CancelledError:
            self.ledger.finish(call_id, {"error": "cancelled"})
            raise
        except Exception as exc:
            reason = describe(exc)
            self.ledger.finish(call_id, {"error": reason})
            raise ToolFailed(tool.name, reason) from exc
        self.ledger.finish(call_id, tool.compact(result))
        return result
