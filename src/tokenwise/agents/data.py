"""Data agent: measures the user's usage data with the analysis and says what it found."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tokenwise.agents import period
from tokenwise.agents.base import RunContext
from tokenwise.agents.figures import count, days, usd
from tokenwise.agents.figures import rate as per_s
from tokenwise.agents.query_tools import FULL_ANALYSIS, RUN_QUERY, _compact_query
from tokenwise.agents.tooling import JSON, Agent, AgentScope, Tool
from tokenwise.analysis.engine import analyze
from tokenwise.analysis.pricing import PriceBook
from tokenwise.analysis.profile import profile
from tokenwise.analysis.sql import Engine


def dataset_info(dataset: dict[str, Any]) -> JSON:
    """What the report says about one dataset: where it came from and how it was read."""
    period = dataset.get("period") or {}
    return {
        "id": dataset.get("id"),
        "name": dataset.get("name"),
        "detected_format": dataset.get("detected_format"),
        "rows": dataset.get("row_count"),
        "model": dataset.get("model"),
        "model_column": "model" in (dataset.get("mapping") or {}),
        "period": {"start": period.get("start"), "end": period.get("end")},
        "bucketed": bool(dataset.get("bucketed")),
        "request_counts": dataset.get("request_counts", True) is not False,
    }


async def excluded_info(ctx: RunContext) -> list[JSON]:
    """The datasets the user left out of questions: named in the report, never read."""
    return [{"id": d.get("id"), "name": d.get("name")} for d in await ctx.usage.excluded()]


def _measure(
    paths: list[Any],
    prices: PriceBook,
    defaults: dict[str, str],
    time_range: JSON | None,
    engine: Engine | None = None,
) -> tuple[JSON, JSON, JSON | None]:
    # JSON conversion too: on a year of hourly groups it is work the event loop should not do.
    found = profile(paths, prices, defaults, engine=engine)
    bounds = period.resolve(time_range, found.end)
    if bounds is None:
        return analyze(paths, prices, defaults, engine=engine).to_json(), found.to_json(), None
    assert time_range is not None
    window: JSON = {
        "asked": period.describe(time_range),
        "start": bounds[0].isoformat() if bounds[0] else None,
        "end": bounds[1].isoformat() if bounds[1] else None,
        "applied": True,
    }
    analysis = analyze(paths, prices, defaults, period=bounds, engine=engine)
    if not analysis.measurements.requests:
        # Nothing in the period asked for: measure everything rather than report an empty period.
        analysis, window["applied"] = analyze(paths, prices, defaults, engine=engine), False
    return analysis.to_json(), found.to_json(), window


async def _measure_usage(ctx: RunContext, args: JSON) -> JSON:
    usage = ctx.usage
    paths = await usage.parquet_paths()
    datasets = [dataset_info(d) for d in await usage.datasets()]
    excluded = await excluded_info(ctx)
    if not paths:
        return {"has_data": False, "datasets": len(datasets), "rows": 0, "datasets_info": datasets,
                "excluded_info": excluded}  # fmt: skip
    started = time.perf_counter()
    # DuckDB work of 0.1-2 s: in a worker thread, so the event loop keeps serving every other run.
    analysis, found, window = await asyncio.to_thread(
        _measure, paths, usage.prices, await usage.default_models(), args.get("time_range"), usage.engine
    )
    return {
        "has_data": found["rows"] > 0,
        "datasets": len(datasets),
        "rows": found["rows"],
        "datasets_info": datasets,
        "excluded_info": excluded,
        "analysis": analysis,
        "profile": found,
        "window": window,
        "elapsed_ms": round((time.perf_counter() - started) * 1000, 1),
    }


def _compact(result: JSON) -> JSON:
    analysis = result.get("analysis")
    if not analysis and "query" in result:
        return {"has_data": result["has_data"], "datasets": result["datasets"], "rows": result["rows"],
                "query": _compact_query(result["query"])}  # fmt: skip
    if not analysis:
        return {"has_data": result["has_data"], "datasets": result["datasets"], "rows": result["rows"]}
    m = analysis["measurements"]
    return {
        "has_data": result["has_data"],
        "datasets": result["datasets"],
        "requests": m["requests"],
        "input_tokens": m["input_tokens"],
        "output_tokens": m["output_tokens"],
        "spend_usd": m["spend_usd"],
        "period": m["period"],
        "models": [
            {"model": g["key"], "requests": g["requests"], "spend_usd": g["spend_usd"]}
            for g in m["models"][:5]
        ],
        "peak_requests_per_s": m["rate"]["peak_per_second"],
        "strategies": [s["type"] for s in analysis["strategies"]],
        "window": result.get("window"),
        "elapsed_ms": result["elapsed_ms"],
    }


MEASURE_USAGE = Tool(
    name="measure_usage",
    description="Analyse every usage dataset of the user in DuckDB: spend and tokens by model, feature, day "
    "and hour; rates, peaks, burstiness; size and latency percentiles; errors, retries, duplicates, shared "
    "prefixes; and the savings strategies they support.",
    args_schema={
        "type": "object",
        "properties": {
            "datasets": {"type": "array", "items": {"type": "string"}, "description": "Dataset names."},
            "named_models": {
                "type": "object",
                "description": "Dataset name -> the model named for its rows.",
            },
            "time_range": {
                "type": "object",
                "description": "The period the question asks about (from triage): days back from the newest "
                "request, or start/end dates.",
            },
        },
        "additionalProperties": False,
    },
    fn=_measure_usage,
    compact=_compact,
)


def findings(analysis: JSON) -> list[str]:
    """The measured figures as short sentences (agent_thinking), all formatted from the analysis."""
    m = analysis["measurements"]
    if not m["requests"]:
        return ["The datasets hold no requests."]
    period = m["period"] or {}
    spend = m["spend_usd"]
    monthly = spend * 30 / period["days"] if spend is not None and period.get("days") else None
    spend_text = (
        f"{usd(spend)} spend ({usd(monthly)} a month)"
        if spend is not None
        else "no spend (no request could be priced)"
    )
    flow, sizes = m["rate"], (m["input_sizes"]["p95"], m["output_sizes"]["p95"])
    lines = [
        f"Measured {count(m['requests'])} requests over {days(period.get('days'))}: "
        f"{count(m['input_tokens'])} input and {count(m['output_tokens'])} output tokens, {spend_text}.",
        f"Peak {count(flow['peak_per_second'])} requests/s and {count(flow['peak_per_minute'])}/min (mean "
        f"{per_s(flow['mean_per_minute'])}/min); p95 request {count(sizes[0])} input and {count(sizes[1])} "
        "output tokens.",
    ]
    models = [g for g in m["models"] if g["key"]]
    if models:
        top = models[0]
        share = f", {top['spend_share'] * 100:.1f}% of spend" if top["spend_share"] is not None else ""
        lines.append(
            f"{len(m['models'])} model(s); the largest is {top['key']} ({count(top['requests'])} "
            f"requests{share})."
        )
    strategies = analysis["strategies"]
    if strategies:
        lines.append("The data supports: " + ", ".join(s["type"] for s in strategies) + ".")
    return lines


async def run_data(ctx: RunContext, scope: AgentScope) -> JSON:
    """Measure the user's usage data, or find that there is none."""
    datasets = await ctx.usage.datasets()
    scope.think(
        f"Analysing {len(datasets)} dataset(s) in a worker thread."
        if datasets
        else "Looking for usage data to measure."
    )
    if excluded := await excluded_info(ctx):
        scope.think(f"Leaving out {len(excluded)} dataset(s) you excluded from questions.")
    args: JSON = {
        "datasets": [str(d.get("name")) for d in datasets],
        "named_models": {str(d.get("name")): d["model"] for d in datasets if d.get("model")},
    }
    triage = ctx.results.get("triage") or {}
    plan = triage.get("plan") if isinstance(triage.get("plan"), dict) else None
    result: JSON = {}
    if plan is None or plan.get("intent") in FULL_ANALYSIS:
        time_range = (triage.get("entities") or {}).get("time_range")
        asked = (plan or {}).get("period")
        if isinstance(asked, dict):  # the plan's reading of the period wins over the keyword entity
            words = str(asked.get("label") or "").split(" as ")[0].strip("'")
            time_range = {"text": words, "start_at": asked.get("start"), "end_at": asked.get("end")}
        if time_range:
            args["time_range"] = time_range
        result = await scope.call(MEASURE_USAGE, args)
        if result.get("analysis"):
            for line in findings(result["analysis"]):
                scope.think(line)
        else:
            scope.think("No usage data has been uploaded; there is nothing to measure yet.")
    if plan is not None and plan.get("intent") != "optimize":  # a savings question's answer is its report
        query = await scope.call(RUN_QUERY, plan)
        found = query.get("scope") or {}
        scope.think(f"The plan's scope holds {found.get('requests', 0):,} requests.")
        result = {**result, "query": query, "plan": plan}
        if "has_data" not in result:
            data_rows = int((query.get("data") or {}).get("rows") or 0)
            result.update(has_data=data_rows > 0, datasets=len(datasets), rows=data_rows,
                          datasets_info=[dataset_info(d) for d in datasets],
                          excluded_info=await excluded_info(ctx))  # fmt: skip
    return result


DATA = Agent(
    name="data",
    description="Measures the user's usage data: spend, tokens, rates, sizes, latency, errors and waste.",
    tools=(MEASURE_USAGE, RUN_QUERY),
    run=run_data,
    compact=_compact,
)
