"""Triage: what the user is asking about, what they named, and whether there is data to answer it."""

from __future__ import annotations

import asyncio
import functools
import re

from tokenwise.agents.base import RunContext
from tokenwise.agents.phrasing import RESTATE_QUESTION, phrase
from tokenwise.agents.query_tools import PLAN_QUERY
from tokenwise.agents.sufficiency import judge
from tokenwise.agents.tooling import JSON, Agent, AgentScope, Tool
from tokenwise.analysis.profile import EMPTY, profile

CATEGORIES = (
    "cost_optimization",
    "latency_performance",
    "model_selection",
    "workload_analysis",
    "capacity_planning",
    "general_question",
)

# Order breaks ties: a question that mentions cost and latency equally is mostly about cost.
_KEYWORDS: dict[str, tuple[str, ...]] = {
    "cost_optimization": (
        "cost", "costs", "spend", "spending", "bill", "billing", "cheaper", "cheap", "save", "saving",
        "savings", "reduce", "cut", "budget", "expensive", "price", "pricing", "invoice",
    ),
    "latency_performance": (
        "latency", "slow", "slower", "faster", "speed", "p50", "p90", "p95", "p99", "ttft",
        "time to first token", "throughput", "response time", "timeout", "timeouts", "tokens per second",
    ),
    "model_selection": (
        "which model", "switch", "compare", "comparison", "versus", "vs", "alternative", "alternatives",
        "migrate", "choose", "best model", "smaller model", "fine-tune", "fine tune", "distill",
    ),
    "workload_analysis": (
        "workload", "usage", "pattern", "patterns", "breakdown", "traffic", "feature", "features",
        "analyze", "analyse", "trend", "trends", "distribution", "per team", "per user",
    ),
    "capacity_planning": (
        "capacity", "scale", "scaling", "forecast", "growth", "rate limit", "rate limits", "quota",
        "provisioned", "ptu", "tpm", "rpm", "next quarter", "next month", "headroom", "peak",
    ),
}  # fmt: skip

_MODEL = re.compile(
    r"\b(gpt-4o-mini|gpt-4o|gpt-4\.1(?:-mini|-nano)?|gpt-4-turbo|gpt-4|gpt-3\.5-turbo|gpt-5(?:-mini|-nano)?"
    r"|o1(?:-mini|-preview)?|o3(?:-mini)?|o4-mini"
    r"|claude(?:[- ](?:\d(?:\.\d)?[- ])?(?:opus|sonnet|haiku)(?:[- ]\d(?:\.\d)?)?)?"
    r"|llama[- ]?\d(?:\.\d)?|llama|mistral(?:[- ](?:large|medium|small))?|mixtral"
    r"|gemini(?:[- ]\d(?:\.\d)?)?(?:[- ](?:pro|flash))?|command[- ]r\+?|deepseek(?:[- ](?:v3|r1))?|qwen)\b",
    re.IGNORECASE,
)
_REDUCTION = re.compile(
    r"\b(?:cut|reduce|lower|save|trim|shrink|drop)\w*\s+(?:\w+\s+){0,4}?(?:by\s+)?(\d{1,3}(?:\.\d+)?)\s*(?:%|percent)"
    r"|(\d{1,3}(?:\.\d+)?)\s*(?:%|percent)\s+(?:\w+\s+){0,2}?(?:reduction|cut|savings|cheaper|lower|less)",
    re.IGNORECASE,
)
_LATENCY = re.compile(
    r"\b(p\d{2}(?:\.\d)?)\b(?:\s+\w+){0,4}?\s+(?:under|below|over|above|of|at|<|>|<=|>=|within)?\s*"
    r"(\d{1,7}(?:\.\d{1,3})?)\s*(ms|milliseconds?|s|seconds?)\b",
    re.IGNORECASE,
)
_BUDGET = re.compile(r"\$\s?(\d[\d,]{0,15}(?:\.\d{1,2})?)\s*(k\b)?", re.IGNORECASE)
_UNIT_DAYS = {"hour": 1 / 24, "day": 1.0, "week": 7.0, "month": 30.0, "quarter": 91.0, "year": 365.0}
_SPAN = re.compile(
    r"\b(?:last|past|previous|this)\s+(?:(\d{1,5})\s+)?(hour|day|week|month|quarter|year)s?\b", re.IGNORECASE
)
_DAY = re.compile(r"\b(?:yesterday|today)\b", re.IGNORECASE)
_DATE = re.compile(r"\b(20\d\d-[01]\d-[0-3]\d)\b")


