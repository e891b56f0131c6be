"""Follow-ups: a question read against the thread's previous plan ("and for faq-bot?", "what about last
month?", "break that down by user", "why?")."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from tokenwise.agents.calendar import Reading, previous_like
from tokenwise.agents.understanding.words import FOLLOW_UP, WHY
from tokenwise.agents.vocabulary import Mention
from tokenwise.analysis.plan import DIMENSION_COLUMNS, Comparison, Filter, Period, QueryPlan, UnknownName


@dataclass(frozen=True)
class Turn:
    """An earlier question of the thread and the plan it was answered with."""

    question: str
    plan: dict[str, Any]
    top: str | None = None  # the first row of its answer (the top day, feature, ...): what "why?" asks about


def previous_plan(context: list[Turn] | None) -> QueryPlan | None:
    for turn in reversed(context or []):
        try:
            return QueryPlan.model_validate(turn.plan)
        except ValidationError:
            continue
    return None


def is_follow_up(low: str, plan: QueryPlan, periods: list[Reading], mentions: list[Mention]) -> bool:
    if FOLLOW_UP.search(low):
        return True
    words = re.findall(r"[a-z0-9]+", low)
    return len(words) <= 4 and plan.intent in ("total", "overview") and bool(periods or mentions)


def follow(
    plan: QueryPlan,
    previous: QueryPlan,
    fields: dict[str, Any],
    low: str,
    periods: list[Reading],
    mentions: list[Mention],
    context: list[Turn],
) -> QueryPlan:
    asked = context[-1].question if context else ""
    update: dict[str, Any] = {"readings": [*plan.readings], "unknown": plan.unknown, "source": "built-in"}
    if WHY.search(low):
        top = context[-1].top if context else None
        filtered = {f.dimension for f in previous.filters}
        if previous.intent == "breakdown" and top and previous.group_by == "day":
            start = datetime.fromisoformat(top).replace(tzinfo=UTC)
            update["period"] = Period(start=start, end=start + timedelta(days=1), label=f"'{top}' as {top}")
            update["top_n"] = None
            filtered = set()
        elif previous.intent == "breakdown" and top and previous.group_by in DIMENSION_COLUMNS:
            top_filter = Filter.model_validate({"dimension": previous.group_by, "values": [top]})
            update["filters"] = [*previous.filters, top_filter]
            update["top_n"] = None
            filtered.add(top_filter.dimension)
        update["group_by"] = next(d for d in ("feature", "model", "user") if d not in filtered)
        if previous.intent not in ("compare", "anomalies"):
            update["intent"] = "breakdown"
        focus = f" (for {top})" if top and "top_n" in update else ""
        update["readings"].append(
            f"Read 'why?' as what drove the answer to '{asked[:80]}'{focus}: broken down by "
            f"{update['group_by']}."
        )
        return _merged(previous, update)
    own = plan.intent not in ("total", "overview") and not re.search(
        r"\bbreak (?:that|it|this|those) down\b", low
    )
    if own and plan.intent != previous.intent and plan.intent != "breakdown":
        return plan  # a new question in the same thread
    filters = {f.dimension: f for f in previous.filters}
    for f in plan.filters:
        filters[f.dimension] = f
    update["filters"] = list(filters.values())
    if plan.group_by and plan.group_by != previous.group_by:
        update["group_by"] = plan.group_by
        if previous.intent in ("total", "overview", "share"):
            update["intent"] = "breakdown"
    if plan.period is not None:
        update["period"] = plan.period
        if previous.comparison is not None and previous.comparison.kind == "period" and plan.period.start:
            update["comparison"] = Comparison(kind="period", period=previous_like(plan.period))
    if plan.scenario is not None:
        update["scenario"] = plan.scenario
        update["intent"] = "what_if"
    if plan.top_n:
        update["top_n"] = plan.top_n
    changed = [f"{f.dimension} {', '.join(f.values)}" for f in plan.filters] + (
        [plan.period.label] if plan.period is not None and plan.period.label else []
    )
    what = "; ".join(changed) or (f"by {plan.group_by}" if plan.group_by else "the change asked")
    update["readings"].append(f"A follow-up to '{asked[:80]}': the same question with {what}.")
    return _merged(previous, update)


def _merged(previous: QueryPlan, update: dict[str, Any]) -> QueryPlan:
    data = previous.model_dump()
    for key, value in update.items():
        data[key] = value.model_dump() if hasattr(value, "model_dump") else value
    data["filters"] = [f.model_dump() if isinstance(f, Filter) else f for f in data.get("filters", [])]
    data["unknown"] = [u.model_dump() if isinstance(u, UnknownName) else u for u in data.get("unknown", [])]
    try:
        return QueryPlan.model_validate(data)
    except ValidationError:
        return previous
