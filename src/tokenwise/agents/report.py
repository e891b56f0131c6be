"""The structured report, composed from whatever the earlier agents produced (failed ones included).

Every figure in it was computed by a tool from the user's data. `report_type` is `full` when the data
answers the question, `partial` when something is missing (and the report says what and how to supply it),
`guidance` when there is no data at all.
"""

from __future__ import annotations

from pydantic import ValidationError

from tokenwise.agents import coverage
from tokenwise.agents.answers import write
from tokenwise.agents.data_helper import data_request
from tokenwise.agents.figures import count, days, pct, usd
from tokenwise.agents.optimization import load_profile
from tokenwise.agents.query_tools import FULL_ANALYSIS
from tokenwise.agents.sufficiency import judge
from tokenwise.agents.tooling import JSON
from tokenwise.analysis.plan import QueryPlan

_TITLES = {
    "cost_optimization": "Cutting LLM spend",
    "latency_performance": "LLM latency and performance",
    "model_selection": "Choosing models",
    "workload_analysis": "Your LLM workload",
    "capacity_planning": "Capacity planning for LLM traffic",
    "general_question": "Your LLM usage",
}
# At most a month of hourly points and a year of daily ones in a report: the final event stays small.
_MAX_HOURS, _MAX_DAYS, _MAX_GROUPS = 744, 366, 20
_SIZE_KEYS = ("p50", "p95", "p99", "mean")


def failed(result: JSON | None) -> bool:
    """Whether an entry of `RunContext.results` records a failed agent."""
    return bool(result and result.get("failed"))


def compose(results: dict[str, JSON]) -> JSON:
    """The structured report for the results of the earlier agents."""
    # Results are read with .get: an agent swapped in through `agents=` may return another shape.
    ok = {name: r for name, r in results.items() if not failed(r)}
    triage, data, helper = ok.get("triage", {}), ok.get("data", {}), ok.get("data_helper", {})
    optimization, actions = ok.get("optimization", {}), ok.get("actions", {})
    category = str(triage.get("category", "general_question"))
    entities: JSON = dict(triage["entities"]) if isinstance(triage.get("entities"), dict) else {}
    analysis = data.get("analysis") if isinstance(data.get("analysis"), dict) else None
    datasets = [d for d in data.get("datasets_info", []) if isinstance(d, dict)]
    excluded = [d for d in data.get("excluded_info", []) if isinstance(d, dict)]
    rows = _count(data.get("rows", triage.get("rows")))
    failures = [name for name, r in results.items() if failed(r)]
    sufficiency = _sufficiency(triage, data, datasets, category)

    plan = _plan(triage)
    answer = _answer(plan, data, optimization)
    if rows == 0:
        report_type = "guidance"
    elif plan is not None and plan.intent not in FULL_ANALYSIS and answer is not None:
        report_type = "full" if answer["answerable"] and not failures else "partial"
    elif analysis is None or failures or sufficiency.get("level") != "sufficient":
        report_type = "partial"
    else:
        report_type = "full"

    request: JSON | None = None
    if isinstance(helper.get("data_request"), dict):
        request = helper["data_request"]
    elif rows is None or rows == 0:
        request = data_request(category)

    by_type = {a.get("strategy"): a for a in actions.get("actions", []) if isinstance(a, dict)}
    strategies = [
        {**s, "actions": [by_type[s["type"]]] if s.get("type") in by_type else []}
        for s in optimization.get("strategies", [])
        if isinstance(s, dict)
    ]
    measurements = _measurements(analysis, rows, _count(data.get("datasets", triage.get("datasets"))))
    title = _TITLES.get(category, _TITLES["general_question"])
    if plan is not None and plan.intent not in FULL_ANALYSIS and report_type != "guidance":
        title = _INTENT_TITLES.get(plan.intent, title)
    text = summary(measurements, strategies, optimization, entities, sufficiency, analysis is not None)
    if answer is None and plan is not None and rows:
        more = list(sufficiency.get("suggestions") or [])
        answered = text + (f" More strategies can be checked: {'; '.join(more)}." if more else "")
        answer = _summary_answer(answered, measurements, strategies, plan.intent)
    elif answer is None and plan is not None:
        answer = _no_data_answer(plan)
    if rows == 0 and excluded and not datasets:
        text = coverage.all_excluded(excluded)
        if answer is not None:
            answer = {**answer, "text": text, "missing": ["an included dataset"]}
    elif answer is not None and excluded:
        answer = {**answer, "readings": [*answer.get("readings", []), coverage.left_out(excluded)]}
    if answer is not None and plan is not None and (plan.intent not in FULL_ANALYSIS or rows):
        text = str(answer["text"]) if plan.intent not in ("overview",) else text
    return {
        "report_type": report_type,
        "title": title + (": the data needed" if report_type == "guidance" else ""),
        "answer": answer,
        "plan": plan.model_dump(mode="json") if plan is not None else None,
        "summary": text,
        "narrative": {"source": "built-in"},
        "category": category,
        "entities": entities,
        "data": {
            "datasets": datasets,
            "covered": [str(d.get("name")) for d in datasets],
            "excluded": [str(d.get("name")) for d in excluded],
            "sufficiency": sufficiency.get("level"),
            "reasons": list(sufficiency.get("reasons", [])),
        },
        "measurements": measurements,
        "strategies": strategies,
        "candidates": list(optimization.get("candidates", [])),
        "not_checked": list(optimization.get("not_checked", [])),
        "target": optimization.get("target"),
        "latency": optimization.get("latency"),
        "actions": [a for a in actions.get("actions", []) if isinstance(a, dict)],
        "missing": list(sufficiency.get("missing", [])) if report_type == "partial" else [],
        "data_request": request,
        "series": _series(analysis),
        "notes": [
            *_notes(results, failures, analysis, entities, measurements),
            *coverage.notes(datasets, excluded, full=plan is None or plan.intent in FULL_ANALYSIS),
        ],
    }


