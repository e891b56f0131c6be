"""Answers that are figures of one scope: totals, rankings, shares, unit costs, percentiles, thresholds and
the top requests."""

from __future__ import annotations

from tokenwise.agents.answers.words import (
    DIMENSION_NAMES,
    JSON,
    MAX_LISTED,
    MEASURE_NAMES,
    MEASURE_UNITS,
    UNIT_NAMES,
    count,
    figure,
    fmt,
    group_table,
    label,
    measure_figures,
    measure_phrase,
    pct,
    safe,
    subject,
    upper_first,
    usd,
    when,
)
from tokenwise.analysis.plan import QueryPlan


def total(plan: QueryPlan, result: JSON) -> JSON:
    t = result["scope"]
    text = f"{upper_first(subject(plan))} {when(plan, t)}: {measure_phrase(plan.measure, t)}."
    out: JSON = {"text": text, "figures": measure_figures(plan.measure, t)}
    if plan.intent == "overview":
        out["text"] += f" {count(t['tokens'])} tokens; {count(t['errors'])} errors."
    if plan.unit == "day" and result.get("days"):
        unit = MEASURE_UNITS[plan.measure]
        per_day = result["value"] / result["days"] if result.get("value") is not None else None
        out["text"] = (
            f"{upper_first(subject(plan))} {when(plan, t)}: an average of {fmt(per_day, unit)} "
            f"{MEASURE_NAMES[plan.measure]} per day ({fmt(result['value'], unit)} over "
            f"{result['days']:g} days)."
        )
        out["figures"].insert(0, figure("Average per day", per_day, unit))
    if result.get("groups"):
        out.update(group_table(plan, result["groups"], plan.group_by or "feature"))
    return out


def breakdown(plan: QueryPlan, result: JSON) -> JSON:
    groups, group_by = result["groups"], result["group_by"]
    unit = MEASURE_UNITS[plan.measure]
    name = DIMENSION_NAMES.get(group_by, group_by)
    listed = ", ".join(
        f"{label(g['key'])} {fmt(g['value'], unit)}"
        + (f" ({pct(100 * g['share'])})" if g.get("share") is not None else "")
        for g in groups[:MAX_LISTED]
    )
    measure = MEASURE_NAMES[plan.measure]
    if plan.top_n == 1 and groups:
        head = f"The {name} with the {'least' if plan.order == 'asc' else 'most'} {measure}"
    elif plan.top_n:
        head = f"{'Bottom' if plan.order == 'asc' else 'Top'} {len(groups)} {name}s by {measure}"
    else:
        head = f"{upper_first(measure)} by {name}"
    text = f"{head} {when(plan, result['scope'])}"
    if plan.filters:
        text += f" ({subject(plan)})"
    text += f": {listed}."
    if len(groups) > MAX_LISTED:
        text += f" {len(groups) - MAX_LISTED} more in the table."
    total = result.get("value")
    if total is not None and unit not in ("pct", "ms", "usd_per_request"):
        text += f" Total {fmt(total, unit)}."
    figures = [figure(label(g["key"]), g["value"], unit) for g in groups[:100]]
    if total is not None:
        figures.append(figure("Total", total, unit))
    return {"text": text, "figures": figures, **group_table(plan, groups, group_by)}


def share(plan: QueryPlan, result: JSON) -> JSON:
    if "share" not in result:
        return breakdown(plan, result)
    unit = MEASURE_UNITS[plan.measure]
    share = None if result["share"] is None else 100 * result["share"]
    text = (
        f"{upper_first(subject(plan))} takes {pct(share)} of {MEASURE_NAMES[plan.measure]} {when(plan)}: "
        f"{fmt(result['value'], unit)} of {fmt(result['whole'], unit)}."
    )
    return {"text": text, "figures": [figure("Share", share, "pct"), figure("Part", result["value"], unit),
                                      figure("Total", result["whole"], unit)]}  # fmt: skip


