"""Optimization: the savings strategies the analysis measured, what they mean for the user's target, and
which strategies the data could not check (and why)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tokenwise.agents.base import RunContext
from tokenwise.agents.figures import pct, usd
from tokenwise.agents.query_tools import PRICE_SCENARIO, _compact_scenario
from tokenwise.agents.sufficiency import gaps
from tokenwise.agents.tooling import JSON, Agent, AgentScope, Tool
from tokenwise.analysis.profile import ModelRows, Profile


@dataclass(frozen=True)
class Candidate:
    type: str
    title: str
    finds: str
    needs: tuple[str, ...]


# Every strategy type, in the order a team usually looks at them; titles for those not measured.
CANDIDATES = (
    Candidate(
        "model_routing",
        "Route easy requests to a cheaper model",
        "short requests on an expensive model that its cheaper tier handles",
        ("model", "input_tokens", "output_tokens"),
    ),
    Candidate(
        "prompt_caching",
        "Cache repeated prompt prefixes",
        "long prompt prefixes repeated within the provider's cache lifetime",
        ("prompt_text", "model"),
    ),
    Candidate(
        "response_caching",
        "Serve repeated requests from a cache",
        "exact duplicate requests",
        ("prompt_hash",),
    ),
    Candidate(
        "batching",
        "Move scheduled jobs to a batch API",
        "features that run as a daily job nobody waits on",
        ("timestamp", "feature"),
    ),
    Candidate(
        "output_cap",
        "Tighten output caps",
        "responses that run to an oversized max_tokens",
        ("output_tokens", "max_output_tokens"),
    ),
    Candidate(
        "context_trimming",
        "Trim oversized contexts",
        "long contexts with short answers",
        ("input_tokens", "feature"),
    ),
    Candidate(
        "retry_waste",
        "Stop paying for failed calls that are retried",
        "failed calls that a later call retried",
        ("status", "request_id"),
    ),
    Candidate(
        "capacity",
        "Right-size capacity",
        "peak vs mean load of self-hosted or unpriced traffic",
        ("timestamp", "input_tokens", "output_tokens"),
    ),
)
_STRATEGY_KEYS = ("type", "title", "monthly_savings_usd", "savings_pct", "confidence", "risk", "assumptions")


def load_profile(data: JSON) -> Profile | None:
    """The data agent's profile back as a `Profile` (None when there is none)."""
    raw = data.get("profile")
    if not isinstance(raw, dict):
        return None
    return Profile(**{**raw, "models": [ModelRows(**m) for m in raw.get("models", [])]})


def evaluate(analysis: JSON | None, found: Profile | None, entities: JSON) -> JSON:
    """Strategies with their savings, the verdict on the user's target, and what was not checked."""
    if not analysis or not analysis["measurements"]["requests"]:
        return {
            "quantified": False,
            "strategies": [],
            "candidates": [
                {"type": c.type, "title": c.title, "finds": c.finds, "needs": list(c.needs)}
                for c in CANDIDATES
            ],
            "not_checked": [],
            "target": _target(entities, None, []),
            "monthly_spend_usd": None,
            "reason": "No usage data: no strategy can be measured, so no saving is claimed.",
        }
    m = analysis["measurements"]
    period = m["period"] or {}
    monthly_spend = m["spend_usd"] * 30 / period["days"] if m["spend_usd"] is not None and period else None
    strategies = [
        {**{k: s[k] for k in _STRATEGY_KEYS}, "evidence": s["evidence"]} for s in analysis["strategies"]
    ]
    not_checked = gaps(found) if found is not None else []
    priced = [s for s in strategies if s["monthly_savings_usd"] is not None]
    if priced:
        reason = f"{len(priced)} strategies with measured savings, largest first."
    elif strategies:
        reason = "The strategies found cannot be priced (no model price or reported cost)."
    else:
        reason = "The data shows none of the inefficiencies these strategies remove: no saving is claimed."
    return {
        "quantified": bool(priced),
        "strategies": strategies,
        "candidates": [],
        "not_checked": not_checked,
        "target": _target(entities, monthly_spend, priced),
        "monthly_spend_usd": monthly_spend,
        "latency": _latency(entities, m.get("latency_ms")),
        "reason": reason,
    }


def _target(entities: JSON, monthly_spend: float | None, priced: list[JSON]) -> JSON | None:
    """Whether the measured strategies reach the user's reduction target (or budget)."""
    goal = entities.get("reduction_pct")
    budget = entities.get("budget_usd")
    if goal is None and budget is not None and monthly_spend:
        goal = max(0.0, 100 * (1 - budget / monthly_spend))
    if goal is None:
        return None
    target: JSON = {"reduction_pct": goal, "budget_usd": budget, "monthly_spend_usd": monthly_spend}
    if monthly_spend is None:
        return {
            **target,
            "verdict": "unknown",
            "text": f"A {pct(goal, 0)} cut cannot be checked: spend is not measured.",
        }
    needed = monthly_spend * goal / 100
    best = max(priced, key=lambda s: s["monthly_savings_usd"], default=None)
    total = sum(s["monthly_savings_usd"] for s in priced)
    best_pct = 100 * best["monthly_savings_usd"] / monthly_spend if best else 0.0
    total_pct = 100 * total / monthly_spend
    if goal == 0:
        verdict, text = "reached", f"Spend ({usd(monthly_spend)} a month) is already within the budget."
    elif best and best_pct >= goal:
        verdict = "reachable"
        text = (
            f"A {pct(goal, 0)} cut ({usd(needed)} a month) is reachable: {best['type']} alone saves "
            f"{pct(best_pct)}."
        )
    elif total_pct >= goal:
        verdict = "reachable_combined"
        text = (
            f"A {pct(goal, 0)} cut ({usd(needed)} a month) needs several strategies together: they add "
            f"up to {pct(total_pct)}, an upper bound since they can overlap."
        )
    else:
        verdict = "not_reachable"
        text = (
            f"A {pct(goal, 0)} cut ({usd(needed)} a month) is not reachable with what the data shows: all "
            f"measured strategies together save at most {pct(total_pct)} ({usd(total)} a month)."
        )
    return {
        **target,
        "needed_monthly_usd": needed,
        "best_strategy_pct": best_pct,
        "combined_upper_bound_pct": total_pct,
        "verdict": verdict,
        "text": text,
    }


