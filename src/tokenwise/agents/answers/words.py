"""The vocabulary of answers: names of measures, units and dimensions, and the phrases every answer uses."""

from __future__ import annotations

from typing import Any

from tokenwise.agents.calendar import DASH
from tokenwise.agents.figures import count, fmt, pct, usd
from tokenwise.agents.rendering import safe
from tokenwise.analysis.plan import QueryPlan

JSON = dict[str, Any]
MEASURE_UNITS = {
    "spend": "usd",
    "requests": "requests",
    "input_tokens": "tokens",
    "output_tokens": "tokens",
    "tokens": "tokens",
    "cached_input_tokens": "tokens",
    "errors": "errors",
    "error_rate": "pct",
    "latency_ms": "ms",
    "cost_per_request": "usd_per_request",
}
MEASURE_NAMES = {
    "spend": "spend",
    "requests": "requests",
    "input_tokens": "input tokens",
    "output_tokens": "output tokens",
    "tokens": "tokens",
    "cached_input_tokens": "cached input tokens",
    "errors": "errors",
    "error_rate": "error rate",
    "latency_ms": "median latency",
    "cost_per_request": "cost per request",
}
DIMENSION_NAMES = {"api_key": "API key", "user": "user", "weekday": "weekday", "hour": "hour of day"}
UNIT_NAMES = {
    "request": ("request", "usd_per_request"),
    "1k_requests": ("1,000 requests", "usd_per_1k_requests"),
    "user": ("user", "usd_per_user"),
    "feature": ("feature", "usd_per_feature"),
    "1m_tokens": ("1M tokens", "usd_per_1m_tokens"),
}
MAX_LISTED = 10


def upper_first(text: str) -> str:
    """The text with its first letter in upper case, the rest as it is (names keep their spelling)."""
    return text[:1].upper() + text[1:]


def figure(label: str, value: float | None, unit: str) -> JSON:
    return {"label": label, "value": value, "unit": unit}


def when(plan: QueryPlan, scope: JSON | None = None) -> str:
    if plan.period is not None and plan.period.label:
        dates = plan.period.label.split(" as ", 1)[-1]
        return f"on {dates}" if len(dates.split()) == 3 and DASH not in dates else f"in {dates}"
    return "in all your data"


def subject(plan: QueryPlan) -> str:
    parts = []
    for f in plan.filters:
        name = DIMENSION_NAMES.get(f.dimension, f.dimension)
        values = " or ".join(safe(v, 80) for v in f.values)
        parts.append(f"{'not ' if f.exclude else ''}{name} {values}")
    return ", ".join(parts) if parts else "all traffic"


def label(key: object) -> str:
    return "(none)" if key is None else safe(key, 80)


def measure_phrase(measure: str, t: JSON) -> str:
    n = t["requests"]
    if measure == "spend":
        return (
            f"{usd(t['spend_usd'])} spend ({count(n)} requests)"
            if t["spend_usd"] is not None
            else "no priced spend"
        )
    if measure == "requests":
        return f"{count(n)} requests ({usd(t['spend_usd'])} spend)"
    if measure in ("input_tokens", "output_tokens", "cached_input_tokens"):
        return f"{count(t[measure])} {MEASURE_NAMES[measure]} ({count(n)} requests)"
    if measure == "tokens":
        return (
            f"{count(t['tokens'])} tokens ({count(t['input_tokens'])} input, "
            f"{count(t['output_tokens'])} output) over {count(n)} requests"
        )
    if measure == "errors":
        rate = 100 * t["errors"] / n if n else 0.0
        return f"{count(t['errors'])} errors ({pct(rate)} of {count(n)} requests)"
    if measure == "error_rate":
        rate = 100 * t["errors"] / n if n else 0.0
        return f"an error rate of {pct(rate)} ({count(t['errors'])} of {count(n)} requests)"
    if measure == "cost_per_request":
        return f"{usd(t['cost_per_request'])} per request ({count(n)} requests)"
    return f"{count(n)} requests"


def measure_figures(measure: str, t: JSON) -> list[JSON]:
    out = [figure("Requests", t["requests"], "requests"), figure("Spend", t["spend_usd"], "usd")]
    if measure in ("input_tokens", "output_tokens", "cached_input_tokens", "tokens"):
        out.insert(0, figure(upper_first(MEASURE_NAMES[measure]), t[measure], "tokens"))
    if measure == "tokens":
        out += [
            figure("Input tokens", t["input_tokens"], "tokens"),
            figure("Output tokens", t["output_tokens"], "tokens"),
        ]
    if measure in ("errors", "error_rate"):
        rate = 100 * t["errors"] / t["requests"] if t["requests"] else None
        out[:0] = [figure("Errors", t["errors"], "errors"), figure("Error rate", rate, "pct")]
    if measure == "cost_per_request":
        out.insert(0, figure("Cost per request", t["cost_per_request"], "usd_per_request"))
    return out


def group_table(plan: QueryPlan, groups: list[JSON], group_by: str) -> JSON:
    unit = MEASURE_UNITS[plan.measure]
    name = DIMENSION_NAMES.get(group_by, group_by)
    columns: list[JSON] = [
        {"key": group_by, "label": upper_first(name), "unit": None},
        {"key": "value", "label": f"{upper_first(MEASURE_NAMES[plan.measure])} {when(plan)}", "unit": unit},
        {"key": "requests", "label": "Requests", "unit": "requests"},
        {"key": "spend_usd", "label": f"Spend {when(plan)}", "unit": "usd"},
        {"key": "share", "label": "Share", "unit": "pct"},
    ]
    # The measure's own column is `value`: a second column with the same figure says nothing new.
    shown = [
        c for c in columns if c["key"] != {"requests": "requests", "spend": "spend_usd"}.get(plan.measure)
    ]
    share = {g["key"]: None if g.get("share") is None else 100 * g["share"] for g in groups}
    rows = [
        [label(g["key"]) if c["key"] == group_by else share[g["key"]] if c["key"] == "share" else g[c["key"]]
         for c in shown]
        for g in groups[:100]
    ]  # fmt: skip
    columns = shown
    time_grain = group_by in ("day", "week", "month", "hourly") or (
        group_by == "hour" and plan.intent == "trend"
    )
    series = {
        "kind": "line" if time_grain else "bar",
        "label": f"{upper_first(MEASURE_NAMES[plan.measure])} by {name}",
        "unit": unit,
        "points": [{"label": label(g["key"]), "value": g["value"]} for g in groups[:366]],
    }
    return {"table": {"columns": columns, "rows": rows}, "series": series}


__all__ = ["JSON", "count", "fmt", "pct", "safe", "usd"]
