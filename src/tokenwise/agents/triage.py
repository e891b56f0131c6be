"""Triage: what the user is asking about, what they named, and whether there is data to answer it."""

from __future__ import annotations

import re

from tokenwise.agents.base import RunContext
from tokenwise.agents.tooling import JSON, Agent, AgentScope, Tool

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

# Rows below which percentiles and per-model splits are too noisy to quote.
SUFFICIENT_ROWS = 1_000


def classify(question: str) -> JSON:
    """Keyword classification of a question, with the models, targets and SLOs it names."""
    text = question.lower()
    entities = extract_entities(question)
    scores = {name: sum(_mentions(text, word) for word in words) for name, words in _KEYWORDS.items()}
    if "reduction_pct" in entities:
        scores["cost_optimization"] += 2
    if "latency_slo" in entities:
        scores["latency_performance"] += 1
    ranked = sorted((n for n in scores if scores[n] > 0), key=lambda n: -scores[n])  # stable: keeps ties
    category = ranked[0] if ranked else "general_question"
    return {"category": category, "secondary": ranked[1:3], "scores": scores, "entities": entities}


def extract_entities(question: str) -> JSON:
    """Models, spend-reduction target, latency SLO and budget named in the question."""
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
    return entities


def _mentions(text: str, word: str) -> int:
    return int(re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text) is not None)


def sufficiency(datasets: int, rows: int) -> JSON:
    """Whether `rows` of usage data can support measured answers."""
    if rows <= 0:
        level, reason = "insufficient", "No usage data has been uploaded, so nothing can be measured."
    elif rows < SUFFICIENT_ROWS:
        level = "partial"
        reason = f"{rows} rows is below {SUFFICIENT_ROWS}; percentiles and per-model splits would be noisy."
    else:
        level, reason = "sufficient", f"{rows} rows across {datasets} dataset(s)."
    return {"level": level, "datasets": datasets, "rows": rows, "reason": reason}


async def _classify_request(ctx: RunContext, args: JSON) -> JSON:
    return classify(str(args["question"]))


async def _check_data_sufficiency(ctx: RunContext, args: JSON) -> JSON:
    return sufficiency(await ctx.usage.dataset_count(), await ctx.usage.row_count())


CLASSIFY_REQUEST = Tool(
    name="classify_request",
    description="Classify the question by keyword and extract named models, reduction targets and SLOs.",
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
    description="Count the user's usage datasets and rows and judge whether they can support measurements.",
    args_schema={"type": "object", "properties": {}, "additionalProperties": False},
    fn=_check_data_sufficiency,
)


async def run_triage(ctx: RunContext, scope: AgentScope) -> JSON:
    """Classify the question and check the data behind it."""
    scope.think("Classifying the question and checking what usage data exists.")
    classification = await scope.call(CLASSIFY_REQUEST, {"question": ctx.question})
    data = await scope.call(CHECK_DATA_SUFFICIENCY, {})
    scope.think(f"Category {classification['category']}; data is {data['level']}.")
    return {
        "category": classification["category"],
        "secondary": classification["secondary"],
        "entities": classification["entities"],
        "data_sufficiency": data["level"],
        "datasets": data["datasets"],
        "rows": data["rows"],
        "data_reason": data["reason"],
    }


TRIAGE = Agent(
    name="triage",
    description="Works out what the question is about and whether there is usage data to answer it.",
    tools=(CLASSIFY_REQUEST, CHECK_DATA_SUFFICIENCY),
    run=run_triage,
)
