"""A run asked to stop after an agent (`POST /api/agents/{agent}`): the agents up to it, then the report."""

from __future__ import annotations

import pytest
from agent_doubles import SUPERVISOR, check_stream, make_ctx, sink_of

from tokenwise.agents import run_pipeline

SAVINGS = "how do we cut LLM spend 30%?"
TOTAL = "how many requests did we make?"


@pytest.mark.parametrize(
    ("stop_after", "started"),
    [
        ("triage", ["triage"]),
        ("data", ["triage", "data"]),
        ("optimization", ["triage", "data", "optimization"]),
        ("actions", ["triage", "data", "optimization", "actions"]),
        ("reporting", ["triage", "data", "optimization", "actions"]),
    ],
)
async def test_the_pipeline_stops_after_the_agent_and_still_reports(
    stop_after: str, started: list[str]
) -> None:
    ctx = make_ctx(SAVINGS, rows=200)
    ctx.stop_after = stop_after
    outcome = await run_pipeline(ctx)
    sink = sink_of(ctx)
    check_stream(sink.events)
    assert sink.started() == [SUPERVISOR, *started, "reporting"]
    completed = {e.agent: e.data["result"] for e in sink.events if e.type == "agent_completed"}
    assert outcome.report["agent"] == {"name": stop_after, "result": completed[stop_after]}
    assert sink.events[-1].data["result"] == outcome.report


async def test_the_agent_asked_for_runs_even_when_the_question_would_not_need_it() -> None:
    ctx = make_ctx(TOTAL, rows=200)
    ctx.stop_after = "optimization"
    outcome = await run_pipeline(ctx)
    sink = sink_of(ctx)
    check_stream(sink.events)
    assert sink.started() == [SUPERVISOR, "triage", "data", "optimization", "reporting"]
    assert outcome.report["agent"]["name"] == "optimization"


async def test_without_a_stop_the_report_names_no_agent() -> None:
    ctx = make_ctx(TOTAL, rows=200)
    outcome = await run_pipeline(ctx)
    assert "agent" not in outcome.report
    assert sink_of(ctx).started() == [SUPERVISOR, "triage", "data", "reporting"]
