"""The tools that answer a question: plan it (triage), run the plan (data), price its what-if
(optimization). Each runs its DuckDB work in a worker thread over a view of the user's own files."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
from pydantic import ValidationError

from tokenwise.agents.base import RunContext
from tokenwise.agents.calendar import reference_day
from tokenwise.agents.grain import coverage
from tokenwise.agents.plan_proposal import propose_plan
from tokenwise.agents.tooling import JSON, Tool
from tokenwise.agents.understanding import Turn, parse
from tokenwise.agents.vocabulary import Vocabulary
from tokenwise.analysis.plan import QueryPlan
from tokenwise.analysis.pricing import PriceBook
from tokenwise.analysis.query import dimension_values, execute
from tokenwise.analysis.scenario import price_scenario
from tokenwise.analysis.source import attach
from tokenwise.analysis.sql import Engine, connect
from tokenwise.errors import InvalidInput

# Plans that need the whole measurement and the savings strategies, not just their own figures.
FULL_ANALYSIS = ("optimize", "overview")


def _connect(
    paths: list[Path], prices: PriceBook, defaults: Mapping[str, str], engine: Engine | None
) -> duckdb.DuckDBPyConnection:
    con = connect(engine)
    attach(con, paths, prices, defaults)
    return con


def _vocabulary(
    paths: list[Path], prices: PriceBook, defaults: Mapping[str, str], engine: Engine | None = None
) -> tuple[JSON, datetime | None]:
    con = _connect(paths, prices, defaults, engine)
    try:
        values = dimension_values(con)
        (end,) = con.execute("SELECT max(ts) FROM usage").fetchone() or (None,)
    finally:
        con.close()
    return values, (end.replace(tzinfo=UTC) if end else None)


def priced_models(prices: PriceBook) -> list[str]:
    """The price book's model names, when it can list them."""
    models = getattr(prices, "models", None)
    return sorted(models) if isinstance(models, Mapping) else []


async def _plan_query(ctx: RunContext, args: JSON) -> JSON:
    usage = ctx.usage
    paths = await usage.parquet_paths()
    values: JSON = {}
    data_end = None
    if paths:
        values, data_end = await asyncio.to_thread(
            _vocabulary, paths, usage.prices, await usage.default_models(), usage.engine
        )
    vocabulary = Vocabulary(values, priced_models=priced_models(usage.prices))
    today = reference_day(data_end)
    turns = await ctx.thread.turns()
    plan, why_not = None, None
    if ctx.language.enabled:
        plan, why_not = await propose_plan(ctx.language, str(args["question"]), turns, values, today)
    if plan is None:
        earlier = [Turn(t["question"], t["plan"], t.get("top")) for t in turns]
        plan = parse(str(args["question"]), vocabulary, today, earlier)
    if (
        data_end is not None
        and today != datetime.now(UTC).date()
        and (plan.period or plan.comparison or plan.horizon)
    ):
        note = (
            f"Your data ends {data_end:%-d %b %Y}, so 'today' is read as {today:%-d %b %Y}, the day after "
            "its newest request."
        )
        plan = plan.model_copy(update={"readings": [note, *plan.readings][:10]})
    return {
        "plan": plan.arguments(),
        "source": plan.source,
        "reference_day": today.isoformat(),
        "data_end": data_end.isoformat() if data_end else None,
        "names_known": {k: len(v) for k, v in values.items()},
        "language_model": {"used": plan.source == "language_model", "unavailable": why_not},
    }


def _compact_plan(result: JSON) -> JSON:
    return {k: result[k] for k in ("plan", "source", "reference_day", "data_end")}


PLAN_QUERY = Tool(
    name="plan_query",
    description="Turn the question and the thread's earlier questions into a typed query plan (intent, "
    "measure, filters, grouping, period, scenario), matching names against the user's data.",
    args_schema={
        "type": "object",
        "properties": {
            "question": {"type": "string", "description": "The user's question."},
            "earlier_questions": {
                "type": "array",
                "items": {"type": "string"},
                "description": "The thread's earlier questions, oldest first (context for follow-ups).",
            },
        },
        "required": ["question"],
        "additionalProperties": False,
    },
    fn=_plan_query,
    compact=_compact_plan,
)


def plan_of(args: JSON) -> QueryPlan:
    """The plan in a tool call's arguments; InvalidInput naming the first invalid field."""
    try:
        return QueryPlan.model_validate(args)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"]) or "plan"
        raise InvalidInput(f"invalid query plan: {where}: {error['msg']}", field=where) from exc


def _run(
    paths: list[Path],
    prices: PriceBook,
    defaults: Mapping[str, str],
    plan: QueryPlan,
    engine: Engine | None = None,
) -> JSON:
    con = _connect(paths, prices, defaults, engine)
    try:
        return execute(con, plan)
    finally:
        con.close()


