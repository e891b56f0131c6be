"""Reporting: one report from whatever the earlier agents produced, streamed as markdown."""

from __future__ import annotations

from typing import Any

from tokenwise.agents.base import RunContext
from tokenwise.agents.data_helper import data_request
from tokenwise.agents.rendering import render
from tokenwise.agents.tooling import JSON, Agent, AgentScope
from tokenwise.agents.triage import SUFFICIENT_ROWS

_TITLES = {
    "cost_optimization": "Cutting LLM spend",
    "latency_performance": "LLM latency and performance",
    "model_selection": "Choosing models",
    "workload_analysis": "Your LLM workload",
    "capacity_planning": "Capacity planning for LLM traffic",
    "general_question": "Your LLM usage",
}


def failed(result: JSON | None) -> bool:
    """Whether an entry of `RunContext.results` records a failed agent."""
    return bool(result and result.get("failed"))


def compose(results: dict[str, JSON]) -> JSON:
    """The structured report for the results of the earlier agents, failed ones included."""
    # Results are read with .get: an agent swapped in through `agents=` may return another shape.
    ok = {name: r for name, r in results.items() if not failed(r)}
    triage, data, helper = ok.get("triage", {}), ok.get("data", {}), ok.get("data_helper", {})
    category = str(triage.get("category", "general_question"))
    entities: JSON = triage.get("entities", {})
    rows = _count(data.get("rows", triage.get("rows")))
    datasets = _count(data.get("datasets", triage.get("datasets")))
    failures = [name for name, r in results.items() if failed(r)]

    if rows == 0:
        report_type = "guidance"
    elif rows is None or failures or rows < SUFFICIENT_ROWS:
        report_type = "partial"
    else:
        report_type = "full"

    request: JSON | None = None
    if isinstance(helper.get("data_request"), dict):
        request = helper["data_request"]
    elif rows is None or rows < SUFFICIENT_ROWS:
        request = data_request(category)

    strategies = _strategies(ok.get("optimization"))
    notes = [
        f"The {name} step failed ({results[name].get('code')}); this report is built without it."
        for name in failures
    ]
    if "data_reason" in triage:
        notes.append(str(triage["data_reason"]))
    if rows and "reason" in ok.get("optimization", {}):
        notes.append(str(ok["optimization"]["reason"]))
    notes.append("Savings figures are only given when they are measured from your usage data.")

    title = _TITLES.get(category, _TITLES["general_question"])
    return {
        "report_type": report_type,
        "title": title + (": the data needed" if report_type == "guidance" else ""),
        "summary": _summary(rows, datasets, entities),
        "category": category,
        "measurements": {"datasets": datasets, "rows": rows} if rows is not None else {},
        "strategies": strategies,
        "actions": list(ok.get("actions", {}).get("actions", [])),
        "data_request": request,
        "notes": notes,
    }


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and value >= 0 else None


def _strategies(optimization: JSON | None) -> list[JSON]:
    if not optimization:
        return []
    every: list[JSON] = optimization.get("strategies", [])
    relevant = [s for s in every if s.get("relevant")]
    return relevant or every


def _summary(rows: int | None, datasets: int | None, entities: JSON) -> str:
    if rows is None:
        text = (
            "Usage data could not be read in this run, so nothing was measured and no savings are estimated."
        )
    elif rows == 0:
        text = "There is no usage data yet, so nothing has been measured and no savings are estimated."
    else:
        text = (
            f"{rows} usage rows across {datasets} dataset(s) are stored. Spend by model, latency percentiles "
            "and cache rates are not computed from them yet, so the strategies below are ranked candidates "
            "without savings figures."
        )
    if "reduction_pct" in entities:
        text += (
            f" Whether a {entities['reduction_pct']}% reduction is reachable depends on those measurements."
        )
    if slo := entities.get("latency_slo"):
        text += f" Any change must keep {slo['percentile']} latency within {slo['threshold_ms']} ms."
    if models := entities.get("models"):
        text += f" Models named: {', '.join(models)}."
    return text


def deltas(markdown: str) -> list[str]:
    """Split markdown into paragraph-sized pieces whose concatenation is exactly `markdown`."""
    parts = markdown.split("\n\n")
    pieces = [part + "\n\n" for part in parts[:-1]] + [parts[-1]]
    return [piece for piece in pieces if piece]


async def run_reporting(ctx: RunContext, scope: AgentScope) -> JSON:
    """Compose the report and stream its markdown."""
    scope.think("Writing the report from what the earlier steps found.")
    report = compose(ctx.results)
    markdown = render(report)
    for piece in deltas(markdown):
        await scope.stream(piece)
    return {"report": report, "markdown": markdown}


def _compact(result: dict[str, Any]) -> JSON:
    report = result["report"]
    return {"report_type": report["report_type"], "title": report["title"], "chars": len(result["markdown"])}


REPORTING = Agent(
    name="reporting",
    description="Writes the report, full, partial or guidance, from whatever the earlier steps produced.",
    tools=(),
    run=run_reporting,
    compact=_compact,
)