def _latency(entities: JSON, measured: dict[str, Any] | None) -> JSON | None:
    slo = entities.get("latency_slo")
    if not slo:
        return None
    value = measured.get(slo["percentile"]) if measured else None
    if value is None:
        why = (
            "the data has no latency" if not measured else f"{slo['percentile']} is not measured (p50/95/99)"
        )
        return {
            **slo,
            "measured_ms": None,
            "meets": None,
            "text": f"The latency SLO cannot be checked: {why}.",
        }
    meets = value <= slo["threshold_ms"]
    text = (
        f"Measured {slo['percentile']} latency is {value:,.0f} ms, "
        f"{'within' if meets else 'over'} the {slo['threshold_ms']:,} ms SLO. Batching adds hours of "
        "latency: keep it to work nobody waits on."
    )
    return {**slo, "measured_ms": value, "meets": meets, "text": text}


def _compact(result: JSON) -> JSON:
    if "scenario" in result:
        return {"quantified": result["quantified"], "scenario": _compact_scenario(result["scenario"])}
    return {
        "quantified": result["quantified"],
        "strategies": [
            {
                "type": s["type"],
                "monthly_savings_usd": s["monthly_savings_usd"],
                "savings_pct": s["savings_pct"],
            }
            for s in result["strategies"]
        ],
        "not_checked": [g["strategy"] for g in result["not_checked"]],
        "target": (result.get("target") or {}).get("verdict"),
        "reason": result["reason"],
    }


async def _evaluate_strategies(ctx: RunContext, args: JSON) -> JSON:
    data = ctx.results.get("data", {})
    analysis = data.get("analysis") if isinstance(data.get("analysis"), dict) else None
    return evaluate(analysis, load_profile(data), dict(args.get("entities") or {}))


EVALUATE_STRATEGIES = Tool(
    name="evaluate_strategies",
    description="Take the strategies the analysis measured (savings $ and %, assumptions, confidence, risk), "
    "check them against the user's target and SLO, and list what the data could not check.",
    args_schema={
        "type": "object",
        "properties": {
            "category": {"type": "string", "description": "The triage category."},
            "entities": {"type": "object", "description": "Targets and SLOs named in the question."},
            "measured_requests": {"type": "integer", "minimum": 0, "description": "Requests analysed."},
        },
        "required": ["category"],
        "additionalProperties": False,
    },
    fn=_evaluate_strategies,
    compact=_compact,
)


async def run_optimization(ctx: RunContext, scope: AgentScope) -> JSON:
    """Price the question's what-if, or evaluate the measured strategies against what the user asked for."""
    triage = ctx.results.get("triage", {})
    plan = triage.get("plan") if isinstance(triage.get("plan"), dict) else None
    if plan is not None and plan.get("intent") == "what_if":
        scope.think(
            f"Pricing the what-if ({plan['scenario']['kind']}) at list prices over the question's scope."
        )
        priced = await scope.call(PRICE_SCENARIO, plan)
        if priced.get("saving_monthly_usd") is not None:
            saving, share = usd(priced["saving_monthly_usd"]), pct(priced.get("saving_pct"))
            scope.think(f"{saving} a month ({share} of the scope's spend).")
        return {
            "scenario": priced,
            "quantified": priced.get("saving_monthly_usd") is not None,
            "strategies": [],
            "candidates": [],
            "not_checked": [],
            "target": None,
            "reason": "A priced what-if.",
        }
    analysis = ctx.results.get("data", {}).get("analysis") or {}
    requests = int((analysis.get("measurements") or {}).get("requests") or 0)
    scope.think(f"Evaluating savings strategies measured on {requests:,} requests.")
    args: JSON = {
        "category": str(triage.get("category", "general_question")),
        "entities": dict(triage.get("entities") or {}),
        "measured_requests": requests,
    }
    result = await scope.call(EVALUATE_STRATEGIES, args)
    for s in result["strategies"][:3]:
        saving = (
            f"{usd(s['monthly_savings_usd'])} a month ({pct(s['savings_pct'])})"
            if s["monthly_savings_usd"] is not None
            else "no $ figure (unpriced)"
        )
        scope.think(f"{s['type']}: {saving}, {s['confidence']} confidence.")
    if result.get("target"):
        scope.think(result["target"]["text"])
    return result


OPTIMIZATION = Agent(
    name="optimization",
    description="Quantifies savings strategies from the measured data and checks them against the target.",
    tools=(EVALUATE_STRATEGIES, PRICE_SCENARIO),
    run=run_optimization,
    compact=_compact,
)
