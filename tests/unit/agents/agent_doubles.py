"""Test doubles of the agent interfaces (event sink, usage source) and a checker for event streams."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from tokenwise.agents.base import RunContext
from tokenwise.agents.catalogue import PIPELINE
from tokenwise.agents.tooling import Agent, AgentScope

SUPERVISOR = "supervisor"


@dataclass(frozen=True)
class Event:
    type: str
    agent: str
    data: dict[str, Any]
    tool: str | None


class RecordingSink:
    """Records events and, like the real sink, refuses any event after the final one."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.closed = False

    def emit(self, type: str, agent_name: str, data: dict[str, Any], tool_name: str | None = None) -> None:
        assert not self.closed, f"event after the final one: {type} {agent_name} {data}"
        self.events.append(Event(type, agent_name, data, tool_name))
        if data.get("final"):
            self.closed = True

    def of(self, agent: str) -> list[Event]:
        return [e for e in self.events if e.agent == agent]

    def started(self) -> list[str]:
        return [e.agent for e in self.events if e.type == "agent_started"]


class Usage:
    """A usage source with fixed counts."""

    def __init__(self, datasets: int = 0, rows: int = 0) -> None:
        self.datasets, self.rows = datasets, rows

    async def dataset_count(self) -> int:
        return self.datasets

    async def row_count(self) -> int:
        return self.rows


def make_ctx(question: str = "How can we reduce our LLM costs?", rows: int = 0) -> RunContext:
    usage = Usage(datasets=1 if rows else 0, rows=rows)
    return RunContext("run-1", "user-1", "thread-1", question, RecordingSink(), usage)


def sink_of(ctx: RunContext) -> RecordingSink:
    assert isinstance(ctx.sink, RecordingSink)
    return ctx.sink


def agent(name: str, run: Callable[[RunContext, AgentScope], Awaitable[dict[str, Any]]]) -> Agent:
    """A stand-in sub-agent that runs `run` under `name`."""
    return Agent(name=name, description=f"test {name}", tools=(), run=run)


async def explode(ctx: RunContext, scope: AgentScope) -> dict[str, Any]:
    raise RuntimeError("secret connection string postgres://u:p@db")


async def hang(ctx: RunContext, scope: AgentScope) -> dict[str, Any]:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


def check_stream(events: list[Event]) -> None:
    """Assert the ordering contract of one run's events."""
    assert events, "no events"
    assert (events[0].type, events[0].agent) == ("agent_started", SUPERVISOR)
    last = events[-1]
    assert last.agent == SUPERVISOR
    assert last.type in ("agent_completed", "agent_error")
    assert last.data.get("final") is True
    assert [e for e in events if e.data.get("final")] == [last]
    if last.type == "agent_completed":
        assert isinstance(last.data["result"], dict)
        assert "report_type" in last.data["result"]
    else:
        assert isinstance(last.data["code"], str)
        assert isinstance(last.data["message"], str)

    open_agent: str | None = None
    finished: set[str] = set()
    open_calls: dict[str, Event] = {}
    seen_ids: set[str] = set()
    for event in events[1:-1]:
        if event.agent == SUPERVISOR:
            assert event.type in ("agent_thinking", "partial_result"), event
            assert open_agent is None, f"supervisor event while {open_agent} runs"
            continue
        if event.type == "agent_started":
            assert open_agent is None, f"{event.agent} started while {open_agent} runs"
            assert event.agent not in finished, f"{event.agent} ran twice"
            open_agent = event.agent
            continue
        assert event.agent == open_agent, f"{event.type} from {event.agent} outside its run"
        if event.type == "tool_executing":
            assert not open_calls, f"tool call while {list(open_calls)} is open"
            call_id = event.data["tool_call_id"]
            assert call_id not in seen_ids, f"duplicate tool_call_id {call_id}"
            assert isinstance(event.data["args"], dict)
            seen_ids.add(call_id)
            open_calls[call_id] = event
        elif event.type == "tool_completed":
            opened = open_calls.pop(event.data["tool_call_id"])
            assert event.tool == opened.tool
            assert event.tool is not None
            assert isinstance(event.data["result"], dict)
            assert isinstance(event.data["duration_ms"], float)
            assert event.data["duration_ms"] >= 0
        elif event.type in ("agent_completed", "agent_error"):
            assert not open_calls, f"{event.agent} ended with open tool calls"
            if event.type == "agent_completed":
                assert isinstance(event.data["result"], dict)
            else:
                assert set(event.data) == {"code", "message"}
            finished.add(event.agent)
            open_agent = None
        else:
            assert event.type in ("agent_thinking", "partial_result"), event
            key = "thought" if event.type == "agent_thinking" else "delta"
            assert isinstance(event.data[key], str)
    assert open_agent is None
    assert not open_calls

    order = [a for a in (e.agent for e in events if e.type == "agent_started") if a != SUPERVISOR]
    ranks = [PIPELINE.index(a) for a in order if a in PIPELINE]
    assert ranks == sorted(ranks), f"agents out of pipeline order: {order}"
    if last.type == "agent_completed":
        assert "reporting" in order
