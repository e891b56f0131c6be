"""Answers about what could be: a priced what-if, and the capacity traffic needs."""

from __future__ import annotations

from tokenwise.agents.answers.words import (
    JSON,
    count,
    figure,
    fmt,
    pct,
    safe,
    subject,
    usd,
    when,
)
from tokenwise.analysis.plan import QueryPlan


def what_if(plan: QueryPlan, result: JSON, s: JSON) -> JSON:
    if s.get("empty"):
        text = f"No request matches {subject(plan)} {when(plan)}: there is nothing to price."
        return {"text": text, "figures": [], "answerable": False}
    if s.get("missing"):
        return missing(s["missing"])
    scenario = plan.scenario
    assert scenario is not None
    scope = subject(plan)
    share = (
        ""
        if scenario.share_pct >= 100
        else f"{pct(scenario.share_pct, 0 if scenario.share_pct.is_integer() else 1)} of "
    )
    sign = "+" if (scenario.price_change_pct or 0) > 0 else ""
    short = "the short requests of " if scenario.condition == "short" else ""
    moves = {
        "route": f"Moving {share}{short}{scope} to {safe(scenario.target_model, 80)}",
        "output_cap": f"Capping outputs of {scope} at {count(scenario.max_output_tokens)} tokens",
        "cache_hit": f"Serving {pct(scenario.hit_rate_pct or 0, 0)} of {scope} from a response cache",
        "prompt_cache": f"Prompt caching a shared prefix for {scope}",
        "batch": f"Moving {share}{scope} to the batch API",
        "trim_context": f"Trimming contexts of {scope} to {count(scenario.max_input_tokens)} tokens",
        "price_change": f"A {sign}{pct(scenario.price_change_pct or 0, 0)} price change for {scope}",
        "growth": f"{'Traffic' if not plan.filters else f'Traffic of {scope}'} growing "
        f"{pct(scenario.growth_pct or 0, 0)}",
    }
    saving = s["saving_monthly_usd"]
    verb = "saves" if saving >= 0 else "costs"
    rel = f" ({pct(abs(s['saving_pct']))} of its spend)" if s.get("saving_pct") is not None else ""
    text = (
        f"{moves[scenario.kind]} {verb} {usd(abs(saving))} a month{rel}: "
        f"{usd(abs(s['saving_period_usd']))} over the {s['span_days']:.1f} days observed, scaled to 30 days."
    )
    text += (
        f" Its monthly spend would go from {usd(s['baseline_monthly_usd'])} to {usd(s['new_monthly_usd'])}."
    )
    headline = "Monthly saving" if saving >= 0 else "Monthly extra cost"
    figures = [figure(headline, abs(saving), "usd_per_month"),
               figure("Saving %", s.get("saving_pct"), "pct"),
               figure("Saving in the period", s["saving_period_usd"], "usd"),
               figure("Monthly spend now", s["baseline_monthly_usd"], "usd_per_month"),
               figure("Monthly spend after", s["new_monthly_usd"], "usd_per_month"),
               figure("Requests affected", s["affected_requests"], "requests")]  # fmt: skip
    table = {
        "columns": [
            {"key": "measure", "label": "Measure", "unit": None},
            {"key": "value", "label": "Value", "unit": None},
        ],
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


def capacity(plan: QueryPlan, result: JSON) -> JSON:
    r = result
    about = f" for {subject(plan)}" if plan.filters else ""
    text = (
        f"At peak{about} {when(plan, r['scope'])}: {count(r['peak_requests_per_s'])} requests/s and "
        f"{count(r['peak_tokens_per_s'])} tokens/s (input + output) in the busiest second; p99 of the "
        f"{count(r['busy_seconds'])} seconds with traffic: "
        f"{fmt(r['busy_p99_requests_per_s'], 'requests_per_s')} requests/s and "
        f"{fmt(r['busy_p99_tokens_per_s'], 'tokens_per_s')} tokens/s; mean over the whole span "
        f"{fmt(r['mean_requests_per_s'], 'requests_per_s')} requests/s."
    )
    figures = [figure("Peak requests/s", r["peak_requests_per_s"], "requests_per_s"),
               figure("Peak tokens/s", r["peak_tokens_per_s"], "tokens_per_s"),
               figure("p99 requests/s", r["p99_requests_per_s"], "requests_per_s"),
               figure("p99 tokens/s", r["p99_tokens_per_s"], "tokens_per_s"),
               figure("p99 requests/s, seconds with traffic", r["busy_p99_requests_per_s"], "requests_per_s"),
               figure("p99 tokens/s, seconds with traffic", r["busy_p99_tokens_per_s"], "tokens_per_s"),
               figure("Mean requests/s", r["mean_requests_per_s"], "requests_per_s"),
               figure("Mean tokens/s", r["mean_tokens_per_s"], "tokens_per_s")]  # fmt: skip
    return {"text": text, "figures": figures}


def missing(what: str) -> JSON:
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