def _denominator(result: JSON) -> str:
    """What a unit cost divides by, as counted: requests, tokens, users or features."""
    scope, unit = result["scope"], result["unit"]
    if unit in ("request", "1k_requests"):
        return f"{count(scope['requests'])} requests"
    if unit == "1m_tokens":
        return f"{count(scope['tokens'])} tokens"
    return f"{count(result['units'])} {unit}s"


def unit_cost(plan: QueryPlan, result: JSON) -> JSON:
    per, unit = UNIT_NAMES[result["unit"]]
    about = f" of {subject(plan)}" if plan.filters else ""
    text = (
        f"Cost per {per}{about} {when(plan, result['scope'])}: {usd(result['value'])} "
        f"({usd(result['spend_usd'])} over {_denominator(result)})."
    )
    figures = [figure(f"Cost per {per}", result["value"], unit), figure("Spend", result["spend_usd"], "usd")]
    out: JSON = {"text": text, "figures": figures}
    if result.get("groups"):
        groups = result["groups"]
        name = DIMENSION_NAMES.get(plan.group_by or "", plan.group_by or "")
        listed = ", ".join(f"{label(g['key'])} {usd(g['value'])}" for g in groups[:MAX_LISTED])
        out["text"] = (
            f"Cost per {per} by {name} {when(plan, result['scope'])}: {listed}. "
            f"Overall {usd(result['value'])}."
        )
        out["figures"] = [figure(label(g["key"]), g["value"], unit) for g in groups] + figures
        out["table"] = {
            "columns": [{"key": plan.group_by, "label": upper_first(name), "unit": None},
                        {"key": "value", "label": f"Cost per {per}", "unit": unit},
                        {"key": "requests", "label": "Requests", "unit": "requests"}],
            "rows": [[label(g["key"]), g["value"], g["requests"]] for g in groups[:100]],
        }  # fmt: skip
        points = [{"label": label(g["key"]), "value": g["value"]} for g in groups[:50]]
        out["series"] = {"kind": "bar", "label": f"Cost per {per} by {name}", "unit": unit, "points": points}
    return out


def percentiles(plan: QueryPlan, result: JSON) -> JSON:
    column = result["column"]
    unit = "ms" if column == "latency_ms" else "tokens"
    what = {"latency_ms": "Latency", "input_tokens": "Input tokens", "output_tokens": "Output tokens"}.get(
        column, "Tokens"
    )
    ps = result["percentiles"]
    listed = ", ".join(f"{k} {fmt(v, unit)}" for k, v in ps.items())
    about = f" of {subject(plan)}" if plan.filters else ""
    requests = count(result["scope"]["requests"])
    text = f"{what}{about} {when(plan, result['scope'])}: {listed} ({requests} requests)."
    figures = [figure(k, v, unit) for k, v in ps.items()]
    out: JSON = {"text": text, "figures": figures}
    if result.get("groups"):
        groups = result["groups"]
        name = DIMENSION_NAMES.get(plan.group_by or "", plan.group_by or "")
        first = next(iter(ps), "p50")
        listed = "; ".join(
            f"{label(g['key'])} " + ", ".join(f"{k} {fmt(v, unit)}" for k, v in g["percentiles"].items())
            for g in groups[:MAX_LISTED]
        )
        out["text"] = f"{what} by {name} {when(plan, result['scope'])}: {listed}."
        out["figures"] = [
            figure(f"{label(g['key'])} {k}", v, unit) for g in groups for k, v in g["percentiles"].items()
        ] + figures
        out["table"] = {
            "columns": [{"key": plan.group_by, "label": upper_first(name), "unit": None}]
            + [{"key": k, "label": k, "unit": unit} for k in ps]
            + [{"key": "requests", "label": "Requests", "unit": "requests"}],
            "rows": [
                [label(g["key"]), *[g["percentiles"].get(k) for k in ps], g["requests"]] for g in groups[:100]
            ],
        }
        points = [{"label": label(g["key"]), "value": g["percentiles"].get(first)} for g in groups[:50]]
        out["series"] = {"kind": "bar", "label": f"{what} {first} by {name}", "unit": unit, "points": points}
    return out


