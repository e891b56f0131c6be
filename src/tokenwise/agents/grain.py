"""Which datasets can answer a question, by their grain: per-request logs, or time buckets of a report.

A usage or cost report (the OpenAI Usage/Costs APIs, Anthropic's usage and cost reports, and the
connectors that pull them) holds one row per time bucket and grouping, not per request. Totals, trends,
breakdowns and anomalies are exact from it; a question about single requests (percentiles, latency,
errors, the top requests, the peak per second, a what-if applied request by request) is not, and neither
is a request count from a report that counts none. For such a question the bucketed datasets are left
out: the answer comes from the per-request ones and says so, or, with none, says plainly why there is no
figure instead of giving a wrong one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from tokenwise.agents.rendering import safe
from tokenwise.agents.tooling import JSON
from tokenwise.analysis.plan import QueryPlan

REPORT_NAMES = {
    "openai_usage_api": "an OpenAI usage report",
    "openai_costs_api": "an OpenAI cost report",
    "anthropic_usage_report": "an Anthropic usage report",
    "anthropic_cost_report": "an Anthropic cost report",
}
_PER_REQUEST_SCENARIOS = {
    "output_cap": "an output cap applies to each request's own output",
    "trim_context": "trimming a context applies to each request's own prompt",
    "prompt_cache": "prompt caching applies to the requests whose prompts are longer than the prefix",
}


@dataclass(frozen=True)
class Need:
    """What a question needs beyond totals: the requests themselves, or at least a count of them."""

    kind: Literal["per_request", "request_count"]
    why: str


def need_of(plan: QueryPlan) -> Need | None:
    """What `plan` needs of the data beyond bucket totals (None: totals, trends and breakdowns)."""
    if plan.intent == "percentiles":
        what = "latency" if plan.measure == "latency_ms" else "size"
        return Need("per_request", f"{what} percentiles need each request's own {what}")
    reasons = {
        "slo": "counting the requests over a threshold needs each request's own figures",
        "top_requests": "the top requests need the requests themselves",
        "capacity": "the peak per second needs the time of each request",
    }
    if plan.intent in reasons:
        return Need("per_request", reasons[plan.intent])
    if plan.measure == "latency_ms":
        return Need("per_request", "latency is measured request by request")
    if plan.measure in ("errors", "error_rate"):
        return Need("per_request", "errors are known request by request (a report has no status)")
    scenario = plan.scenario
    if plan.intent == "what_if" and scenario is not None:
        if scenario.kind in _PER_REQUEST_SCENARIOS:
            return Need("per_request", _PER_REQUEST_SCENARIOS[scenario.kind])
        if scenario.condition == "short":
            return Need("per_request", "the short requests are told apart by each request's size")
    if plan.unit in ("request", "1k_requests") or plan.measure in ("requests", "cost_per_request"):
        return Need("request_count", "this needs a count of requests")
    return None


def _fits(dataset: JSON, need: Need) -> bool:
    if not dataset.get("bucketed"):
        return True
    return need.kind == "request_count" and bool(dataset.get("request_counts"))


def _ref(dataset: JSON) -> JSON:
    return {
        "id": dataset.get("id"),
        "name": dataset.get("name"),
        "detected_format": dataset.get("detected_format"),
    }


def coverage(plan: QueryPlan, datasets: list[dict[str, Any]]) -> JSON | None:
    """Which of the covered datasets answer `plan`: None when all of them do and none is bucketed.

    `used`: the datasets read; `left_out`: the bucketed ones that cannot answer it; `unanswerable`: none
    can; `bucketed`: the bucketed ones read (totals from reports, mixed with per-request data)."""
    need = need_of(plan)
    if not any(d.get("bucketed") for d in datasets):
        return None
    used = [d for d in datasets if need is None or _fits(d, need)]
    left = [d for d in datasets if need is not None and not _fits(d, need)]
    return {
        "need": need.kind if need else None,
        "why": need.why if need else None,
        "used": [_ref(d) for d in used],
        "left_out": [_ref(d) for d in left],
        "bucketed": [_ref(d) for d in used if d.get("bucketed")],
        "uncounted": [_ref(d) for d in used if d.get("bucketed") and not d.get("request_counts")],
        "unanswerable": bool(left) and not used,
    }


def named(refs: list[JSON], *, kind: bool = True) -> str:
    """'a' (an OpenAI usage report), 'b' and 'c' (...)."""
    parts = []
    for ref in refs:
        name = f"'{safe(ref.get('name'), 80)}'"
        report = REPORT_NAMES.get(str(ref.get("detected_format")), "a usage report")
        parts.append(f"{name} ({report})" if kind else name)
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def _lacks(grain: JSON) -> str:
    refs = grain["left_out"]
    verb = "holds" if len(refs) == 1 else "hold"
    if grain["need"] == "request_count":
        return f"{named(refs)} {verb} time buckets that count no requests"
    return f"{named(refs)} {verb} only time buckets of a report, no rows per request"


def unanswerable_text(grain: JSON) -> str:
    """Why no figure is given: the question needs per-request data and the covered data is bucketed."""
    return (
        f"This cannot be answered from your data: {grain['why']}, and {_lacks(grain)}. No figure is given "
        "rather than a wrong one. Upload a per-request log (a gateway or SDK export such as LiteLLM, "
        "Langfuse or Helicone) or send your calls over OpenTelemetry, then ask again."
    )


def mixed_text(grain: JSON) -> str:
    """Which part answered: the per-request datasets; the bucketed ones left out, and why."""
    refs = grain["left_out"]
    them = "it is" if len(refs) == 1 else "they are"
    return (
        f" Answered from {named(grain['used'], kind=False)} only: {grain['why']}, and {_lacks(grain)}, "
        f"so {them} left out of this figure."
    )


def readings(grain: JSON | None) -> list[str]:
    """Notes for an answer whose figures include bucketed reports."""
    if not grain or grain.get("left_out") or grain.get("unanswerable"):
        return []
    notes = []
    requests = [r for r in grain["used"] if r not in grain["bucketed"]]
    if requests and grain["bucketed"]:
        notes.append(
            f"The figures add per-request data from {named(requests, kind=False)} and time buckets from "
            f"{named(grain['bucketed'])}."
        )
    if grain["uncounted"]:
        refs = grain["uncounted"]
        measures = (
            "spend" if all("cost" in str(r.get("detected_format")) for r in refs) else "spend and tokens"
        )
        notes.append(
            f"{named(refs)} {'counts' if len(refs) == 1 else 'count'} no requests: its {measures} "
            f"{'is' if measures == 'spend' else 'are'} exact, but each of its rows (a time bucket) counts "
            "as one request here."
        )
    return notes


__all__ = ["Need", "coverage", "mixed_text", "named", "need_of", "readings", "unanswerable_text"]
