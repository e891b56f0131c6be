"""What-ifs in a question: route traffic to a model, cap outputs, cache hits, prompt caching, batch APIs,
trimmed contexts, price changes and traffic growth, with their parameters."""

from __future__ import annotations

import re
from typing import Any

from tokenwise.agents.understanding.words import NUM, PCT, ROUTE_VERB, WHAT_IF, number
from tokenwise.agents.vocabulary import Mention
from tokenwise.analysis.plan import Scenario

_CHEAPER = rf"{PCT}\s+(cheaper|more expensive|lower|higher|less|more|off|increase|decrease|drop|rise)"
_PRICES_MOVE = (
    r"\bprices?\s+(?:drops?|dropped|fall\w*|fell|cut\w*|decreas\w*|increas\w*|rise\w*|rose|goes up|go up|"
    rf"went up|goes down|go down|went down|change\w*)\s+(?:by\s+)?{PCT}"
)
_PROMPT_CACHE = (
    r"\bprompt[- ]cach\w*|\bcach\w+\s+(?:the\s+|a\s+|our\s+)?(?:\d[\d,]*[- ]tokens?\s+)?"
    r"(?:shared\s+|common\s+|system\s+)?(?:prefix|prefixes|system prompts?)"
)
_DOUBLES = (
    r"\b(traffic|usage|volume|requests|load)\s+(doubles?|doubled)\b|\bdouble\s+(?:the\s+)?(traffic|usage)"
)
_SHORT = r"\b(short|shorter|small|smaller|simple|easy)\s+(?:\w+\s+)?(requests?|ones|calls|prompts|queries)\b"


def scenario(text: str, mentions: list[Mention]) -> tuple[Scenario | None, Mention | None]:
    share, condition = affected_share(text)
    common: dict[str, Any] = {"share_pct": share, "condition": condition}
    if m := re.search(
        rf"\b(?:cap\w*|limit\w*|max\w*|restrict\w*|clamp\w*|set)\s+(?:the\s+|our\s+)?(?:max(?:imum)?\s+)?"
        rf"(?:output|outputs|responses?|completions?|answers?|max_tokens|output tokens|generation)\s+"
        rf"(?:length\s+)?(?:at|to|of)?\s*{NUM}|\bmax_tokens\s*(?:=|of|to|at)?\s*{NUM}|"
        rf"(?:outputs?|responses?)\s+(?:capped|limited)\s+(?:at|to)\s+{NUM}",
        text,
    ):
        value = int(number(next(g for g in m.groups() if g)))
        return Scenario(kind="output_cap", max_output_tokens=value), None
    if m := re.search(
        rf"\b(?:trim\w*|truncat\w*|cut\w*|limit\w*|cap\w*|shorten\w*|reduc\w*)\s+(?:the\s+|our\s+)?"
        rf"(?:context|contexts|inputs?|prompts?|input tokens|context windows?)\s+(?:length\s+)?(?:to|"
        rf"at)\s+{NUM}",
        text,
    ):
        return Scenario(kind="trim_context", max_input_tokens=int(number(m.group(1)))), None
    if m := re.search(
        rf"{PCT}\s+(?:cache\s+)?hit(?:\s+rate)?|(?:cache\s+)?hit\s+rate\s+(?:of\s+)?{PCT}|"
        rf"{PCT}\s+(?:of\s+)?(?:[\w-]+\s+){{0,4}}?(?:were\s+|was\s+|are\s+|is\s+|got\s+|get\s+)?"
        rf"(?:served|answered|came|come|hit)\s+(?:from\s+)?(?:a\s+|the\s+)?cache|\bcach\w*\s+{PCT}|"
        rf"\b(?:serv\w*|answer\w*)\s+{PCT}\s+(?:of\s+)?(?:[\w-]+\s+){{0,4}}?from\s+(?:a\s+|the\s+)?cache",
        text,
    ):
        rate = float(next(g for g in m.groups() if g))
        if 0 < rate <= 100:
            return Scenario(kind="cache_hit", hit_rate_pct=rate), None
    if re.search(_PROMPT_CACHE, text):
        size = re.search(
            rf"{NUM}[- ]tokens?\s+(?:shared\s+|common\s+|system\s+)?(?:prefix|system prompt|prompt)|"
            rf"prefix of {NUM}",
            text,
        )
        prefix = int(number(size.group(1) or size.group(2))) if size else None
        return Scenario(kind="prompt_cache", prefix_tokens=prefix), None
    if re.search(r"\bbatch(?:es|ed|ing)?\b", text) and (WHAT_IF.search(text) or ROUTE_VERB.search(text)):
        return Scenario(kind="batch", **common), None
    if m := re.search(_CHEAPER, text) or re.search(_PRICES_MOVE, text):
        change = float(m.group(1))
        words = m.group(0)
        down = re.search(r"cheaper|lower|less|off|decreas|drop|fall|fell|cut|down", words) is not None
        if re.search(r"price|cheaper|expensive|cost", text):
            return Scenario(kind="price_change", price_change_pct=-change if down else change), None
    if g := re.search(
        rf"\b(?:traffic|usage|volume|requests|load|demand)\s+(?:grows?|grew|increases?|rises?|goes up|"
        rf"went up|jumps?)"
        rf"\s+(?:by\s+)?{PCT}|{PCT}\s+(?:more|growth in|increase in)\s+(?:traffic|usage|requests|"
        rf"volume|load)|"
        rf"\bgrow(?:s|th)?\s+(?:of\s+|by\s+)?{PCT}",
        text,
    ):
        return Scenario(kind="growth", growth_pct=float(next(x for x in g.groups() if x))), None
    if re.search(_DOUBLES, text):
        return Scenario(kind="growth", growth_pct=100.0), None
    target = route_target(text, mentions)
    if target is not None and (WHAT_IF.search(text) or ROUTE_VERB.search(text)):
        return Scenario(kind="route", target_model=target.value, **common), target
    return None, None


def affected_share(text: str) -> tuple[float, str]:
    condition = "short" if re.search(_SHORT, text) else "all"
    if re.search(r"\bhalf\b", text):
        return 50.0, condition
    if re.search(r"\b(?:a|one)\s+third\b", text):
        return 100 / 3, condition
    if re.search(r"\b(?:a|one)\s+quarter\b", text):
        return 25.0, condition
    if m := re.search(rf"{PCT}\s+(?:of\s+)?", text):
        value = float(m.group(1))
        if 0 < value <= 100:
            return value, condition
    return 100.0, condition


def route_target(text: str, mentions: list[Mention]) -> Mention | None:
    models = [m for m in mentions if m.dimension in ("model", "priced_model")]
    for m in reversed(models):
        before = text[max(0, m.span[0] - 12) : m.span[0]]
        if re.search(r"\b(to|onto|into|with|use|used|using|on|for)\s+(?:the\s+)?$", before):
            return m
    return None