def slo(plan: QueryPlan, result: JSON) -> JSON:
    t = result["threshold"]
    unit = {"latency_ms": "ms", "cost": "usd"}.get(t["measure"], "tokens")
    what = {"latency_ms": "took", "cost": "cost", "input_tokens": "had input", "output_tokens": "had output"}[
        t["measure"]
    ]
    op = "over" if t["op"] == ">" else "under"
    share = None if result["share"] is None else 100 * result["share"]
    about = f" of {subject(plan)}" if plan.filters else ""
    text = (
        f"{count(result['count'])} requests{about} {when(plan, result['scope'])} {what} {op} "
        f"{fmt(t['value'], unit)}: {pct(share)} of {count(result['measured'])}."
    )
    figures = [
        figure("Requests", result["count"], "requests"),
        figure("Share", share, "pct"),
        figure("Measured", result["measured"], "requests"),
    ]
    return {"text": text, "figures": figures}


def _cell(value: object, unit: str | None) -> object:
    return safe(value, 80) if unit is None and value is not None else value


_LARGEST = {"cost": "most expensive", "latency_ms": "slowest", "tokens": "largest", "input_tokens": "largest",
            "output_tokens": "longest"}  # fmt: skip
_SMALLEST = {"cost": "cheapest", "latency_ms": "fastest", "tokens": "smallest", "input_tokens": "smallest",
             "output_tokens": "shortest"}  # fmt: skip


def top_requests(plan: QueryPlan, result: JSON) -> JSON:
    listed = result["requests_list"]
    words = _LARGEST if plan.order == "desc" else _SMALLEST
    items = []
    # One request is described in full; a list names each with what it was ranked by (the table has the rest).
    ranked = {"cost": "cost_usd", "latency_ms": "latency_ms"}.get(plan.rank_by)
    for r in listed:
        detail = [usd(r["cost_usd"])]
        if r.get("latency_ms") is not None and (len(listed) == 1 or ranked == "latency_ms"):
            detail.append(f"{count(r['latency_ms'])} ms")
        if len(listed) == 1 or ranked is None:
            detail.append(f"{count(r['input_tokens'])} in / {count(r['output_tokens'])} out tokens")
        if len(listed) == 1:
            detail.append(", ".join(safe(x, 60) for x in (r.get("model"), r.get("feature")) if x))
        items.append(f"{safe(r['request_id'] or '(no id)', 80)} ({'; '.join(d for d in detail if d)})")
    what = (
        f"{len(listed)} {words[plan.rank_by]} requests"
        if len(listed) != 1
        else f"{words[plan.rank_by]} request"
    )
    about = f" of {subject(plan)}" if plan.filters else ""
    text = f"The {what}{about} {when(plan, result['scope'])}: {', '.join(items)}."
    columns: list[JSON] = [
        {"key": "request_id", "label": "Request", "unit": None},
        {"key": "ts", "label": "Time (UTC)", "unit": None},
        {"key": "model", "label": "Model", "unit": None},
        {"key": "feature", "label": "Feature", "unit": None},
        {"key": "input_tokens", "label": "Input tokens", "unit": "tokens"},
        {"key": "output_tokens", "label": "Output tokens", "unit": "tokens"},
        {"key": "latency_ms", "label": "Latency", "unit": "ms"},
        {"key": "cost_usd", "label": "Cost", "unit": "usd"},
    ]
    rows = [[_cell(r.get(c["key"]), c["unit"]) for c in columns] for r in listed]
    key = {"cost": "cost_usd", "latency_ms": "latency_ms"}.get(plan.rank_by, "input_tokens")
    unit = {"cost_usd": "usd", "latency_ms": "ms"}.get(key, "tokens")
    figures = [figure(str(r["request_id"]), r.get(key), unit) for r in listed]
    return {"text": text, "figures": figures, "table": {"columns": columns, "rows": rows}}
