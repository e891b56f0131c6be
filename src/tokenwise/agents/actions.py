"""Actions: concrete steps per measured strategy, ordered by savings for the effort, and the data steps
that unlock more figures."""

from __future__ import annotations

from typing import Any

from tokenwise.agents.base import RunContext
from tokenwise.agents.playbooks import playbook
from tokenwise.agents.tooling import JSON, Agent, AgentScope, Tool

# Steps that make usage measurable; they come first whenever there is no data.
_DATA_STEPS: tuple[JSON, ...] = (
    {
        "id": "upload_usage_data",
        "title": "Upload usage data",
        "detail": "Export at least two weeks of per-request usage in the CSV template and upload it "
        "(`POST /api/datasets` or `tokenwise ingest FILE`).",
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
_SUPPLY_TITLES = {
    "model": "Name the model of your data",
    "price": "Give the price of the unpriced models",
    "period": "Upload a longer period",
    "latency_ms": "Record latency per request",
}


def order(actions: list[JSON]) -> list[JSON]:
    """Largest saving per effort point first; actions without a $ figure after those with one."""
    return sorted(
        actions,
        key=lambda a: (a.get("savings_per_effort") is None, -(a.get("savings_per_effort") or 0.0)),
    )


def plan(
    strategies: list[dict[str, Any]],
    thresholds: JSON,
    *,
    has_data: bool,
    missing: list[JSON] | None = None,
    gaps: list[JSON] | None = None,
) -> JSON:
    """Data steps when data is missing, then one action per strategy (steps + snippets), best value first."""
    steps: list[JSON] = [dict(step) for step in _DATA_STEPS] if not has_data else []
    for item in missing or []:
        field = str(item.get("field"))
        steps.append(
            {
                "id": f"supply_{field}",
                "title": _SUPPLY_TITLES.get(field, f"Supply {field}"),
                "detail": f"{str(item.get('why', '')).capitalize()}. To supply it, {item.get('how', '')}.",
                "effort": "low",
            }
        )
    measured = [a for a in (playbook(s, thresholds) for s in strategies) if a is not None]
    steps += order(measured)
    if gaps:
        listing = "; ".join(f"{g['strategy']}: {g['how']}" for g in gaps)
        steps.append(
            {
                "id": "log_more_columns",
                "title": "Log the columns that unlock the other checks",
                "detail": f"{listing}.",
                "effort": "low",
            }
        )
    return {"actions": steps, "blocked_on_data": not has_data}


async def _plan_actions(ctx: RunContext, args: JSON) -> JSON:
    return plan(
        list(args.get("strategies") or []),
        dict(args.get("thresholds") or {}),
        has_data=bool(args["has_data"]),
        missing=list(args.get("missing") or []),
        gaps=list(args.get("gaps") or []),
    )


PLAN_ACTIONS = Tool(
    name="plan_actions",
    description="Turn measured strategies into concrete steps with gateway/router config and code snippets, "
    "ordered by savings for the effort; data steps first when data is missing.",
    args_schema={
        "type": "object",
        "properties": {
            "strategies": {
                "type": "array",
                "items": {"type": "object"},
                "description": "Measured strategies: type, title, monthly_savings_usd, evidence.",
            },
            "thresholds": {"type": "object", "description": "The analysis thresholds the numbers rest on."},
            "has_data": {"type": "boolean", "description": "Whether any usage data exists."},
            "missing": {
                "type": "array",
                "items": {"type": "object"},
                "description": "What triage found missing.",
            },
            "gaps": {
                "type": "array",
                "items": {"type": "object"},
                "description": "Strategies not checkable.",
            },
        },
        "required": ["has_data"],
        "additionalProperties": False,
    },
    fn=_plan_actions,
    compact=lambda result: {"actions": [a["id"] for a in result["actions"]]},
)


async def run_actions(ctx: RunContext, scope: AgentScope) -> JSON:
    """Plan the steps from the optimization result."""
    optimization = ctx.results.get("optimization", {})
    data = ctx.results.get("data", {})
    sufficiency = ctx.results.get("triage", {}).get("sufficiency") or {}
    rows = data.get("rows", ctx.results.get("triage", {}).get("rows", 0))
    strategies = [
        {k: s.get(k) for k in ("type", "title", "monthly_savings_usd", "evidence")}
        for s in optimization.get("strategies", [])
        if isinstance(s, dict) and s.get("type")
    ]
    scope.think(
        f"Writing concrete steps for {len(strategies)} measured strategies, best savings per effort first."
        if strategies
        else "No measured strategy to act on: planning the steps that make the data answer the question."
    )
    args: JSON = {
        "strategies": strategies,
        "thresholds": (data.get("analysis") or {}).get("thresholds") or {},
        "has_data": bool(rows and rows > 0),
        "missing": [m for m in sufficiency.get("missing", []) if isinstance(m, dict)],
        "gaps": [g for g in optimization.get("not_checked", []) if isinstance(g, dict) and g.get("how")],
    }
    return await scope.call(PLAN_ACTIONS, args)


ACTIONS = Agent(
    name="actions",
    description="Turns the measured strategies into concrete steps and config snippets, best value first.",
    tools=(PLAN_ACTIONS,),
    run=run_actions,
    compact=lambda result: {"actions": [a["id"] for a in result.get("actions", [])]},
)
