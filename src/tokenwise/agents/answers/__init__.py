"""The direct answer to a question: one or two sentences with the figures, the figures themselves, and the
table or chart behind them, all written from what `analysis.query` / `analysis.scenario` computed.

Every number here is formatted from a tool's result; names from the data are defanged (`rendering.safe`).
"""

from __future__ import annotations

from collections.abc import Callable

from tokenwise.agents import grain
from tokenwise.agents.answers import periods, scenarios, totals
from tokenwise.agents.answers.words import DIMENSION_NAMES, JSON, figure, safe, subject, when
from tokenwise.analysis.plan import QueryPlan

Writer = Callable[[QueryPlan, JSON], JSON]
WRITERS: dict[str, Writer] = {
    "total": totals.total,
    "overview": totals.total,
    "breakdown": totals.breakdown,
    "share": totals.share,
    "top_requests": totals.top_requests,
    "unit_cost": totals.unit_cost,
    "percentiles": totals.percentiles,
    "slo": totals.slo,
    "compare": periods.compare,
    "trend": periods.trend,
    "forecast": periods.forecast,
    "anomalies": periods.anomalies,
    "capacity": scenarios.capacity,
}


def write(plan: QueryPlan, result: JSON, scenario: JSON | None = None) -> JSON:
    """The answer for `plan` from the query result (and the priced scenario, for a what-if)."""
    base: JSON = {
        "intent": plan.intent,
        "readings": list(plan.readings),
        "unknown": [u.model_dump() for u in plan.unknown],
        "table": None,
        "series": None,
        "missing": [],
        "answerable": True,
    }
    if plan.unknown:
        return {**base, **unknown(plan, result)}
    found = result.get("grain") if isinstance(result.get("grain"), dict) else None
    if found is not None and found.get("unanswerable"):
        missing = [f"per-request data ({found['why']})"]
        text = grain.unanswerable_text(found)
        return {**base, "text": text, "figures": [], "answerable": False, "missing": missing}
    base["readings"] = [*base["readings"], *grain.readings(found)]
    if result.get("empty") and plan.intent not in ("forecast",):
        data = result.get("data") or {}
        covers = (
            f" Your data covers {str(data.get('first'))[:10]} to {str(data.get('last'))[:10]}."
            if data.get("first")
            else " There is no usage data yet."
        )
        text = f"No request matches {subject(plan)} {when(plan)}.{covers}"
        if found is not None and found.get("left_out"):
            text += grain.mixed_text(found)
        return {**base, "text": text, "figures": [figure("Requests", 0, "requests")], "answerable": False}
    if result.get("missing"):
        return {**base, **scenarios.missing(result["missing"])}
    writer = WRITERS.get(plan.intent, totals.total)
    if plan.intent == "what_if" and scenario is not None:
        out = {**base, **scenarios.what_if(plan, result, scenario)}
    else:
        out = {**base, **writer(plan, result)}
    if found is not None and found.get("left_out"):
        out["text"] += grain.mixed_text(found)
    if plan.unanswerable:
        parts = ", ".join(f"'{safe(p, 40)}'" for p in plan.unanswerable)
        out["text"] += (
            f" Your usage data cannot answer {parts}: it holds requests, tokens, cost, latency and status, "
            "nothing about that."
        )
        out["missing"] = [*out.get("missing", []), *plan.unanswerable]
    return out


def unknown(plan: QueryPlan, result: JSON) -> JSON:
    parts = []
    for u in plan.unknown:
        kind = DIMENSION_NAMES.get(u.dimension or "", u.dimension or "name")
        close = (
            f"; the closest known: {', '.join(safe(s, 60) for s in u.suggestions)}" if u.suggestions else ""
        )
        parts.append(f"There is no {kind} named '{safe(u.text, 60)}' in your data{close}.")
    return {
        "text": " ".join(parts) + " Ask again with one of the known names.",
        "figures": [],
        "answerable": False,
        "missing": [u.text for u in plan.unknown],
    }
