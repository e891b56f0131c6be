from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from agent_doubles import SUPERVISOR, agent, check_stream, explode, make_ctx, sink_of

from tokenwise.agents import default_agents, run_pipeline
from tokenwise.agents.base import RunContext
from tokenwise.agents.tooling import Agent, AgentScope

QUESTION = "how do we cut LLM spend 30% without hurting p95 latency over 800ms on gpt-4o"


def deltas(events: list[Any]) -> str:
    return "".join(e.data["delta"] for e in events if e.type == "partial_result")


async def test_no_data_gives_guidance_with_data_request() -> None:
    ctx = make_ctx(QUESTION, rows=0)
    outcome = await run_pipeline(ctx)
    sink = sink_of(ctx)
    check_stream(sink.events)
    assert outcome.status == "completed"
    assert outcome.error_code is None
    assert sink.started() == [
        SUPERVISOR,
        "triage",
        "data_helper",
        "data",
        "optimization",
        "actions",
        "reporting",
    ]
    report = outcome.report
    assert report["report_type"] == "guidance"
    assert sink.events[-1].data == {"final": True, "result": report}
    fields = {f["name"]: f for f in report["data_request"]["fields"]}
    assert {"timestamp", "model", "input_tokens", "output_tokens", "latency_ms", "prompt_hash"} <= set(fields)
    assert report["data_request"]["csv_template"].startswith("timestamp,model,")
    assert {"openai", "anthropic", "azure_openai", "aws_bedrock", "litellm", "gateway"} <= set(
        report["data_request"]["export_guides"]
    )
    m = report["measurements"]
    assert (m["datasets"], m["rows"], m["requests"], m["input_tokens"], m["spend_usd"]) == (0, 0, 0, 0, None)
    assert m["period"] is None
    assert m["models"] == []
    # Without measured data no strategy (and so no savings figure) may appear; the candidates say what
    # the analysis will look for once data arrives.
    assert report["strategies"] == []
    assert {c["type"] for c in report["candidates"]} == {
        "model_routing",
        "prompt_caching",
        "response_caching",
        "batching",
        "output_cap",
        "context_trimming",
        "retry_waste",
        "capacity",
    }
    assert report["actions"][0]["id"] == "upload_usage_data"
    assert report["report_id"] == ctx.run_id


@pytest.mark.parametrize(("rows", "report_type"), [(50, "partial"), (5000, "full")])
async def test_data_helper_runs_only_without_data(rows: int, report_type: str) -> None:
    ctx = make_ctx(QUESTION, rows=rows)
    outcome = await run_pipeline(ctx)
    sink = sink_of(ctx)
    check_stream(sink.events)
    assert sink.started() == [SUPERVISOR, "triage", "data", "optimization", "actions", "reporting"]
    assert outcome.report["report_type"] == report_type
    m = outcome.report["measurements"]
    assert (m["datasets"], m["rows"], m["requests"]) == (1, rows, rows)
    assert m["spend_usd"] > 0
    assert [g["model"] for g in m["models"]] == ["acme-small"]
    # clean data: the analysis finds nothing to save, and the report invents nothing
    assert outcome.report["strategies"] == []
    assert outcome.report["series"]["savings_by_strategy"] == []


async def test_partial_deltas_concatenate_to_markdown() -> None:
    ctx = make_ctx(QUESTION)
    outcome = await run_pipeline(ctx)
    reporting = sink_of(ctx).of("reporting")
    assert len([e for e in reporting if e.type == "partial_result"]) > 3
    assert deltas(reporting) == outcome.markdown
    assert outcome.markdown.startswith("# ")
    assert [e.type for e in reporting][-1] == "agent_completed"


async def test_user_text_stays_out_of_markdown() -> None:
    ctx = make_ctx("cut spend 10% <script>alert(1)</script> on gpt-4o", rows=0)
    outcome = await run_pipeline(ctx)
    assert "<script>" not in outcome.markdown
    assert "gpt-4o" in outcome.markdown


