"""Phrasing by the optional language model, under one rule: it may word the facts, never supply a figure.

Every number in the model's text must appear in the facts it was given; otherwise the text is refused and
the built-in text stays. When the model is unreachable the run goes on with the built-in text and says so.
"""

from __future__ import annotations

import re

from tokenwise.agents.base import RunContext
from tokenwise.agents.language import LanguageModelUnavailable
from tokenwise.agents.tooling import JSON, AgentScope, Tool, ToolFailed, ToolFn

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_LIMITS = {"restate_question": 200, "narrative": 1200}
_SYSTEM = {
    "restate_question": (
        "Restate the user's question about their LLM / AI workload in one short sentence, as an analyst "
        "would file it. Do not answer it. Use no number that the question does not contain."
    ),
    "narrative": (
        "You write the summary paragraph of a report on a team's LLM usage. Use only the facts given. Copy "
        "every figure exactly as it is written in the facts: do not compute, round or invent any figure. "
        "Two to four sentences of plain prose: no headings, no lists, no markdown."
    ),
}


def figures(text: str) -> set[float]:
    """The numbers written in `text` ("1,234.5" -> 1234.5)."""
    found = set()
    for match in _NUMBER.finditer(text):
        raw = match.group(0)
        # "1,234" is a thousands separator; "1,5" (a decimal comma) is read as two numbers, 1 and 5
        cleaned = raw.replace(",", "") if re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", raw) else raw
        for part in cleaned.split(","):
            found.add(float(part))
    return found


def unsupported_figures(text: str, facts: str) -> list[float]:
    """Numbers in `text` that the facts do not contain: a language model may not invent any."""
    allowed = figures(facts)
    return sorted(n for n in figures(text) if n not in allowed)


def clean(text: str, purpose: str) -> str:
    """The model's text as it may appear: no markup brackets, one line for a restatement, bounded."""
    text = text.replace("<", "").replace(">", "").strip()
    if purpose == "restate_question":
        text = text.splitlines()[0].strip() if text else ""
    return text[: _LIMITS.get(purpose, 600)]


def _wording(purpose: str) -> ToolFn:
    async def word(ctx: RunContext, args: JSON) -> JSON:
        facts = str(args["facts"])
        try:
            reply = await ctx.language.complete(_SYSTEM[purpose], facts, max_tokens=300)
        except LanguageModelUnavailable as exc:
            return {"ok": False, "reason": f"language model unavailable: {exc}"}
        text = clean(reply, purpose)
        invented = unsupported_figures(text, facts)
        if invented:
            shown = ", ".join(f"{n:g}" for n in invented[:5])
            return {
                "ok": False,
                "reason": f"the language model's text had figures not in the analysis ({shown})",
            }
        if not text:
            return {"ok": False, "reason": "the language model returned no usable text"}
        return {"ok": True, "text": text}

    return word


def _tool(name: str, purpose: str, description: str) -> Tool:
    return Tool(
        name=name,
        description=description + " Text with any figure not in the facts is refused.",
        args_schema={
            "type": "object",
            "properties": {
                "model": {"type": "string", "description": "The language model asked."},
                "facts": {"type": "string", "description": "Everything the text may say, figures included."},
            },
            "required": ["facts"],
            "additionalProperties": False,
        },
        fn=_wording(purpose),
        compact=lambda r: {"ok": r["ok"], "chars": len(r["text"])} if r["ok"] else r,
    )


RESTATE_QUESTION = _tool(
    "restate_question",
    "restate_question",
    "Have the configured language model restate the question in one line (triage).",
)
WRITE_NARRATIVE = _tool(
    "write_narrative",
    "narrative",
    "Have the configured language model word the report's summary from the measured facts.",
)


async def phrase(scope: AgentScope, tool: Tool, facts: str) -> tuple[str | None, str | None]:
    """(text, None) when the model worded it; (None, why not) otherwise. No call without a model."""
    language = scope.ctx.language
    if not language.enabled:
        return None, None
    try:
        result = await scope.call(tool, {"model": language.name, "facts": facts})
    except ToolFailed as exc:
        result = {"ok": False, "reason": str(exc)}
    if result["ok"]:
        return str(result["text"]), None
    reason = str(result["reason"])
    scope.think(f"{reason}; using built-in text.")
    return None, reason