# a keyword counts once when it stands as a word of its own (compiled once: every question is scored)
_KEYWORD_PATTERNS = {
    name: [re.compile(rf"(?<![\w-]){re.escape(word)}(?![\w-])") for word in words]
    for name, words in _KEYWORDS.items()
}
_UNREACHABLE = re.compile(r"language model unavailable: (?:no answer from|cannot reach)")


def classify(question: str) -> JSON:
    """Keyword classification of a question, with the models, targets and SLOs it names."""
    text = question.lower()
    entities = extract_entities(question)
    scores = {
        name: sum(pattern.search(text) is not None for pattern in patterns)
        for name, patterns in _KEYWORD_PATTERNS.items()
    }
    if "reduction_pct" in entities:
        scores["cost_optimization"] += 2
    if "latency_slo" in entities:
        scores["latency_performance"] += 1
    ranked = sorted((n for n in scores if scores[n] > 0), key=lambda n: -scores[n])  # stable: keeps ties
    category = ranked[0] if ranked else "general_question"
    return {"category": category, "secondary": ranked[1:3], "scores": scores, "entities": entities}


def extract_entities(question: str) -> JSON:
    """Models, spend-reduction target, latency SLO, budget and time range named in the question."""
    entities: JSON = {}
    models = list(dict.fromkeys(m.group(0).lower().replace(" ", "-") for m in _MODEL.finditer(question)))
    if models:
        entities["models"] = models
    if reduction := _REDUCTION.search(question):
        pct = float(reduction.group(1) or reduction.group(2))
        if 0 < pct <= 100:
            entities["reduction_pct"] = int(pct) if pct.is_integer() else pct
    if latency := _LATENCY.search(question):
        value = float(latency.group(2))
        ms = value if latency.group(3).lower().startswith("m") else value * 1000
        entities["latency_slo"] = {"percentile": latency.group(1).lower(), "threshold_ms": int(ms)}
    if budget := _BUDGET.search(question):
        amount = float(budget.group(1).replace(",", "") or 0) * (1000 if budget.group(2) else 1)
        if amount > 0:
            entities["budget_usd"] = amount
    if (period := _time_range(question)) is not None:
        entities["time_range"] = period
    return entities


def _time_range(question: str) -> JSON | None:
    if span := _SPAN.search(question):
        count = int(span.group(1)) if span.group(1) else 1
        unit = span.group(2).lower()
        if 0 < count <= 10_000:
            return {"text": span.group(0).lower(), "days": count * _UNIT_DAYS[unit]}
    if day := _DAY.search(question):
        return {"text": day.group(0).lower(), "days": 1.0}
    dates = _DATE.findall(question)
    if dates:
        return {"start": dates[0], **({"end": dates[1]} if len(dates) > 1 else {})}
    return None


async def _classify_request(ctx: RunContext, args: JSON) -> JSON:
    return classify(str(args["question"]))


async def _check_data_sufficiency(ctx: RunContext, args: JSON) -> JSON:
    usage = ctx.usage
    datasets = await usage.datasets()
    paths = await usage.parquet_paths()
    # A few column counts in DuckDB: cheap, but off the event loop all the same.
    found = (
        await asyncio.to_thread(
            functools.partial(profile, engine=usage.engine), paths, usage.prices, await usage.default_models()
        )
        if paths
        else EMPTY
    )
    return judge(found, datasets, str(args.get("category", "general_question")))


