"""The direct answer to a question: one or two sentences with the figures, the figures themselves, and the
table or chart behind them, all written from what `analysis.query` / `analysis.scenario` computed.

Every number here is formatted from a tool's result; names from the data are defanged (`rendering.safe`).
"""

from __future__ import annotations

from typing import Any

from tokenwise.agents.figures import count, pct, usd
from tokenwise.agents.rendering import safe
from tokenwise.analysis.plan import QueryPlan

JSON = dict[str, Any]
_MEASURE_UNITS = {
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
_MEASURE_NAMES = {
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
_DIMENSION_NAMES = {"api_key": "API key", "user": "user", "weekday": "weekday", "hour": "hour of day"}
_UNIT_NAMES = {
    "request": ("request", "usd_per_request"),
    "1k_requests": ("1,000 requests", "usd_per_1k_requests"),
    "user": ("user", "usd_per_user"),
    "feature": ("feature", "usd_per_feature"),
    "1m_tokens": ("1M tokens", "usd_per_1m_tokens"),
}
_MAX_LISTED = 10


def fmt(value: float | None, unit: str | None) -> str:
    """A figure as the answer writes it, by unit."""
    if value is None:
        return "unknown"
    if unit and unit.startswith("usd"):
        return usd(value) + (" a month" if unit == "usd_per_month" else "")
    if unit == "pct":
        return pct(value)
    if unit == "ms":
        return f"{count(value)} ms"
    if unit in ("requests_per_s", "tokens_per_s"):
        return f"{value:,.2f}" if value < 10 else count(value)
    return count(value)


def figure(label: str, value: float | None, unit: str) -> JSON:
    return {"label": label, "value": value, "unit": unit}


def _when(plan: QueryPlan, scope: JSON | None = None) -> str:
    if plan.period is not None and plan.period.label:
        dates = plan.period.label.split(" as ", 1)[-1]
        return f"on {dates}" if len(dates.split()) == 3 and "–" not in dates else f"in {dates}"
    return "in all your data"


def _subject(plan: QueryPlan) -> str:
    parts = []
    for f in plan.filters:
        name = _DIMENSION_NAMES.get(f.dimension, f.dimension)
        values = " or ".join(safe(v, 80) for v in f.values)
        parts.append(f"{'not ' if f.exclude else ''}{name} {values}")
    return ", ".join(parts) if parts else "all traffic"


def _measure_phrase(measure: str, t: JSON) -> str:
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
        return f"{count(t[measure])} {_MEASURE_NAMES[measure]} ({count(n)} requests)"
    if measure == "tokens":
        return (
            f"{count(t['tokens'])} tokens ({count(t['input_tokens'])} input, {count(t['output_tokens'])} output) "
            f"over {count(n)} requests"
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


def _measure_figures(measure: str, t: JSON) -> list[JSON]:
    out = [figure("Requests", t["requests"], "requests"), figure("Spend", t["spend_usd"], "usd")]
    if measure in ("input_tokens", "output_tokens", "cached_input_tokens", "tokens"):
        out.insert(0, figure(_MEASURE_NAMES[measure].capitalize(), t[measure], "tokens"))
    if measure == "tokens":
        out += [figure("Input tokens", t["input_tokens"], "tokens"), figure("Output tokens", t["output_tokens"], "tokens")]
    if measure in ("errors", "error_rate"):
        rate = 100 * t["errors"] / t["requests"] if t["requests"] else None
        out[:0] = [figure("Errors", t["errors"], "errors"), figure("Error rate", rate, "pct")]
    if measure == "cost_per_request":
        out.insert(0, figure("Cost per request", t["cost_per_request"], "usd_per_request"))
    return out


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
        return {**base, **_unknown(plan, result)}
    if result.get("empty") and plan.intent not in ("forecast",):
        data = result.get("data") or {}
        covers = (
            f" Your data covers {str(data.get('first'))[:10]} to {str(data.get('last'))[:10]}."
            if data.get("first")
            else " There is no usage data yet."
        )
        text = f"No request matches {_subject(plan)} {_when(plan)}.{covers}"
        return {**base, "text": text, "figures": [figure("Requests", 0, "requests")], "answerable": False}
    if result.get("missing"):
        return {**base, **_missing(result["missing"])}
    writer = _WRITERS.get(plan.intent, _total)
    if plan.intent == "what_if" and scenario is not None:
        out = {**base, **_what_if(plan, result, scenario)}
    else:
        out = {**base, **writer(plan, result)}
    if plan.unanswerable:
        parts = ", ".join(f"'{safe(p, 40)}'" for p in plan.unanswerable)
        out["text"] += (
            f" Your usage data cannot answer {parts}: it holds requests, tokens, cost, latency and status, "
            "nothing about that."
        )
        out["missing"] = [*out.get("missing", []), *plan.unanswerable]
    return out


def _unknown(plan: QueryPlan, result: JSON) -> JSON:
    parts = []
    for u in plan.unknown:
        kind = _DIMENSION_NAMES.get(u.dimension or "", u.dimension or "name")
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


def _missing(what: str) -> JSON:
    texts = {
        "latency_ms": "Your data has no latency, so latency cannot be measured: upload a log with a "
        "`latency_ms` column (or `latency_s`, or start and end times).",
        "history": "There is not enough daily history to fit a trend: at least two days are needed.",
        "days": "Anomalies need at least a week of daily figures; the data holds fewer days.",
        "target_price": "The target model has no price in the price book, so the move cannot be priced: add "
        "it to a prices file (`TOKENWISE_PRICES_FILE`).",
    }
    return {"text": texts.get(what, f"The data cannot answer this: {what} is missing."), "figures": [],
            "answerable": False, "missing": [what]}  # fmt: skip


def _total(plan: QueryPlan, result: JSON) -> JSON:
    t = result["scope"]
    text = f"{_subject(plan).capitalize()} {_when(plan, t)}: {_measure_phrase(plan.measure, t)}."
    out: JSON = {"text": text, "figures": _measure_figures(plan.measure, t)}
    if plan.intent == "overview":
        out["text"] += f" {count(t['tokens'])} tokens; {count(t['errors'])} errors."
    if plan.unit == "day" and result.get("days"):
        unit = _MEASURE_UNITS[plan.measure]
        per_day = result["value"] / result["days"] if result.get("value") is not None else None
        out["text"] = (
            f"{_subject(plan).capitalize()} {_when(plan, t)}: an average of {fmt(per_day, unit)} "
            f"{_MEASURE_NAMES[plan.measure]} per day ({fmt(result['value'], unit)} over {result['days']:g} days)."
        )
        out["figures"].insert(0, figure("Average per day", per_day, unit))
    if result.get("groups"):
        out.update(_group_table(plan, result["groups"], plan.group_by or "feature"))
    return out


def _label(key: object) -> str:
    return "(none)" if key is None else safe(key, 80)


def _group_table(plan: QueryPlan, groups: list[JSON], group_by: str) -> JSON:
    unit = _MEASURE_UNITS[plan.measure]
    name = _DIMENSION_NAMES.get(group_by, group_by)
    columns = [
        {"key": group_by, "label": name.capitalize(), "unit": None},
        {"key": "value", "label": f"{_MEASURE_NAMES[plan.measure].capitalize()} {_when(plan)}", "unit": unit},
        {"key": "requests", "label": "Requests", "unit": "requests"},
        {"key": "spend_usd", "label": f"Spend {_when(plan)}", "unit": "usd"},
        {"key": "share", "label": "Share", "unit": "pct"},
    ]
    rows = [
        [_label(g["key"]), g["value"], g["requests"], g["spend_usd"],
         None if g.get("share") is None else 100 * g["share"]]
        for g in groups[:100]
    ]  # fmt: skip
    time_grain = group_by in ("day", "week", "month", "hourly") or (
        group_by == "hour" and plan.intent == "trend"
    )
    series = {
        "kind": "line" if time_grain else "bar",
        "label": f"{_MEASURE_NAMES[plan.measure].capitalize()} by {name}",
        "unit": unit,
        "points": [{"label": _label(g["key"]), "value": g["value"]} for g in groups[:366]],
    }
    return {"table": {"columns": columns, "rows": rows}, "series": series}


def _breakdown(plan: QueryPlan, result: JSON) -> JSON:
    groups, group_by = result["groups"], result["group_by"]
    unit = _MEASURE_UNITS[plan.measure]
    name = _DIMENSION_NAMES.get(group_by, group_by)
    listed = ", ".join(
        f"{_label(g['key'])} {fmt(g['value'], unit)}"
        + (f" ({pct(100 * g['share'])})" if g.get("share") is not None else "")
        for g in groups[:_MAX_LISTED]
    )
    which = f"{'Bottom' if plan.order == 'asc' else 'Top'} {len(groups)}" if plan.top_n else "By"
    head = f"{which} {name}{'s' if plan.top_n and len(groups) != 1 else ''}"
    text = f"{head} by {_MEASURE_NAMES[plan.measure]} {_when(plan, result['scope'])}"
    if plan.filters:
        text += f" ({_subject(plan)})"
    text += f": {listed}."
    if len(groups) > _MAX_LISTED:
        text += f" {len(groups) - _MAX_LISTED} more in the table."
    total = result.get("value")
    if total is not None and unit not in ("pct", "ms", "usd_per_request"):
        text += f" Total {fmt(total, unit)}."
    figures = [figure(_label(g["key"]), g["value"], unit) for g in groups[:100]]
    if total is not None:
        figures.append(figure("Total", total, unit))
    return {"text": text, "figures": figures, **_group_table(plan, groups, group_by)}


def _share(plan: QueryPlan, result: JSON) -> JSON:
    if "share" not in result:
        return _breakdown(plan, result)
    unit = _MEASURE_UNITS[plan.measure]
    share = None if result["share"] is None else 100 * result["share"]
    text = (
        f"{_subject(plan).capitalize()} takes {pct(share)} of {_MEASURE_NAMES[plan.measure]} {_when(plan)}: "
        f"{fmt(result['value'], unit)} of {fmt(result['whole'], unit)}."
    )
    return {"text": text, "figures": [figure("Share", share, "pct"), figure("Part", result["value"], unit),
                                      figure("Total", result["whole"], unit)]}  # fmt: skip


def _top_requests(plan: QueryPlan, result: JSON) -> JSON:
    listed = result["requests_list"]
    words = {"cost": "most expensive", "latency_ms": "slowest", "tokens": "largest", "input_tokens": "largest",
             "output_tokens": "longest"}  # fmt: skip
    if plan.order == "asc":
        words = {"cost": "cheapest", "latency_ms": "fastest", "tokens": "smallest", "input_tokens": "smallest",
                 "output_tokens": "shortest"}  # fmt: skip
    items = []
    for r in listed:
        detail = [usd(r["cost_usd"])]
        if r.get("latency_ms") is not None:
            detail.append(f"{count(r['latency_ms'])} ms")
        detail.append(f"{count(r['input_tokens'])} in / {count(r['output_tokens'])} out tokens")
        detail.append(", ".join(safe(x, 60) for x in (r.get("model"), r.get("feature")) if x))
        items.append(f"{safe(r['request_id'] or '(no id)', 80)} ({'; '.join(d for d in detail if d)})")
    text = f"The {len(listed)} {words[plan.rank_by]} requests {_when(plan, result['scope'])}: {', '.join(items)}."
    columns = [
        {"key": "request_id", "label": "Request", "unit": None},
        {"key": "ts", "label": "Time (UTC)", "unit": None},
        {"key": "model", "label": "Model", "unit": None},
        {"key": "feature", "label": "Feature", "unit": None},
        {"key": "input_tokens", "label": "Input tokens", "unit": "tokens"},
        {"key": "output_tokens", "label": "Output tokens", "unit": "tokens"},
        {"key": "latency_ms", "label": "Latency", "unit": "ms"},
        {"key": "cost_usd", "label": "Cost", "unit": "usd"},
    ]
    rows = [[safe(r.get(c["key"]), 80) if c["unit"] is None and r.get(c["key"]) is not None else r.get(c["key"])
             for c in columns] for r in listed]  # fmt: skip
    key = {"cost": "cost_usd", "latency_ms": "latency_ms"}.get(plan.rank_by, "input_tokens")
    unit = {"cost_usd": "usd", "latency_ms": "ms"}.get(key, "tokens")
    figures = [figure(str(r["request_id"]), r.get(key), unit) for r in listed]
    return {"text": text, "figures": figures, "table": {"columns": columns, "rows": rows}}


def _compare(plan: QueryPlan, result: JSON) -> JSON:
    unit = _MEASURE_UNITS[plan.measure]
    name = _MEASURE_NAMES[plan.measure]
    change = result.get("change") or {}
    delta, rel = change.get("absolute"), change.get("relative")
    direction = "up" if (delta or 0) > 0 else "down" if (delta or 0) < 0 else "unchanged"
    moved = f"{direction} {fmt(abs(delta), unit)}" if delta else "unchanged"
    relative = (
        f" ({'+' if (rel or 0) >= 0 else '-'}{pct(abs(100 * rel))})" if rel is not None and delta else ""
    )
    if result["kind"] == "period":
        assert plan.comparison is not None and plan.comparison.period is not None
        later, earlier = result["later"], result["earlier"]
        a_when = _when(plan)
        b_when = _when(plan.model_copy(update={"period": plan.comparison.period}))
        from tokenwise.analysis.query import measure_value  # noqa: PLC0415 - a pure helper of the tool's layer

        a, b = measure_value(later, plan.measure), measure_value(earlier, plan.measure)
        subject = "" if not plan.filters else f" for {_subject(plan)}"
        text = f"{name.capitalize()}{subject} was {fmt(a, unit)} {a_when} vs {fmt(b, unit)} {b_when}: {moved}{relative}."
        rows = [
            [label, later[key], earlier[key], (later[key] or 0) - (earlier[key] or 0)]
            for label, key in (("Requests", "requests"), ("Spend", "spend_usd"), ("Tokens", "tokens"),
                               ("Errors", "errors"))
        ]  # fmt: skip
        table = {
            "columns": [
                {"key": "measure", "label": "Measure", "unit": None},
                {"key": "later", "label": a_when.capitalize(), "unit": None},
                {"key": "earlier", "label": b_when.capitalize(), "unit": None},
                {"key": "change", "label": "Change", "unit": None},
            ],
            "rows": rows,
        }
        figures = [figure(a_when, a, unit), figure(b_when, b, unit), figure("Change", delta, unit),
                   figure("Change %", None if rel is None else 100 * rel, "pct")]  # fmt: skip
        return {"text": text, "figures": figures, "table": table}
    items = result["items"]
    from tokenwise.analysis.query import measure_value  # noqa: PLC0415

    values = [(safe(i["value"], 80), measure_value(i["totals"], plan.measure)) for i in items]
    listed = " vs ".join(f"{v} {fmt(x, unit)}" for v, x in values)
    text = f"{name.capitalize()} {_when(plan)}: {listed}"
    if len(values) == 2 and delta is not None:
        more = "more" if delta > 0 else "less"
        text += f"; {values[0][0]} is {fmt(abs(delta), unit)} {more}{relative}"
    text += "."
    figures = [figure(v, x, unit) for v, x in values]
    if delta is not None:
        figures += [
            figure("Difference", delta, unit),
            figure("Difference %", None if rel is None else 100 * rel, "pct"),
        ]
    return {"text": text, "figures": figures}


def _trend(plan: QueryPlan, result: JSON) -> JSON:
    unit = _MEASURE_UNITS[plan.measure]
    points = result["points"]
    grain = "hour" if result["grain"] == "hourly" else "day"
    first, last = points[0], points[-1]
    fit = result.get("fit")
    slope = (
        f"; the linear trend is {'+' if fit['slope'] >= 0 else '-'}{fmt(abs(fit['slope']), unit)} per {grain}"
        if fit
        else ""
    )
    text = (
        f"{_MEASURE_NAMES[plan.measure].capitalize()} per {grain} {_when(plan, result['scope'])}"
        f"{' for ' + _subject(plan) if plan.filters else ''}: {fmt(first['value'], unit)} on {first['label']}, "
        f"{fmt(last['value'], unit)} on {last['label']}{slope}."
    )
    if result.get("value") is not None and unit not in ("pct", "ms"):
        text += f" Total {fmt(result['value'], unit)}."
    series = {"kind": "line", "label": f"{_MEASURE_NAMES[plan.measure].capitalize()} per {grain}", "unit": unit,
              "points": points[-744:]}  # fmt: skip
    figures = [figure(f"First {grain}", first["value"], unit), figure(f"Last {grain}", last["value"], unit)]
    if fit:
        figures.append(figure(f"Trend per {grain}", fit["slope"], unit))
    if result.get("value") is not None:
        figures.append(figure("Total", result["value"], unit))
    return {"text": text, "figures": figures, "series": series}


def _forecast(plan: QueryPlan, result: JSON) -> JSON:
    unit = _MEASURE_UNITS[plan.measure]
    horizon = result["horizon"]
    label = (
        horizon["label"].split(" as ", 1)[-1] if horizon.get("label") else f"the next {horizon['days']} days"
    )
    fit = result["fit"]
    text = (
        f"Forecast for {label}: {fmt(result['forecast'], unit)} {_MEASURE_NAMES[plan.measure]} "
        f"(95% range {fmt(result['low'], unit)} to {fmt(result['high'], unit)}), from a linear fit of daily "
        f"{_MEASURE_NAMES[plan.measure]} over {result['history_days']} days (trend "
        f"{'+' if fit['slope'] >= 0 else '-'}{fmt(abs(fit['slope']), unit)} per day)."
    )
    text += f" A flat projection of the last 30 days would be {fmt(result['flat'], unit)}."
    figures = [figure("Forecast", result["forecast"], unit), figure("Low", result["low"], unit),
               figure("High", result["high"], unit), figure("Trend per day", fit["slope"], unit),
               figure("Flat projection", result["flat"], unit)]  # fmt: skip
    series = {"kind": "line", "label": f"Daily {_MEASURE_NAMES[plan.measure]} (history)", "unit": unit,
              "points": result["points"][-366:]}  # fmt: skip
    return {"text": text, "figures": figures, "series": series}


def _unit_cost(plan: QueryPlan, result: JSON) -> JSON:
    per, unit = _UNIT_NAMES[result["unit"]]
    subject = f" of {_subject(plan)}" if plan.filters else ""
    text = (
        f"Cost per {per}{subject} {_when(plan, result['scope'])}: {usd(result['value'])} "
        f"({usd(result['spend_usd'])} over {fmt(result['units'], None)} {per}{'' if per.endswith('s') else 's'})."
    )
    figures = [figure(f"Cost per {per}", result["value"], unit), figure("Spend", result["spend_usd"], "usd")]
    out: JSON = {"text": text, "figures": figures}
    if result.get("groups"):
        groups = result["groups"]
        name = _DIMENSION_NAMES.get(plan.group_by or "", plan.group_by or "")
        listed = ", ".join(f"{_label(g['key'])} {usd(g['value'])}" for g in groups[:_MAX_LISTED])
        out["text"] = (
            f"Cost per {per} by {name} {_when(plan, result['scope'])}: {listed}. Overall {usd(result['value'])}."
        )
        out["figures"] = [figure(_label(g["key"]), g["value"], unit) for g in groups] + figures
        out["table"] = {
            "columns": [{"key": plan.group_by, "label": name.capitalize(), "unit": None},
                        {"key": "value", "label": f"Cost per {per}", "unit": unit},
                        {"key": "requests", "label": "Requests", "unit": "requests"}],
            "rows": [[_label(g["key"]), g["value"], g["requests"]] for g in groups[:100]],
        }  # fmt: skip
        out["series"] = {"kind": "bar", "label": f"Cost per {per} by {name}", "unit": unit,
                         "points": [{"label": _label(g["key"]), "value": g["value"]} for g in groups[:50]]}  # fmt: skip
    return out


def _percentiles(plan: QueryPlan, result: JSON) -> JSON:
    column = result["column"]
    unit = "ms" if column == "latency_ms" else "tokens"
    what = {"latency_ms": "Latency", "input_tokens": "Input tokens", "output_tokens": "Output tokens"}.get(
        column, "Tokens"
    )
    ps = result["percentiles"]
    listed = ", ".join(f"{k} {fmt(v, unit)}" for k, v in ps.items())
    subject = f" of {_subject(plan)}" if plan.filters else ""
    text = f"{what}{subject} {_when(plan, result['scope'])}: {listed} ({count(result['scope']['requests'])} requests)."
    figures = [figure(k, v, unit) for k, v in ps.items()]
    out: JSON = {"text": text, "figures": figures}
    if result.get("groups"):
        groups = result["groups"]
        name = _DIMENSION_NAMES.get(plan.group_by or "", plan.group_by or "")
        first = next(iter(ps), "p50")
        listed = "; ".join(
            f"{_label(g['key'])} " + ", ".join(f"{k} {fmt(v, unit)}" for k, v in g["percentiles"].items())
            for g in groups[:_MAX_LISTED]
        )
        out["text"] = f"{what} by {name} {_when(plan, result['scope'])}: {listed}."
        out["figures"] = [
            figure(f"{_label(g['key'])} {k}", v, unit) for g in groups for k, v in g["percentiles"].items()
        ] + figures
        out["table"] = {
            "columns": [{"key": plan.group_by, "label": name.capitalize(), "unit": None}]
            + [{"key": k, "label": k, "unit": unit} for k in ps]
            + [{"key": "requests", "label": "Requests", "unit": "requests"}],
            "rows": [
                [_label(g["key"]), *[g["percentiles"].get(k) for k in ps], g["requests"]]
                for g in groups[:100]
            ],
        }
        out["series"] = {"kind": "bar", "label": f"{what} {first} by {name}", "unit": unit,
                         "points": [{"label": _label(g["key"]), "value": g["percentiles"].get(first)} for g in groups[:50]]}  # fmt: skip
    return out


def _slo(plan: QueryPlan, result: JSON) -> JSON:
    t = result["threshold"]
    unit = {"latency_ms": "ms", "cost": "usd"}.get(t["measure"], "tokens")
    what = {"latency_ms": "took", "cost": "cost", "input_tokens": "had input", "output_tokens": "had output"}[
        t["measure"]
    ]
    op = "over" if t["op"] == ">" else "under"
    share = None if result["share"] is None else 100 * result["share"]
    subject = f" of {_subject(plan)}" if plan.filters else ""
    text = (
        f"{count(result['count'])} requests{subject} {_when(plan, result['scope'])} {what} {op} "
        f"{fmt(t['value'], unit)}: {pct(share)} of {count(result['measured'])}."
    )
    return {"text": text, "figures": [figure("Requests", result["count"], "requests"), figure("Share", share, "pct"),
                                      figure("Measured", result["measured"], "requests")]}  # fmt: skip


def _capacity(plan: QueryPlan, result: JSON) -> JSON:
    r = result
    subject = f" for {_subject(plan)}" if plan.filters else ""
    text = (
        f"At peak{subject} {_when(plan, r['scope'])}: {count(r['peak_requests_per_s'])} requests/s and "
        f"{count(r['peak_tokens_per_s'])} tokens/s (input + output) in the busiest second; p99 over every second: "
        f"{fmt(r['p99_requests_per_s'], 'requests_per_s')} requests/s and {fmt(r['p99_tokens_per_s'], 'tokens_per_s')} "
        f"tokens/s; mean {fmt(r['mean_requests_per_s'], 'requests_per_s')} requests/s."
    )
    figures = [figure("Peak requests/s", r["peak_requests_per_s"], "requests_per_s"),
               figure("Peak tokens/s", r["peak_tokens_per_s"], "tokens_per_s"),
               figure("p99 requests/s", r["p99_requests_per_s"], "requests_per_s"),
               figure("p99 tokens/s", r["p99_tokens_per_s"], "tokens_per_s"),
               figure("Mean requests/s", r["mean_requests_per_s"], "requests_per_s"),
               figure("Mean tokens/s", r["mean_tokens_per_s"], "tokens_per_s")]  # fmt: skip
    return {"text": text, "figures": figures}


def _anomalies(plan: QueryPlan, result: JSON) -> JSON:
    metric = result["metric"]
    unit = _MEASURE_UNITS[metric]
    name = _MEASURE_NAMES[metric]
    series = {
        "kind": "line",
        "label": f"{name.capitalize()} per day",
        "unit": unit,
        "points": result["points"][-366:],
    }
    if not result["days"]:
        text = f"No day stands out in {name} {_when(plan, result['scope'])}: every day is within 3.5 robust standard deviations of the typical {fmt(result['typical'], unit)}."
        return {"text": text, "figures": [figure("Typical day", result["typical"], unit)], "series": series}
    parts, figures = [], [figure("Typical day", result["typical"], unit)]
    for day in result["days"][:3]:
        drivers = "; ".join(
            f"{_DIMENSION_NAMES.get(d['dimension'], d['dimension'])} {_label(d['key'])} {fmt(d['value'], unit)} vs a "
            f"typical {fmt(d['typical'], unit)}"
            for d in day.get("drivers", [])
        )
        parts.append(
            f"{day['day']} ({fmt(day['value'], unit)} vs a typical {fmt(result['typical'], unit)}; {drivers})"
        )
        figures.append(figure(day["day"], day["value"], unit))
        figures += [figure(f"{_label(d['key'])} on {day['day']}", d["value"], unit) for d in day.get("drivers", [])]
    text = f"{len(result['days'])} day{'s stand' if len(result['days']) != 1 else ' stands'} out in {name}: {', '.join(parts)}."
    return {"text": text, "figures": figures, "series": series}


def _what_if(plan: QueryPlan, result: JSON, s: JSON) -> JSON:
    if s.get("empty"):
        return {"text": f"No request matches {_subject(plan)} {_when(plan)}: there is nothing to price.", "figures": [],
                "answerable": False}  # fmt: skip
    if s.get("missing"):
        return _missing(s["missing"])
    scenario = plan.scenario
    assert scenario is not None
    scope = _subject(plan)
    share = (
        ""
        if scenario.share_pct >= 100
        else f"{pct(scenario.share_pct, 0) if scenario.share_pct.is_integer() else pct(scenario.share_pct)} of "
    )
    short = "the short requests of " if scenario.condition == "short" else ""
    moves = {
        "route": f"Moving {share}{short}{scope} to {safe(scenario.target_model, 80)}",
        "output_cap": f"Capping outputs of {scope} at {count(scenario.max_output_tokens)} tokens",
        "cache_hit": f"Serving {pct(scenario.hit_rate_pct or 0, 0)} of {scope} from a response cache",
        "prompt_cache": f"Prompt caching a shared prefix for {scope}",
        "batch": f"Moving {share}{scope} to the batch API",
        "trim_context": f"Trimming contexts of {scope} to {count(scenario.max_input_tokens)} tokens",
        "price_change": f"A {'+' if (scenario.price_change_pct or 0) > 0 else ''}{pct(scenario.price_change_pct or 0, 0)} price change for {scope}",
        "growth": f"Traffic of {scope} growing {pct(scenario.growth_pct or 0, 0)}",
    }
    saving = s["saving_monthly_usd"]
    verb = "saves" if saving >= 0 else "costs"
    rel = f" ({pct(abs(s['saving_pct']))} of its spend)" if s.get("saving_pct") is not None else ""
    text = (
        f"{moves[scenario.kind]} {verb} {usd(abs(saving))} a month{rel}: {usd(abs(s['saving_period_usd']))} over the "
        f"{s['span_days']:.1f} days observed, scaled to 30 days."
    )
    text += (
        f" Its monthly spend would go from {usd(s['baseline_monthly_usd'])} to {usd(s['new_monthly_usd'])}."
    )
    figures = [figure("Monthly saving" if saving >= 0 else "Monthly extra cost", abs(saving), "usd_per_month"),
               figure("Saving %", s.get("saving_pct"), "pct"),
               figure("Saving in the period", s["saving_period_usd"], "usd"),
               figure("Monthly spend now", s["baseline_monthly_usd"], "usd_per_month"),
               figure("Monthly spend after", s["new_monthly_usd"], "usd_per_month"),
               figure("Requests affected", s["affected_requests"], "requests")]  # fmt: skip
    table = {
        "columns": [{"key": "measure", "label": "Measure", "unit": None}, {"key": "value", "label": "Value", "unit": None}],
        "rows": [["Monthly spend now (30 days)", usd(s["baseline_monthly_usd"])],
                 ["Monthly spend after (30 days)", usd(s["new_monthly_usd"])],
                 [f"Saving over the {s['span_days']:.1f} days observed", usd(s["saving_period_usd"])],
                 ["Requests affected", count(s["affected_requests"])]],
    }  # fmt: skip
    out: JSON = {
        "text": text,
        "figures": figures,
        "table": table,
        "assumptions": list(s.get("assumptions", [])),
    }
    if s.get("excluded_requests"):
        out["assumptions"].append(
            f"{count(s['excluded_requests'])} requests without a price are not counted."
        )
    return out


_WRITERS = {
    "total": _total,
    "overview": _total,
    "breakdown": _breakdown,
    "share": _share,
    "top_requests": _top_requests,
    "compare": _compare,
    "trend": _trend,
    "forecast": _forecast,
    "unit_cost": _unit_cost,
    "percentiles": _percentiles,
    "slo": _slo,
    "capacity": _capacity,
    "anomalies": _anomalies,
}
