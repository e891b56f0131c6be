"""Actions: the concrete next steps that follow from the optimization result."""

from __future__ import annotations

from tokenwise.agents.base import RunContext
from tokenwise.agents.tooling import JSON, Agent, AgentScope, Tool

# Steps that make usage measurable; they come first whenever the data is missing or thin.
_DATA_STEPS: tuple[JSON, ...] = (
    {
        "id": "upload_usage_data",
        "title": "Upload usage data",
        "detail": "Export at least two weeks of per-request usage in the CSV template and upload it.",
        "effort": "low",
    },
    {
        "id": "enable_gateway_logging",
        "title": "Log every request through a gateway",
        "detail": "Route calls through LiteLLM, Helicone, Langfuse or your own middleware so each request "
        "records model, tokens, cached tokens, latency and status.",
        "effort": "medium",
    },
    {
        "id": "tag_requests",
        "title": "Tag requests by feature and user",
        "detail": "Attach a feature tag and a (hashed) user id to each request so spend splits by owner.",
        "effort": "low",
    },
)

_STRATEGY_STEPS: dict[str, str] = {
    "model_routing": "Replay a sample of traffic on a cheaper model and compare quality before routing.",
    "prompt_caching": "Move stable instructions and tools to the start of the prompt so caching applies.",
    "response_caching": "Record a prompt hash per request to measure how often requests repeat.",
    "batching": "List the jobs that can wait hours (evals, backfills, reports) as batch candidates.",
    "output_cap": "Set max output tokens per feature from its observed output length.",
    "context_trimming": "Measure input tokens per feature and cap history and retrieved chunks.",
    "retry_waste": "Log status and retry counts per request; add backoff and a retry budget.",
    "capacity": "Compare hourly peak tokens with your rate limits or provisioned throughput.",
}


def plan(strategies: list[str], has_data: bool, limit: int = 3) -> JSON:
    """Next steps: make the data measurable first if needed, then one step per leading strategy."""
    steps = [dict(step) for step in _DATA_STEPS] if not has_data else []
    for kind in strategies[:limit]:
        if kind in _STRATEGY_STEPS:
            steps.append(
                {
                    "id": f"start_{kind}",
                    "title": f"Prepare {kind.replace('_', ' ')}",
                    "detail": _STRATEGY_STEPS[kind],
                    "effort": "medium",
                    "unblocks": kind,
                }
            )
    return {"actions": steps, "blocked_on_data": not has_data}


async def _plan_actions(ctx: RunContext, args: JSON) -> JSON:
    return plan([str(s) for s in args.get("strategies", [])], bool(args["has_data"]))


PLAN_ACTIONS = Tool(
    name="plan_actions",
    description="Turn ranked strategies into concrete next steps, data collection first if it is missing.",
    args_schema={
        "type": "object",
        "properties": {
            "strategies": {"type": "array", "items": {"type": "string"}, "description": "Ranked types."},
            "has_data": {"type": "boolean", "description": "Whether any usage data exists."},
        },
        "required": ["has_data"],
        "additionalProperties": False,
    },
    fn=_plan_actions,
    compact=lambda result: {"actions": [a["id"] for a in result["actions"]]},
)


async def run_actions(ctx: RunContext, scope: AgentScope) -> JSON:
    """Plan next steps from the optimization result."""
    optimization = ctx.results.get("optimization", {})
    strategies = [s["type"] for s in optimization.get("strategies", []) if s.get("relevant")]
    rows = ctx.results.get("data", {}).get("rows", ctx.results.get("triage", {}).get("rows", 0))
    scope.think("Turning the leading strategies into next steps.")
    return await scope.call(PLAN_ACTIONS, {"strategies": strategies, "has_data": rows > 0})


ACTIONS = Agent(
    name="actions",
    description="Turns the optimization result into concrete next steps.",
    tools=(PLAN_ACTIONS,),
    run=run_actions,
)