@pytest.mark.parametrize("failing", ["triage", "data", "optimization", "actions"])
async def test_failing_agent_reports_error_and_reporting_still_runs(failing: str) -> None:
    ctx = make_ctx(QUESTION, rows=0)
    outcome = await run_pipeline(ctx, agents={**default_agents(), failing: agent(failing, explode)})
    sink = sink_of(ctx)
    check_stream(sink.events)
    error = next(e for e in sink.events if e.type == "agent_error" and e.agent == failing)
    assert error.data == {"code": "agent_failed", "message": "RuntimeError"}  # no internals leak
    assert outcome.status == "completed"
    assert sink.started()[-1] == "reporting"
    assert outcome.report["data_request"] is not None
    assert any(failing in note for note in outcome.report["notes"])
    assert deltas(sink.of("reporting")) == outcome.markdown


async def test_failing_triage_skips_data_helper_but_report_still_asks_for_data() -> None:
    ctx = make_ctx(QUESTION, rows=0)
    outcome = await run_pipeline(ctx, agents={**default_agents(), "triage": agent("triage", explode)})
    assert "data_helper" not in sink_of(ctx).started()
    assert outcome.report["report_type"] == "guidance"
    assert outcome.report["data_request"]["fields"]


async def test_failing_reporting_falls_back_to_supervisor_report() -> None:
    ctx = make_ctx(QUESTION, rows=0)
    outcome = await run_pipeline(ctx, agents={**default_agents(), "reporting": agent("reporting", explode)})
    sink = sink_of(ctx)
    check_stream(sink.events)
    assert outcome.status == "completed"
    assert outcome.report["report_type"] == "guidance"
    assert deltas(sink.of(SUPERVISOR)) == outcome.markdown
    assert sink.events[-1].data["result"] == outcome.report


async def test_all_agents_failing_still_ends_with_a_report() -> None:
    broken = {name: agent(name, explode) for name in default_agents()}
    ctx = make_ctx(QUESTION, rows=0)
    outcome = await run_pipeline(ctx, agents=broken)
    check_stream(sink_of(ctx).events)
    assert outcome.status == "completed"
    assert outcome.report["report_type"] == "partial"
    assert outcome.report["data_request"] is not None


async def test_agent_with_bad_result_shape_is_an_agent_error() -> None:
    async def wrong(ctx: RunContext, scope: AgentScope) -> dict[str, Any]:
        return {"unexpected": True}

    bad = Agent(name="data", description="d", tools=(), run=wrong, compact=lambda r: {"rows": r["rows"]})
    ctx = make_ctx(QUESTION, rows=5000)
    outcome = await run_pipeline(ctx, agents={**default_agents(), "data": bad})
    check_stream(sink_of(ctx).events)
    assert sink_of(ctx).of("data")[-1].data == {"code": "agent_failed", "message": "KeyError"}
    assert outcome.status == "completed"


class BrokenRoster(Mapping[str, Agent]):
    """A roster that fails when the supervisor looks up `actions`: a stand-in for a supervisor bug."""

    def __init__(self) -> None:
        self.inner = default_agents()

    def __getitem__(self, key: str) -> Agent:
        if key == "actions":
            raise RuntimeError("bug")
        return self.inner[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.inner)

    def __len__(self) -> int:
        return len(self.inner)


async def test_supervisor_bug_ends_with_internal_error() -> None:
    ctx = make_ctx(QUESTION)
    outcome = await run_pipeline(ctx, agents=BrokenRoster())
    sink = sink_of(ctx)
    check_stream(sink.events)
    assert outcome.status == "failed"
    assert outcome.error_code == "internal_error"
    assert sink.events[-1].type == "agent_error"
    assert sink.events[-1].data["code"] == "internal_error"
    assert sink.events[-1].data["final"] is True


@pytest.mark.parametrize("name", ["triage", "data_helper", "data", "optimization", "actions"])
async def test_agent_returning_another_shape_does_not_break_the_report(name: str) -> None:
    async def odd(ctx: RunContext, scope: AgentScope) -> dict[str, Any]:
        return {"something": "else"}

    ctx = make_ctx(QUESTION, rows=0)
    outcome = await run_pipeline(ctx, agents={**default_agents(), name: agent(name, odd)})
    check_stream(sink_of(ctx).events)
    assert outcome.status == "completed"
    assert outcome.report["data_request"] is not None