_INTENT_TITLES = {
    "total": "Totals",
    "breakdown": "Breakdown",
    "share": "Share of the total",
    "top_requests": "Top requests",
    "compare": "Comparison",
    "trend": "Trend",
    "forecast": "Forecast",
    "unit_cost": "Unit economics",
    "percentiles": "Latency and sizes",
    "slo": "Requests over a threshold",
    "what_if": "What-if",
    "capacity": "Capacity",
    "anomalies": "Anomalies",
}


def _plan(triage: JSON) -> QueryPlan | None:
    raw = triage.get("plan")
    if not isinstance(raw, dict):
        return None
    try:
        return QueryPlan.model_validate(raw)
    except ValidationError:
        return None


def _answer(plan: QueryPlan | None, data: JSON, optimization: JSON) -> JSON | None:
    query = data.get("query")
    if plan is None or not isinstance(query, dict) or plan.intent in ("optimize",):
        return None
    if query.get("no_data"):
        return None
    scenario = optimization.get("scenario") if isinstance(optimization.get("scenario"), dict) else None
    if plan.intent == "what_if" and scenario is None:
        return None
    return write(plan, query, scenario)


def _summary_answer(text: str, m: JSON, strategies: list[JSON], intent: str) -> JSON:
    """The answer of a savings or overview question: the report's own summary and its leading figures."""
    figures = [
        {"label": "Requests", "value": m.get("requests"), "unit": "requests"},
        {"label": "Spend", "value": m.get("spend_usd"), "unit": "usd"},
        {"label": "Spend per month", "value": m.get("monthly_spend_usd"), "unit": "usd_per_month"},
    ]
    figures += [
        {"label": str(s.get("type")), "value": s.get("monthly_savings_usd"), "unit": "usd_per_month"}
        for s in strategies
        if s.get("monthly_savings_usd") is not None
    ]
    return {"intent": intent, "text": text, "figures": figures, "table": None, "series": None, "readings": [],
            "unknown": [], "missing": [], "answerable": True}  # fmt: skip


def _no_data_answer(plan: QueryPlan) -> JSON:
    text = (
        "There is no usage data yet, so this cannot be answered: upload a usage log (CSV, JSON Lines or "
        "Parquet) with a timestamp, model and token counts per request, and ask again."
    )
    return {
        "intent": plan.intent,
        "text": text,
        "figures": [],
        "table": None,
        "series": None,
        "readings": list(plan.readings),
        "unknown": [],
        "missing": ["usage data"],
        "answerable": False,
    }


def _sufficiency(triage: JSON, data: JSON, datasets: list[JSON], category: str) -> JSON:
    if isinstance(triage.get("sufficiency"), dict):
        return dict(triage["sufficiency"])
    found = load_profile(data)  # triage failed: judge from what the data agent profiled
    return judge(found, datasets, category) if found is not None else {}


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and value >= 0 else None


def _group(g: JSON, key: str) -> JSON:
    return {
        key: g["key"],
        **{
            k: g[k]
            for k in (
                "requests",
                "input_tokens",
                "output_tokens",
                "cached_input_tokens",
                "spend_usd",
                "spend_share",
                "request_share",
                "unpriced_requests",
            )
        },
    }


def _measurements(analysis: JSON | None, rows: int | None, datasets: int | None) -> JSON:
    if analysis is None:
        tokens = 0 if rows == 0 else None  # no data: nothing; data that could not be read: unknown
        return {
            "datasets": datasets,
            "rows": rows,
            "requests": rows,
            "input_tokens": tokens,
            "output_tokens": tokens,
            "spend_usd": None,
            "monthly_spend_usd": None,
            "period": None,
            "models": [],
        }
    m = analysis["measurements"]
    period = m["period"]
    monthly = m["spend_usd"] * 30 / period["days"] if m["spend_usd"] is not None and period else None
    return {
        "datasets": datasets,
        "rows": rows,
        "requests": m["requests"],
        "input_tokens": m["input_tokens"],
        "output_tokens": m["output_tokens"],
        "cached_input_tokens": m["cached_input_tokens"],
        "spend_usd": m["spend_usd"],
        "monthly_spend_usd": monthly,
        "unpriced_requests": m["unpriced_requests"],
        "period": period,
        "models": [_group(g, "model") for g in m["models"][:_MAX_GROUPS]],
        "features": [_group(g, "feature") for g in m["features"][:_MAX_GROUPS]],
        "input_tokens_per_request": {k: m["input_sizes"][k] for k in _SIZE_KEYS},
        "output_tokens_per_request": {k: m["output_sizes"][k] for k in _SIZE_KEYS},
        "latency_ms": m["latency_ms"],
        "rate": m["rate"],
        "errors": m["errors"],
        "duplicates": m["duplicates"],
        "prefixes": m["prefixes"],
    }


