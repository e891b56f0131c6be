"""Data agent: reports what usage data exists, and only what it can actually measure."""

from __future__ import annotations

from tokenwise.agents.base import RunContext
from tokenwise.agents.tooling import JSON, Agent, AgentScope, Tool

# Per-model cost, latency percentiles and cache rates need the row-level analysis that arrives with
# ingestion; until then the usage source exposes counts only, and the summary says so.
NOT_YET_MEASURED = (
    "cost_by_model",
    "latency_percentiles",
    "cache_hit_rate",
    "retry_rate",
    "spend_by_feature",
)


def summarize(datasets: int, rows: int) -> JSON:
    """What is known about the usage data, from its counts."""
    if rows <= 0:
        note = "No usage data has been uploaded; there is nothing to measure yet."
    else:
        note = (
            f"{rows} rows across {datasets} dataset(s) are stored; spend, latency and cache breakdowns "
            "are not computed from them yet."
        )
    return {
        "datasets": datasets,
        "rows": rows,
        "has_data": rows > 0,
        "measured": {"datasets": datasets, "rows": rows},
        "not_measured": list(NOT_YET_MEASURED),
        "note": note,
    }


async def _summarize_usage(ctx: RunContext, args: JSON) -> JSON:
    return summarize(await ctx.usage.dataset_count(), await ctx.usage.row_count())


SUMMARIZE_USAGE = Tool(
    name="summarize_usage",
    description="Report which usage data exists for the user and what can be measured from it.",
    args_schema={"type": "object", "properties": {}, "additionalProperties": False},
    fn=_summarize_usage,
)


async def run_data(ctx: RunContext, scope: AgentScope) -> JSON:
    """Summarise the user's usage data."""
    scope.think("Reading what usage data is stored for this user.")
    summary = await scope.call(SUMMARIZE_USAGE, {})
    scope.think(summary["note"])
    return summary


DATA = Agent(
    name="data",
    description="Summarises the user's usage data and states what can and cannot be measured from it.",
    tools=(SUMMARIZE_USAGE,),
    run=run_data,
)
