from __future__ import annotations

from typing import Any

from agent_doubles import check_stream, make_ctx, sink_of

from tokenwise.agents import default_agents, run_pipeline
from tokenwise.agents.base import RunContext
from tokenwise.agents.tooling import Agent, AgentScope, Tool
from tokenwise.errors import InvalidInput


async def _ok(ctx: RunContext, args: dict[str, Any]) -> dict[str, Any]:
    return {"echo": args["x"], "big": "x" * 1000}


async def _fails(ctx: RunContext, args: dict[str, Any]) -> dict[str, Any]:
    raise InvalidInput("bad column", field="model")


OK = Tool("ok_tool", "echo", {"type": "object"}, _ok, compact=lambda r: {"echo": r["echo"]})
FAILS = Tool("failing_tool", "fails", {"type": "object"}, _fails)


async def _two_calls_then_failure(ctx: RunContext, scope: AgentScope) -> dict[str, Any]:
    first = await scope.call(OK, {"x": 1})
    assert first["big"]  # the agent gets the full result, the event a compact one
    await scope.call(OK, {"x": 2})
    await scope.call(FAILS, {"x": 3})
    raise AssertionError("unreachable")


async def test_tool_calls_are_paired_even_when_the_tool_raises() -> None:
    ctx = make_ctx(rows=5000)
    custom = Agent("data", "d", (OK, FAILS), _two_calls_then_failure)
    outcome = await run_pipeline(ctx, agents={**default_agents(), "data": custom})
    sink = sink_of(ctx)
    check_stream(sink.events)
    calls = [e for e in sink.of("data") if e.type.startswith("tool_")]
    assert [(e.type, e.tool) for e in calls] == [
        ("tool_executing", "ok_tool"),
        ("tool_completed", "ok_tool"),
        ("tool_executing", "ok_tool"),
        ("tool_completed", "ok_tool"),
        ("tool_executing", "failing_tool"),
        ("tool_completed", "failing_tool"),
    ]
    assert calls[0].data["args"] == {"x": 1}
    assert calls[1].data["result"] == {"echo": 1}
    assert calls[5].data["result"] == {"error": "bad column"}
    ids = [e.data["tool_call_id"] for e in calls]
    assert ids[0::2] == ids[1::2]
    assert len(set(ids)) == 3
    error = sink.of("data")[-1]
    assert error.type == "agent_error"
    assert error.data["code"] == "tool_failed"
    assert outcome.status == "completed"


async def test_tool_call_ids_are_unique_across_the_run() -> None:
    ctx = make_ctx(rows=0)
    await run_pipeline(ctx)
    ids = [e.data["tool_call_id"] for e in sink_of(ctx).events if e.type == "tool_executing"]
    assert len(ids) == len(set(ids)) >= 6
