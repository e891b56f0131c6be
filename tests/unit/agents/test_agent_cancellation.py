from __future__ import annotations

import asyncio
from typing import Any

from agent_doubles import SUPERVISOR, agent, check_stream, hang, make_ctx, sink_of

from tokenwise.agents import default_agents, run_pipeline
from tokenwise.agents.base import RunContext
from tokenwise.agents.tooling import Agent, AgentScope, Tool


async def test_cancel_inside_a_tool_closes_the_call_and_ends_cancelled() -> None:
    reached = asyncio.Event()

    async def blocking(ctx: RunContext, args: dict[str, Any]) -> dict[str, Any]:
        reached.set()
        await asyncio.Event().wait()
        return {}

    tool = Tool("blocking_tool", "waits", {"type": "object"}, blocking)

    async def run(ctx: RunContext, scope: AgentScope) -> dict[str, Any]:
        return await scope.call(tool, {"n": 1})

    ctx = make_ctx(rows=5000)
    task = asyncio.create_task(
        run_pipeline(
            ctx, agents={**default_agents(), "optimization": Agent("optimization", "o", (tool,), run)}
        )
    )
    await reached.wait()
    task.cancel()
    outcome = await task
    sink = sink_of(ctx)
    check_stream(sink.events)
    assert outcome.status == "cancelled"
    assert outcome.error_code == "cancelled"
    assert not task.cancelled()
    assert task.cancelling() == 0
    tail = [(e.type, e.agent, e.tool) for e in sink.events[-4:]]
    assert tail == [
        ("tool_executing", "optimization", "blocking_tool"),
        ("tool_completed", "optimization", "blocking_tool"),
        ("agent_error", "optimization", None),
        ("agent_error", SUPERVISOR, None),
    ]
    assert sink.events[-3].data["result"] == {"error": "cancelled"}
    assert sink.events[-1].data == {"code": "cancelled", "message": "The run was cancelled.", "final": True}
    assert "reporting" not in sink.started()


async def test_cancel_while_an_agent_waits() -> None:
    ctx = make_ctx(rows=0)
    task = asyncio.create_task(
        run_pipeline(ctx, agents={**default_agents(), "actions": agent("actions", hang)})
    )
    while "actions" not in sink_of(ctx).started():
        await asyncio.sleep(0)
    task.cancel()
    outcome = await task
    check_stream(sink_of(ctx).events)
    assert outcome.status == "cancelled"
    assert sink_of(ctx).events[-1].data["code"] == "cancelled"


async def test_cancelled_error_raised_by_an_agent_without_task_cancel() -> None:
    async def raises(ctx: RunContext, scope: AgentScope) -> dict[str, Any]:
        raise asyncio.CancelledError

    ctx = make_ctx(rows=0)
    outcome = await run_pipeline(ctx, agents={**default_agents(), "data": agent("data", raises)})
    check_stream(sink_of(ctx).events)
    assert outcome.status == "cancelled"
    current = asyncio.current_task()
    assert current is not None
    assert current.cancelling() == 0