async def _scoped(ctx: RunContext, plan: QueryPlan) -> tuple[list[Path], JSON | None]:
    """The files that can answer `plan` and, when some datasets are bucketed, which (`grain.coverage`)."""
    usage = ctx.usage
    found = coverage(plan, await usage.datasets())
    if found is None:
        return await usage.parquet_paths(), None
    if found["unanswerable"]:
        return [], found
    only = [str(d["id"]) for d in found["used"]] if found["left_out"] else None
    return await usage.parquet_paths(only), found


def _unanswerable(plan: QueryPlan, grain: JSON, datasets: list[dict[str, Any]]) -> JSON:
    rows = sum(int(d.get("row_count") or 0) for d in datasets)
    return {"intent": plan.intent, "empty": True, "grain": grain, "data": {"rows": rows}}


async def _run_query(ctx: RunContext, args: JSON) -> JSON:
    plan = plan_of(args)
    usage = ctx.usage
    paths, grain = await _scoped(ctx, plan)
    if grain is not None and grain["unanswerable"]:
        return _unanswerable(plan, grain, await usage.datasets())
    if not paths:
        return {"intent": plan.intent, "empty": True, "no_data": True, "data": {"rows": 0}}
    result = await asyncio.to_thread(
        _run, paths, usage.prices, await usage.default_models(), plan, usage.engine
    )
    return {**result, "grain": grain} if grain is not None else result


def _compact_query(result: JSON) -> JSON:
    scope = result.get("scope") or {}
    out: JSON = {
        "intent": result.get("intent"),
        "empty": result.get("empty"),
        "requests": scope.get("requests"),
        "spend_usd": scope.get("spend_usd"),
    }
    for key in ("value", "share", "forecast", "count", "peak_requests_per_s", "percentiles", "change"):
        if key in result:
            out[key] = result[key]
    if isinstance(grain := result.get("grain"), dict):
        out["grain"] = {
            "need": grain.get("need"),
            "used": [d.get("name") for d in grain.get("used", [])],
            "left_out": [d.get("name") for d in grain.get("left_out", [])],
        }
    if isinstance(result.get("groups"), list):
        out["groups"] = [{"key": g.get("key"), "value": g.get("value")} for g in result["groups"][:10]]
    if isinstance(result.get("days"), list):
        out["days"] = [d.get("day") for d in result["days"]]
    return out


_PLAN_SCHEMA = {"type": "object", "description": "A query plan (see GET /api/tools: plan_query's result)."}

RUN_QUERY = Tool(
    name="run_query",
    description="Execute a query plan with DuckDB over the user's datasets (every value a bound parameter): "
    "totals, breakdowns, rankings, comparisons, trends, forecasts, percentiles, capacity and anomalies.",
    args_schema=_PLAN_SCHEMA,
    fn=_run_query,
    compact=_compact_query,
)


def _price(
    paths: list[Path],
    prices: PriceBook,
    defaults: Mapping[str, str],
    plan: QueryPlan,
    engine: Engine | None = None,
) -> JSON:
    con = _connect(paths, prices, defaults, engine)
    try:
        return price_scenario(con, plan, prices)
    finally:
        con.close()


async def _price_scenario(ctx: RunContext, args: JSON) -> JSON:
    plan = plan_of(args)
    if plan.scenario is None:
        raise InvalidInput("price_scenario needs a plan with a scenario", field="scenario")
    usage = ctx.usage
    paths, grain = await _scoped(ctx, plan)
    if not paths:
        return {"kind": plan.scenario.kind, "empty": True, **({"grain": grain} if grain else {})}
    return await asyncio.to_thread(
        _price, paths, usage.prices, await usage.default_models(), plan, usage.engine
    )


def _compact_scenario(result: JSON) -> JSON:
    keys = ("kind", "empty", "missing", "saving_monthly_usd", "saving_pct", "affected_requests", "span_days")
    return {k: result[k] for k in keys if k in result}


PRICE_SCENARIO = Tool(
    name="price_scenario",
    description="Price a what-if over the plan's scope at list prices: routing to another model, output "
    "caps, cache hit rates, prompt caching, batch APIs, context trimming, price changes, traffic growth.",
    args_schema=_PLAN_SCHEMA,
    fn=_price_scenario,
    compact=_compact_scenario,
)


def file_paths(paths: list[Path]) -> list[str]:
    return [os.fspath(p) for p in paths]


__all__ = ["FULL_ANALYSIS", "PLAN_QUERY", "PRICE_SCENARIO", "RUN_QUERY", "Any", "plan_of", "priced_models"]
