"""Optimization: which savings strategies fit the question, and what each needs before it is quantified."""

from __future__ import annotations

from dataclasses import dataclass

from tokenwise.agents.base import RunContext
from tokenwise.agents.tooling import JSON, Agent, AgentScope, Tool


@dataclass(frozen=True)
class Strategy:
    type: str
    title: str
    how: str
    needs: tuple[str, ...]
    # Triage categories for which this strategy is among the first to look at.
    fits: tuple[str, ...]


STRATEGIES = (
    Strategy("model_routing", "Route easy requests to a cheaper model",
             "Send requests a smaller model handles well to it; keep the large model for the rest.",
             ("model", "input_tokens", "output_tokens", "feature"),
             ("cost_optimization", "model_selection")),
    Strategy("prompt_caching", "Cache repeated prompt prefixes",
             "Provider prompt caching bills a stable prefix (system prompt, tools, documents) at a discount.",
             ("input_tokens", "cached_input_tokens", "model"), ("cost_optimization", "latency_performance")),
    Strategy("response_caching", "Serve repeated requests from a cache",
             "Identical requests are answered once and then served from a cache, at no model cost.",
             ("prompt_hash", "timestamp"), ("cost_optimization", "latency_performance", "workload_analysis")),
    Strategy("batching", "Move offline work to batch APIs",
             "Batch APIs cost about half for work that can wait hours, such as evaluations and backfills.",
             ("timestamp", "feature", "latency_ms"), ("cost_optimization", "capacity_planning")),
    Strategy("output_cap", "Cap and shape output length",
             "Output tokens are the expensive ones; max-token limits and terser formats cut them.",
             ("output_tokens", "feature"), ("cost_optimization", "latency_performance")),
    Strategy("context_trimming", "Trim context and retrieved documents",
             "Shorter histories and fewer retrieved chunks cut input tokens and time to first token.",
             ("input_tokens", "feature"), ("cost_optimization", "latency_performance")),
    Strategy("retry_waste", "Stop paying for failed requests and retries",
             "Timeouts and retries are billed too; backoff, limits and idempotency reduce the waste.",
             ("status", "request_id", "latency_ms"), ("workload_analysis", "latency_performance")),
    Strategy("capacity", "Right-size capacity and rate limits",
             "Compare peak load with provisioned throughput or rate limits; idle capacity is paid for.",
             ("timestamp", "input_tokens", "output_tokens", "latency_ms"), ("capacity_planning",)),
)  # fmt: skip


def evaluate(category: str, rows: int, models: list[str]) -> JSON:
    """Rank the candidate strategies for `category`; savings stay unquantified until data is analysed."""
    ranked = sorted(STRATEGIES, key=lambda s: category not in s.fits)  # stable: catalogue order breaks ties
    strategies = [
        {
            "type": s.type,
            "title": s.title,
            "how": s.how,
            "needs": list(s.needs),
            "relevant": category in s.fits,
            "status": "needs_data" if rows <= 0 else "needs_analysis",
            # None, never a guess: a savings figure is only given once it is measured from usage rows.
            "estimated_savings_pct": None,
        }
        for s in ranked
    ]
    return {
        "category": category,
        "rows": rows,
        "models": models,
        "quantified": False,
        "strategies": strategies,
        "reason": (
            "No usage data: savings cannot be measured."
            if rows <= 0
            else "Usage data exists but row-level analysis is not available yet; savings are not quantified."
        ),
    }


def _compact(result: JSON) -> JSON:
    return {
        "quantified": result["quantified"],
        "strategies": [s["type"] for s in result["strategies"]],
        "reason": result["reason"],
    }


async def _evaluate_strategies(ctx: RunContext, args: JSON) -> JSON:
    return evaluate(str(args["category"]), int(args["rows"]), [str(m) for m in args.get("models", [])])


EVALUATE_STRATEGIES = Tool(
    name="evaluate_strategies",
    description="Rank savings strategies for the question and list the data each needs to be quantified.",
    args_schema={
        "type": "object",
        "properties": {
            "category": {"type": "string", "description": "The triage category."},
            "rows": {"type": "integer", "minimum": 0, "description": "Usage rows available."},
            "models": {"type": "array", "items": {"type": "string"}, "description": "Models named."},
        },
        "required": ["category", "rows"],
        "additionalProperties": False,
    },
    fn=_evaluate_strategies,
    compact=_compact,
)


async def run_optimization(ctx: RunContext, scope: AgentScope) -> JSON:
    """Evaluate savings strategies against what the data agent found."""
    triage = ctx.results.get("triage", {})
    category = triage.get("category", "general_question")
    rows = ctx.results.get("data", {}).get("rows", triage.get("rows", 0))
    scope.think(f"Ranking savings strategies for {category} with {rows} usage rows.")
    args: JSON = {"category": category, "rows": rows, "models": triage.get("entities", {}).get("models", [])}
    return await scope.call(EVALUATE_STRATEGIES, args)


OPTIMIZATION = Agent(
    name="optimization",
    description="Ranks savings strategies for the question; quantifies them only from measured data.",
    tools=(EVALUATE_STRATEGIES,),
    run=run_optimization,
    compact=_compact,
)
