"""The supervisor: runs the sub-agents in order and guarantees how the run's event stream ends.

Whatever happens inside a sub-agent, the stream keeps its shape: every tool call is answered, every
started sub-agent completes or errors, reporting always runs, and the supervisor's final event
(`final: true`) is the last one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from tokenwise.agents.base import RunContext, RunOutcome
from tokenwise.agents.catalogue import PIPELINE, SUPERVISOR, SUPERVISOR_DESCRIPTION, default_agents
from tokenwise.agents.language import LanguageModel
from tokenwise.agents.rendering import render
from tokenwise.agents.reporting import compose, deltas
from tokenwise.agents.tooling import JSON, Agent, AgentScope, CallLedger, ToolFailed, checkpoint, describe
from tokenwise.errors import TokenwiseError

log = logging.getLogger(__name__)

_PLANS = {
    "triage": "Starting with triage: what the question is about and whether there is data for it.",
    "data_helper": "There is no usage data; asking data_helper for exactly the data needed.",
    "data": "Measuring the usage data.",
    "optimization": "Pricing the what-if or the savings strategies from the measurements.",
    "actions": "Turning the strategies into next steps.",
    "reporting": "Writing the report.",
}


async def run_pipeline(
    ctx: RunContext, *, agents: Mapping[str, Agent] | None = None, language: LanguageModel | None = None
) -> RunOutcome:
    """Run the pipeline for `ctx`, emitting its events; never raises, not even when cancelled.

    `language` (default: `ctx.language`) only words text; the report's figures come from the tools.
    """
    roster = default_agents() if agents is None else agents
    if language is not None:
        ctx.language = language
    ledger = CallLedger(ctx.sink)
    try:
        if ctx.resumed:
            done = ", ".join(name for name in PIPELINE if name in ctx.results) or "none"
            thought = f"Continuing this run on another worker; agents already done: {done}."
            ctx.sink.emit("agent_thinking", SUPERVISOR, {"thought": thought})
        elif not ctx.announced:
            ctx.sink.emit("agent_started", SUPERVISOR, {"description": SUPERVISOR_DESCRIPTION})
        report, markdown = await _orchestrate(ctx, roster, ledger)
        # The report is stored with its run: the run id is its id (GET /api/reports/{id}).
        report = {"report_id": ctx.run_id, **report}
    except asyncio.CancelledError:
        task = asyncio.current_task()
        # The cancellation is answered here, with a final event, so the task must not stay "cancelling".
        if task is not None and task.cancelling():
            task.uncancel()
        ledger.close_all("cancelled")
        message = "The run was cancelled."
        ctx.sink.emit("agent_error", SUPERVISOR, {"code": "cancelled", "message": message, "final": True})
        return RunOutcome(status="cancelled", report={}, markdown="", error_code="cancelled")
    except Exception:
        log.exception("supervisor failed in run %s", ctx.run_id)
        ledger.close_all("internal_error")
        message = "The supervisor failed; the error is logged."
        ctx.sink.emit(
            "agent_error", SUPERVISOR, {"code": "internal_error", "message": message, "final": True}
        )
        return RunOutcome(status="failed", report={}, markdown="", error_code="internal_error")
    ctx.sink.emit("agent_completed", SUPERVISOR, {"final": True, "result": report})
    return RunOutcome(status="completed", report=report, markdown=markdown)


async def _orchestrate(ctx: RunContext, roster: Mapping[str, Agent], ledger: CallLedger) -> tuple[JSON, str]:
    last = ctx.stop_after if ctx.stop_after in PIPELINE else None
    for name in PIPELINE[:-1]:
        if last is not None and PIPELINE.index(name) > PIPELINE.index(last):
            ctx.sink.emit("agent_thinking", SUPERVISOR, {"thought": f"Stopping after {last}, as asked."})
            break
        agent = roster.get(name)
        # The agent a client asked to stop after runs whatever the plan needs.
        asked = name == last or _asked(ctx, name)
        if agent is None or (name == "data_helper" and not _insufficient(ctx)) or not asked:
            continue
        if name in ctx.results:
            continue  # ran before a takeover (ctx.resumed): its result is the checkpoint's
        ctx.sink.emit("agent_thinking", SUPERVISOR, {"thought": _PLANS.get(name, f"Running {name}.")})
        await _step(ctx, agent, ledger)

    ctx.sink.emit("agent_thinking", SUPERVISOR, {"thought": _PLANS["reporting"]})
    reporting = roster.get("reporting")
    if reporting is not None and await _step(ctx, reporting, ledger):
        out = ctx.results["reporting"]
        if isinstance(out.get("report"), dict) and isinstance(out.get("markdown"), str):
            return _with_agent(ctx, roster, last, out["report"]), out["markdown"]
    # Reporting failed or is missing: the run still ends with a report, built and streamed here.
    report = compose({name: r for name, r in ctx.results.items() if name != "reporting"})
    markdown = render(report)
    for piece in deltas(markdown):
        ctx.sink.emit("partial_result", SUPERVISOR, {"delta": piece})
    return _with_agent(ctx, roster, last, report), markdown


def _with_agent(ctx: RunContext, roster: Mapping[str, Agent], last: str | None, report: JSON) -> JSON:
    """The report, with the result of the agent the run stopped after (when it was asked to)."""
    if last is None:
        return report
    result = ctx.results.get(last)
    agent = roster.get(last)
    if result is not None and agent is not None and not result.get("failed"):
        result = agent.compact(result)
    return {**report, "agent": {"name": last, "result": result}}


# Which intents need the savings agents: a plain question is answered by triage, data and reporting.
_NEEDED_BY = {"optimization": ("optimize", "overview", "what_if"), "actions": ("optimize", "overview")}


def _asked(ctx: RunContext, name: str) -> bool:
    plan = ctx.results.get("triage", {}).get("plan")
    if name not in _NEEDED_BY or not isinstance(plan, dict):
        return True
    return plan.get("intent") in _NEEDED_BY[name]


def _insufficient(ctx: RunContext) -> bool:
    return ctx.results.get("triage", {}).get("data_sufficiency") == "insufficient"


async def _step(ctx: RunContext, agent: Agent, ledger: CallLedger) -> bool:
    """Run one sub-agent between its agent_started and its agent_completed or agent_error."""
    ctx.sink.emit("agent_started", agent.name, {"description": agent.description})
    try:
        await checkpoint()
        result = await agent.run(ctx, AgentScope(ctx, agent.name, ledger))
        summary = agent.compact(result)
    except asyncio.CancelledError:
        ledger.close_all("cancelled")
        ctx.sink.emit("agent_error", agent.name, {"code": "cancelled", "message": "The run was cancelled."})
        raise
    except Exception as exc:
        ledger.close_all("agent_failed")
        code = exc.code if isinstance(exc, TokenwiseError | ToolFailed) else "agent_failed"
        if not isinstance(exc, TokenwiseError):
            log.warning("agent %s failed in run %s", agent.name, ctx.run_id, exc_info=exc)
        message = describe(exc)
        ctx.results[agent.name] = {"failed": True, "code": code, "message": message}
        ctx.sink.emit("agent_error", agent.name, {"code": code, "message": message})
        return False
    ctx.results[agent.name] = result
    ctx.sink.emit("agent_completed", agent.name, {"result": summary})
    return True
