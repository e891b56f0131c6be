"""Reporting: one report from whatever the earlier agents produced, streamed as markdown."""

from __future__ import annotations

from typing import Any

from tokenwise.agents.base import RunContext
from tokenwise.agents.phrasing import WRITE_NARRATIVE, phrase
from tokenwise.agents.rendering import render
from tokenwise.agents.report import compose, facts, failed, pieces
from tokenwise.agents.tooling import JSON, Agent, AgentScope

__all__ = ["REPORTING", "compose", "deltas", "failed"]


def deltas(markdown: str) -> list[str]:
    """Split markdown into paragraph-sized pieces whose concatenation is exactly `markdown`."""
    return pieces(markdown)


async def run_reporting(ctx: RunContext, scope: AgentScope) -> JSON:
    """Compose the report, let the language model (if any) word its summary, and stream its markdown."""
    scope.think("Writing the report from what the earlier steps found.")
    report = compose(ctx.results)
    earlier = str((ctx.results.get("triage", {}).get("language_model") or {}).get("unavailable") or "")
    if ctx.language.enabled and earlier.startswith("language model unavailable"):
        # Already unreachable in this run: do not make the user wait for a second timeout.
        report["notes"].insert(0, f"{earlier}; the summary uses the built-in text.")
    else:
        text, why_not = await phrase(scope, WRITE_NARRATIVE, facts(report))
        if text:
            report["summary"] = text
            report["narrative"] = {"source": "language_model", "model": ctx.language.name}
        elif why_not:
            report["notes"].insert(0, f"{why_not}; the summary uses the built-in text.")
    markdown = render(report)
    for piece in deltas(markdown):
        await scope.stream(piece)
    return {"report": report, "markdown": markdown}


def _compact(result: dict[str, Any]) -> JSON:
    report = result["report"]
    return {
        "report_type": report["report_type"],
        "title": report["title"],
        "strategies": [s["type"] for s in report["strategies"]],
        "chars": len(result["markdown"]),
    }


REPORTING = Agent(
    name="reporting",
    description="Writes the report, full, partial or guidance, from whatever the earlier steps produced.",
    tools=(WRITE_NARRATIVE,),
    run=run_reporting,
    compact=_compact,
)