def _series(analysis: JSON | None) -> JSON:
    if analysis is None:
        return {"spend_by_model": [], "spend_by_day": [], "requests_by_hour": [], "savings_by_strategy": []}
    series = analysis["series"]
    return {
        "spend_by_model": series["spend_by_model"][:_MAX_GROUPS],
        "spend_by_day": series["spend_by_day"][-_MAX_DAYS:],
        "requests_by_hour": series["requests_by_hour"][-_MAX_HOURS:],
        "savings_by_strategy": series["savings_by_strategy"],
    }


def summary(
    m: JSON, strategies: list[JSON], optimization: JSON, entities: JSON, sufficiency: JSON, analysed: bool
) -> str:
    """The built-in narrative: every figure formatted from the measurements."""
    if m.get("rows") == 0:
        text = "There is no usage data yet, so nothing has been measured and no savings are estimated."
    elif not analysed:
        text = "Usage data could not be analysed in this run: nothing was measured, no saving is estimated."
    else:
        period = m["period"] or {}
        spend = (
            f"cost {usd(m['spend_usd'])} ({usd(m['monthly_spend_usd'])} a month)"
            if m["spend_usd"] is not None
            else "could not be priced"
        )
        start, end = str(period.get("start"))[:10], str(period.get("end"))[:10]
        when = f"on {start}" if start == end else f"from {start} to {end}"
        text = f"{count(m['requests'])} requests over {days(period.get('days'))} ({when}) {spend}."
        priced = [s for s in strategies if s.get("monthly_savings_usd") is not None]
        if priced:
            best = priced[0]
            text += (
                f" {len(priced)} savings strateg{'y' if len(priced) == 1 else 'ies'} measured; the largest, "
                f"{best['type']}, saves {usd(best['monthly_savings_usd'])} a month "
                f"({pct(best.get('savings_pct'))} of spend)."
            )
        elif strategies:
            text += f" {len(strategies)} strategy found without a $ figure (no price for this traffic)."
        else:
            text += (
                " The data shows none of the inefficiencies the strategies remove, so no saving is claimed."
            )
        if sufficiency.get("level") == "partial" and sufficiency.get("reasons"):
            text += f" Partial: {sufficiency['reasons'][0]}"
    for key in ("target", "latency"):
        if isinstance(optimization.get(key), dict):
            text += f" {optimization[key]['text']}"
    if "reduction_pct" in entities and not isinstance(optimization.get("target"), dict):
        text += f" Whether a {entities['reduction_pct']}% reduction is reachable depends on measured spend."
    if models := entities.get("models"):
        text += f" Models named: {', '.join(models)}."
    return text


def _notes(
    results: dict[str, JSON], failures: list[str], analysis: JSON | None, entities: JSON, m: JSON
) -> list[str]:
    notes = [
        f"The {name} step failed ({results[name].get('code')}); this report is built without it."
        for name in failures
    ]
    if analysis is not None:
        notes += [str(n) for n in analysis.get("notes", [])]
    window = (results.get("data") or {}).get("window")
    if isinstance(window, dict) and m.get("period"):
        covered = f"{str(m['period']['start'])[:16]} to {str(m['period']['end'])[:16]}"
        notes.append(
            f"You asked about {window['asked']}: the figures cover the requests of that period ({covered})."
            if window.get("applied")
            else f"You asked about {window['asked']}, but no request falls in it: the figures cover "
            f"everything uploaded ({covered})."
        )
    notes.append(
        "Every figure is computed from your usage data by the analysis tools; none comes from a "
        "language model, and a saving is only given when it is measured."
    )
    return notes


def facts(report: JSON) -> str:
    """What a language model may word for the narrative: the built-in summary and the leading figures."""
    lines = [str(report["summary"])]
    for s in report["strategies"][:5]:
        saving = (
            usd(s.get("monthly_savings_usd")) + " a month" if s.get("monthly_savings_usd") else "no $ figure"
        )
        lines.append(f"- {s.get('title')}: {saving}, {s.get('confidence')} confidence.")
    for item in report.get("missing", []):
        lines.append(f"- Missing: {item.get('field')}: {item.get('how')}")
    return "\n".join(lines)


def pieces(markdown: str) -> list[str]:
    """Split markdown into paragraph-sized pieces whose concatenation is exactly `markdown`."""
    parts = markdown.split("\n\n")
    chunks = [part + "\n\n" for part in parts[:-1]] + [parts[-1]]
    return [chunk for chunk in chunks if chunk]