def _compact_sufficiency(result: JSON) -> JSON:
    return {
        "level": result["level"],
        "datasets": result["datasets"],
        "rows": result["rows"],
        "formats": result["formats"],
        "period": result["period"],
        "reasons": result["reasons"],
        "missing": [m["field"] for m in result["missing"]],
        "cannot_check": [g["strategy"] for g in result["gaps"]],
    }


CLASSIFY_REQUEST = Tool(
    name="classify_request",
    description="Classify the question by keyword and extract named models, time range, targets and SLOs.",
    args_schema={
        "type": "object",
        "properties": {"question": {"type": "string", "description": "The user's question."}},
        "required": ["question"],
        "additionalProperties": False,
    },
    fn=_classify_request,
)

CHECK_DATA_SUFFICIENCY = Tool(
    name="check_data_sufficiency",
    description="Profile the user's datasets (rows, period, columns with values, priced rows) and judge "
    "whether they answer the question: sufficient, partial (what is missing) or insufficient.",
    args_schema={
        "type": "object",
        "properties": {"category": {"type": "string", "description": "The triage category."}},
        "additionalProperties": False,
    },
    fn=_check_data_sufficiency,
    compact=_compact_sufficiency,
)


async def run_triage(ctx: RunContext, scope: AgentScope) -> JSON:
    """Classify the question and judge the data behind it."""
    scope.think("Classifying the question and checking what usage data exists.")
    classification = await scope.call(CLASSIFY_REQUEST, {"question": ctx.question})
    category = classification["category"]
    data = await scope.call(CHECK_DATA_SUFFICIENCY, {"category": category})
    scope.think(f"Category {category}; data is {data['level']}: {data['reason']}")
    for item in data["missing"]:
        if item["field"] == "model":
            where = f" ({', '.join(item['datasets'])})" if item["datasets"] else ""
            scope.think(f"Which model served the rows without one{where}? To price them, {item['how']}.")
    turns = await ctx.thread.turns()
    planned = await scope.call(
        PLAN_QUERY, {"question": ctx.question, "earlier_questions": [str(t["question"]) for t in turns]}
    )
    plan = planned["plan"]
    scope.think(
        f"Plan: {plan['intent']} of {plan.get('measure', 'spend')}"
        + "".join(f"; {r}" for r in plan.get("readings", []))
    )
    plan_note = str(planned["language_model"]["unavailable"] or "")
    if plan_note:
        scope.think(f"The language model did not plan the question ({plan_note}); the built-in parser did.")
    restated: str | None = None
    why_not: str | None = None
    if _UNREACHABLE.search(plan_note):
        why_not = plan_note  # already timed out once in this run: do not make the user wait again
    else:
        restated, why_not = await phrase(scope, RESTATE_QUESTION, ctx.question)
    if restated:
        scope.think(f"Restated: {restated}")
    return {
        "plan": plan,
        "plan_source": planned["source"],
        "category": category,
        "secondary": classification["secondary"],
        "entities": classification["entities"],
        "data_sufficiency": data["level"],
        "datasets": data["datasets"],
        "rows": data["rows"],
        "data_reason": data["reason"],
        "sufficiency": data,
        "restated": restated,
        "language_model": {
            "used": restated is not None,
            "unavailable": why_not,
            "plan": plan_note or None,
        },
    }


def _compact(result: JSON) -> JSON:
    keys = ("category", "secondary", "entities", "data_sufficiency", "datasets", "rows", "restated", "plan")
    return {key: result[key] for key in keys}


TRIAGE = Agent(
    name="triage",
    description="Works out what the question is about, what it names (models, period, targets, SLOs) and "
    "whether the user's data can answer it.",
    tools=(CLASSIFY_REQUEST, CHECK_DATA_SUFFICIENCY, PLAN_QUERY, RESTATE_QUESTION),
    run=run_triage,
    compact=_compact,
)
