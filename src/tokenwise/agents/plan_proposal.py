"""A query plan proposed by the optional language model through tool calling, validated like any other.

The model is offered one tool, `plan_query`, whose parameters are the plan's JSON schema; what it passes
is validated by `QueryPlan` itself, so a proposed plan obeys the same rules as the built-in parser's.
Nothing here raises: when the model is off, unreachable or proposes something invalid, the caller gets
the reason and falls back to the built-in parser.
"""

from __future__ import annotations

import json
import logging
from datetime import date
from typing import Any

from pydantic import ValidationError

from tokenwise.agents.language import LanguageModel, LanguageModelUnavailable
from tokenwise.analysis.plan import QueryPlan, plan_json_schema

logger = logging.getLogger(__name__)

TOOL_NAME = "plan_query"
TOOL_DESCRIPTION = "Answer the user's question about their LLM usage data by stating the query to run on it."
MAX_VALUES = 50  # known values per dimension shown to the model
MAX_VALUE_CHARS = 100
MAX_TURNS = 5  # earlier turns of the thread shown to the model
MAX_QUESTION_CHARS = 1000
MAX_WHY_CHARS = 200

SYSTEM = """\
You turn a question about a team's LLM usage log into a query plan by calling the tool plan_query. You \
never answer the question and never state a figure: a program runs the plan on the data.

Today is {today} (UTC): relative periods ("yesterday", "last 7 days", "last week") count back from \
it. Periods are [start, end) in UTC, as ISO 8601 datetimes. Put how you read every ambiguous word in \
`readings`, e.g. "reading 'last week' as 24-30 Nov 2025".

Intents: total (one figure for a scope), breakdown (a measure grouped by group_by, ranked, top_n), share \
(of the total), top_requests (the most expensive/slowest/largest requests, ranked by rank_by), compare \
(needs comparison: the earlier period, or values of a dimension), trend (a time series, group_by a time \
grain), forecast (horizon_days or horizon), unit_cost (with unit), percentiles, slo (needs threshold), \
what_if (needs scenario with its parameter), capacity, anomalies, optimize (how to cut cost: \
reduction_pct, budget_usd), overview.

Filters name a dimension and values exactly as they are spelled in the data (the known values are \
listed with the question). A name that matches no known value goes in `unknown` with the closest known \
ones as suggestions, not in a filter. A follow-up ("and for faq-bot?", "what about last month?", "break \
that down by user") keeps the previous plan of the thread and changes only what it names. Leave out \
every field the question does not need."""


async def propose_plan(
    language: LanguageModel,
    question: str,
    context: list[dict[str, Any]],
    vocabulary: dict[str, list[str]],
    today: date,
) -> tuple[QueryPlan | None, str | None]:
    """(the model's validated plan, None), or (None, why there is none); never raises."""
    try:
        arguments = await language.call_tool(
            SYSTEM.format(today=today.isoformat()),
            prompt(question, context, vocabulary),
            name=TOOL_NAME,
            description=TOOL_DESCRIPTION,
            parameters=plan_json_schema(),
        )
    except LanguageModelUnavailable as exc:
        return None, _bounded(f"language model unavailable: {exc}")
    except Exception as exc:
        # A fault in an optional helper must not fail the run: the built-in parser answers instead.
        logger.exception("proposing a plan failed")
        return None, _bounded(f"language model failed: {type(exc).__name__}")
    try:
        # Whatever the model claims, the plan's source is the model: reports credit it as such.
        return QueryPlan.model_validate({**arguments, "source": "language_model"}), None
    except ValidationError as exc:
        return None, _bounded(f"the proposed plan is invalid: {_first_error(exc)}")


def prompt(question: str, context: list[dict[str, Any]], vocabulary: dict[str, list[str]]) -> str:
    """The user message: the data's known values, the thread's earlier turns, then the question.

    These come from the user (their data, their words), so they travel as the user's message and never
    among the system instructions.
    """
    known = {
        dimension: [str(value)[:MAX_VALUE_CHARS] for value in values[:MAX_VALUES]]
        for dimension, values in vocabulary.items()
        if values
    }
    turns = [
        {"question": str(turn.get("question", ""))[:MAX_QUESTION_CHARS], "plan": turn.get("plan", {})}
        for turn in context[-MAX_TURNS:]
    ]
    parts = [f"Known values in the data, by dimension: {json.dumps(known, ensure_ascii=False)}"]
    if turns:
        earlier = "\n".join(json.dumps(turn, ensure_ascii=False, default=str) for turn in turns)
        parts.append(f"Earlier in this thread, oldest first, each question with its plan:\n{earlier}")
    parts.append(f"Question: {question[:MAX_QUESTION_CHARS]}")
    return "\n\n".join(parts)


def _first_error(exc: ValidationError) -> str:
    error = exc.errors(include_url=False, include_input=False)[0]
    path = ".".join(str(part) for part in error["loc"]) or "plan"
    return f"{path}: {error['msg']}"


def _bounded(text: str) -> str:
    return text if len(text) <= MAX_WHY_CHARS else text[: MAX_WHY_CHARS - 1] + "…"
