"""The built-in understanding of this domain's questions: a question (and its thread's earlier plans) into
a `QueryPlan`, with no language model.

It reads periods (`calendar`), names from the user's data (`vocabulary`), numbers, percentages and the
words that say what is asked (a total, a ranking, a comparison, a what-if, ...). Whatever it had to guess
is written into the plan's `readings`, so the answer can say how the question was read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from tokenwise.agents.calendar import Reading, month_period, previous_like, read_periods
from tokenwise.agents.vocabulary import Mention, Vocabulary
from tokenwise.analysis.plan import (
    DIMENSION_COLUMNS,
    Comparison,
    Filter,
    Period,
    QueryPlan,
    Scenario,
    Threshold,
    UnknownName,
)


@dataclass(frozen=True)
class Turn:
    """An earlier question of the thread and the plan it was answered with."""

    question: str
    plan: dict[str, Any]
    top: str | None = None  # the first row of its answer (the top day, feature, ...): what "why?" asks about


_NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
                 "nine": 9, "ten": 10, "twenty": 20}  # fmt: skip
_NUM = r"(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?|" + "|".join(_NUMBER_WORDS) + r")"
_PCT = r"(\d{1,3}(?:\.\d+)?)\s*(?:%|percent\b|per cent\b)"
_DIMENSION_WORDS: dict[str, str] = {
    "model": r"models?",
    "feature": r"features?|use[- ]cases?|apps?|applications?|products?|endpoints?|routes?",
    "user": r"users?|customers?|people",
    "team": r"teams?",
    "project": r"projects?|workspaces?",
    "api_key": r"(?:api[- ])?keys?",
    "provider": r"providers?|vendors?",
    "weekday": r"weekdays?|days? of (?:the )?week",
    "hour": r"hours? of (?:the )?day|hours?",
    "day": r"days?|dates?",
    "week": r"weeks?",
    "month": r"months?",
}
_GROUP_WORD = "|".join(f"(?P<{k}>{v})" for k, v in _DIMENSION_WORDS.items())
_GROUP_PATTERNS = (
    re.compile(rf"\b(?:by|per|for each|for every|each|across|grouped by|group by)\s+(?:the\s+)?(?:{_GROUP_WORD})\b"),
    re.compile(rf"\bwhich\s+(?:{_GROUP_WORD})\b"),
    re.compile(rf"\b(?:top|bottom|first|largest|biggest|smallest|least|most|cheapest|heaviest|priciest)\s+"
               rf"(?:{_NUM}\s+)?(?:{_GROUP_WORD})\b"),
    re.compile(rf"\b{_NUM}\s+(?:most\s+expensive\s+|biggest\s+|largest\s+|top\s+|heaviest\s+|cheapest\s+)?"
               rf"(?:{_GROUP_WORD})\s+(?:by|with|that|who|ranked)\b"),
    re.compile(rf"\b(?:{_GROUP_WORD})\s+(?:by|ranked by|sorted by)\s+(?:spend|cost|requests|tokens|errors)\b"),
    re.compile(rf"\b(?:{_GROUP_WORD})\s+(?:spend|spent|spends|cost|costs|use|used|make|made)\s+the\s+most\b"),
)  # fmt: skip
_WHAT_IF = re.compile(
    r"\b(what if|what would|would it|would we|would that|how much (?:would|could|can|will|do) we|if we|suppose|"
    r"imagine|hypothetical|scenario|what happens|could we save|can we save|save if|cost if)\b"
)
_ROUTE_VERB = re.compile(
    r"\b(move|moving|moved|route|routing|routed|switch|switching|switched|send|sending|shift|shifting|migrate|"
    r"migrating|use|used|using|downgrade|downgrading|replace|replacing|put|swap|swapping|serve|serving)\b"
)
_PATTERNS = {
    "forecast": re.compile(
        r"\b(forecast\w*|predict\w*|projection|projected\s+(?:spend|cost)|expect(?:ed)?\s+to\s+(?:spend|pay)|"
        r"next\s+(?:month|week|quarter|year|\d+\s+days)|run[- ]rate|end of (?:the )?month|will we spend)\b"
    ),
    "anomalies": re.compile(
        r"\b(anomal\w*|unusual\w*|spikes?|spiked|spiking|stands? out|stood out|outliers?|abnormal\w*|odd|weird|"
        r"strange|surges?|jumps?|jumped)\b"
    ),
    "top_requests": re.compile(
        r"\b(most expensive|costliest|priciest|slowest|largest|biggest|longest|heaviest|cheapest|fastest|smallest)"
        r"\s+(?:\d+\s+|"
        + "|".join(_NUMBER_WORDS)
        + r"\s+)?(?:[\w-]+\s+){0,2}?(requests?|calls?|prompts?|completions?|responses?|queries)\b"
        r"|\b(?:top|\d+)\s+(?:requests?|calls?)\s+by\s+(?:cost|latency|tokens|spend)\b"
    ),
    "capacity": re.compile(
        r"\b(capacity|tokens? per second|tokens?/s|tok/s|requests? per second|requests?/s|req/s|rps|tps|"
        r"throughput|provision\w*|headroom|concurren\w*|peak)\b"
    ),
    "optimize": re.compile(
        r"\b(cut|cutting|reduce|reducing|lower(?:ing)?|save|saving|savings|cheaper|optimi[sz]\w*|spend less|"
        r"too expensive|waste\w*|efficien\w*|recommend\w*|improve\w*|strateg\w*)\b"
    ),
    "compare": re.compile(
        r"\b(vs\.?|versus|compared? (?:to|with)|compare|comparison|week[- ]over[- ]week|month[- ]over[- ]month|"
        r"year[- ]over[- ]year|wow|mom|difference between|than (?:last|the previous|the week before|the month before)|"
        r"change(?:d)? (?:from|since|between)|against)\b"
    ),
    "unit_cost": re.compile(
        r"\b(?:cost|spend|price|pay)\s+(?:us\s+)?per\s+(?:request|call|1k|1,000|thousand|user|feature|1m|million|"
        r"token|customer)|\bunit (?:cost|economics)|\baverage (?:cost|spend)\b|\bcost of (?:a|one|each) (?:request|call)\b"
        r"|\bcosts?\s+(?:us\s+)?on average\b|\bon average\b.*\bcosts?\b"
    ),
    "percentiles": re.compile(
        r"\b(p\d{2}(?:\.\d)?|median|percentiles?|latency|latencies|response times?|how (?:slow|fast))\b"
    ),
    "share": re.compile(
        r"\b(share|what percent(?:age)?|which percent(?:age)?|what fraction|proportion|how much of (?:the|our) "
        r"(?:total|spend)|% of (?:the )?(?:total|spend|requests|traffic))\b"
    ),
    "trend": re.compile(
        r"\b(trends?|trending|over time|time series|daily|hourly|per day|each day|by day|day by day|evolution|"
        r"evolv\w*|each hour|by the hour|every day)\b"
    ),
    "breakdown": re.compile(
        r"\b(break ?down|broken down|split|distribution|rank\w*|top\s+\d+|bottom\s+\d+|which|biggest|largest|"
        r"most|least)\b"
    ),
    "total": re.compile(
        r"\b(how many|how much|total|what (?:did|was|is|were|are)|spend|spent|cost|requests|tokens|errors)\b"
    ),
}
_MEASURES = (
    ("error_rate", re.compile(r"\b(error|failure|fail) rates?\b")),
    ("errors", re.compile(r"\b(errors?|failures?|failed|failing)\b")),
    ("cached_input_tokens", re.compile(r"\bcached (?:input )?tokens\b")),
    ("input_tokens", re.compile(r"\b(input|prompt|context) tokens\b")),
    ("output_tokens", re.compile(r"\b(output|completion|generated|response) tokens\b")),
    ("tokens", re.compile(r"\btokens?\b")),
    ("spend", re.compile(r"(\b(spend|spent|spending|spends|costs?|costing|bill|billing|dollars?|usd|pay|paid|"
                        r"expensive|cheap\w*|money|price)\b|\$)")),
    ("requests", re.compile(r"\b(requests?|calls?|how many times|queries|volume|traffic|usage)\b")),
)  # fmt: skip
_BY_MEASURE = re.compile(r"\bby\s+(spend|cost|requests|calls|tokens|errors|volume|traffic)\b")
_HOW_MANY = re.compile(
    r"\bhow many\s+(?:\w+\s+)?(requests?|calls?|tokens?|errors?|failures?|input tokens|output tokens)\b"
)
_FOLLOW_UP = re.compile(
    r"^\s*(?:and|what about|how about|and for|same for|now|also|then|ok|okay|what of|but|only|just|"
    r"break (?:that|it|this|those) down|why|how come|what caused|what drove|and why)\b"
)
_WHY = re.compile(r"^\s*(?:and\s+)?(?:why|how come|what caused|what drove|what explains|what is behind)\b")
_STOP = {"the", "this", "that", "each", "every", "which", "what", "per", "by", "a", "an", "our", "my", "your", "all",
         "any", "one", "same", "top", "most", "new", "cheaper", "expensive", "other", "different", "largest",
         "biggest", "whole", "single", "of", "for", "and", "or", "to", "in", "on", "with", "cheapest", "a", "its",
         "their", "his", "her", "least", "slowest", "many", "much", "how", "is", "are", "was", "did", "do", "does",
         "total", "spend", "cost", "requests", "tokens", "errors", "latency", "over", "under", "these", "those",
         "some", "no", "not", "than", "from", "between", "as", "at", "we", "us", "i", "me"}  # fmt: skip
_NAMED = (
    re.compile(r"\b(?:the\s+)?(?P<word>[a-z0-9][\w.:-]*[a-z0-9])\s+(?P<kind>feature|model|team|project|user|api key|key|customer)\b"),
    # after the kind, only what looks like an identifier ("user u-99", not "user made")
    re.compile(r"\b(?P<kind>feature|model|team|project|user|api key|customer)\s+"
               r"(?P<word>[a-z0-9]*[\d_.:-][\w.:-]*[a-z0-9])\b"),
)
_UNSUPPORTED = re.compile(
    r"\b(carbon(?: footprint)?|co2|emissions?|energy|electricity|revenue|profit|margin|satisfaction|nps|"
    r"accuracy|hallucinat\w*|quality score|sentiment|gpu utili[sz]ation|headcount)\b"
)
_MODEL_LIKE = re.compile(
    r"\b((?:gpt|claude|gemini|llama|mistral|o[134]|command|deepseek|qwen|mixtral)[\w.:-]*[a-z0-9])\b"
)
_NAMED_DIMENSIONS = {"api key": "api_key", "key": "api_key", "customer": "user"}


def parse(question: str, vocabulary: Vocabulary, today: date, context: list[Turn] | None = None) -> QueryPlan:
    """The plan for `question`, read against the user's names, `today`, and the thread's earlier turns."""
    text = " ".join(question.split())
    low = text.lower()
    periods = read_periods(text, today)
    masked = _mask(low, [r.span for r in periods])
    mentions = vocabulary.mentions(masked)
    fields: dict[str, Any] = {}
    readings = [f"Read {r.period.label}." for r in periods if r.period.label]

    scenario, target = _scenario(masked, mentions)
    mentions = [m for m in mentions if m is not target]
    filters, unknown, compared = _filters(masked, mentions, vocabulary)
    intent = "what_if" if scenario is not None else _intent(masked, compared, periods)
    measure = _measure(masked, intent)
    group_by = _group_by(masked)
    top_n, order = _top(masked)
    fields.update(intent=intent, measure=measure, filters=filters, unknown=unknown, readings=readings)
    fields["unanswerable"] = list(dict.fromkeys(m.group(0) for m in _UNSUPPORTED.finditer(masked)))[:5]

    if scenario is not None:
        fields["scenario"] = scenario
    if periods:
        fields["period"] = (
            periods[-1].period if intent == "compare" and len(periods) > 1 else periods[0].period
        )
    if intent == "compare":
        _extend(fields, _comparison(masked, periods, compared, today))
    if intent == "forecast":
        _extend(fields, _horizon(masked, periods, today))
    if intent == "top_requests":
        fields["rank_by"] = _rank_by(masked)
        order = "asc" if re.search(r"\b(cheapest|fastest|smallest)\b", masked) else "desc"
    if intent == "slo":
        fields["threshold"] = _threshold(masked)
    if ps := _percentiles(masked):
        fields["percentiles"] = ps
    if intent == "unit_cost" or (intent == "total" and _unit(masked) == "day"):
        fields["unit"] = _unit(masked)
    if intent == "optimize":
        fields.update(_targets(masked))
    if group_by and not (intent in ("unit_cost", "total") and group_by in (fields.get("unit"), "day")):
        fields["group_by"] = group_by
    elif intent == "breakdown":
        fields["group_by"] = "feature"
        readings.append("No grouping was named: broken down by feature.")
    if top_n:
        fields["top_n"] = top_n
    fields["order"] = order

    plan = _build(fields)
    previous = _previous(context)
    if previous is not None and _is_follow_up(low, plan, periods, mentions):
        plan = _follow(plan, previous, fields, low, periods, mentions, context or [])
    return plan


def _extend(fields: dict[str, Any], extra: dict[str, Any]) -> None:
    readings = extra.pop("readings", [])
    fields.update(extra)
    fields["readings"] = [*fields.get("readings", []), *readings]


def _mask(text: str, spans: list[tuple[int, int]]) -> str:
    out = list(text)
    for a, b in spans:
        out[a:b] = " " * (b - a)
    return "".join(out)


def _number(raw: str) -> float:
    return float(_NUMBER_WORDS[raw]) if raw in _NUMBER_WORDS else float(raw.replace(",", ""))


def _build(fields: dict[str, Any]) -> QueryPlan:
    try:
        return QueryPlan(**fields)
    except ValidationError:
        # A combination the schema refuses (e.g. a comparison without its other side): the plain reading.
        kept = {k: fields[k] for k in ("measure", "filters", "period", "readings", "unknown", "unanswerable") if k in fields}
        return QueryPlan(intent="total", **kept)


# --- names ---------------------------------------------------------------------------------------------


def _filters(
    text: str, mentions: list[Mention], vocabulary: Vocabulary
) -> tuple[list[Filter], list[UnknownName], list[Mention]]:
    by_dimension: dict[str, list[str]] = {}
    unknown: list[UnknownName] = []
    for m in mentions:
        if m.dimension == "priced_model":
            unknown.append(
                UnknownName(text=m.value, dimension="model", suggestions=vocabulary.suggest(m.value, "model"))
            )
            continue
        values = by_dimension.setdefault(m.dimension, [])
        if m.value not in values:
            values.append(m.value)
    taken = [m.span for m in mentions]
    named = [m for pattern in _NAMED for m in pattern.finditer(text)]
    for match in named:
        word, kind, span = match.group("word"), match.group("kind"), match.span("word")
        if any(u.text == word for u in unknown):
            continue
        if word in _STOP or any(a < span[1] and span[0] < b for a, b in taken) or word.isdigit():
            continue
        dimension = _NAMED_DIMENSIONS.get(kind, kind)
        if vocabulary.known(dimension, word) is None:
            unknown.append(
                UnknownName(text=word, dimension=dimension, suggestions=vocabulary.suggest(word, dimension))
            )
    for match in _MODEL_LIKE.finditer(text):
        span = match.span(1)
        if any(a < span[1] and span[0] < b for a, b in taken) or vocabulary.known("model", match.group(1)):
            continue
        if not any(u.text == match.group(1) for u in unknown):
            unknown.append(UnknownName(text=match.group(1), dimension="model",
                                       suggestions=vocabulary.suggest(match.group(1), "model")))  # fmt: skip
    compared: list[Mention] = []
    for dimension, values in by_dimension.items():
        if len(values) >= 2 and _PATTERNS["compare"].search(text):
            compared = [m for m in mentions if m.dimension == dimension]
    filters = [
        Filter(dimension=d, values=v)  # type: ignore[arg-type]
        for d, v in by_dimension.items()
        if not compared or d != compared[0].dimension
    ]
    return filters, unknown[:10], compared


# --- what is asked -------------------------------------------------------------------------------------


def _intent(text: str, compared: list[Mention], periods: list[Reading]) -> str:
    p = _PATTERNS
    if p["optimize"].search(text) and not p["top_requests"].search(text) and not p["forecast"].search(text):
        return "optimize"
    for name in ("forecast", "anomalies", "top_requests"):
        if p[name].search(text):
            return name
    if _threshold(text) is not None:
        return "slo"
    if p["capacity"].search(text):
        return "capacity"
    if compared or (p["compare"].search(text) and (len(periods) >= 2 or _comparison_words(text))):
        return "compare"
    if p["unit_cost"].search(text):
        return "unit_cost"
    if p["percentiles"].search(text):
        return "percentiles"
    if p["share"].search(text):
        return "share"
    if _unit(text) == "day" and re.search(r"\b(average|mean)\b", text):
        return "total"
    if p["trend"].search(text):
        return "trend"
    if p["breakdown"].search(text) or _group_by(text):
        return "breakdown"
    if p["total"].search(text):
        return "total"
    return "overview"


def _comparison_words(text: str) -> bool:
    return bool(
        re.search(r"\b(week[- ]over[- ]week|month[- ]over[- ]month|year[- ]over[- ]year|wow|mom|last|previous|"
                  r"before|change)\b", text)
    )


def _measure(text: str, intent: str) -> str:
    if intent in ("percentiles",) and not re.search(r"\btokens?\b", text):
        return "latency_ms"
    if re.search(r"\bcost\w*\s+(?:us\s+)?per\s+(?:request|call)\b|\b(?:request|call)\s+costs?\b", text) and intent != "unit_cost":
        return "cost_per_request"
    for name in ("error_rate", "cached_input_tokens", "input_tokens", "output_tokens"):
        if dict(_MEASURES)[name].search(text):
            return name
    if by := _BY_MEASURE.search(text):
        word = by.group(1)
        return {"cost": "spend", "calls": "requests", "volume": "requests", "traffic": "requests"}.get(
            word, word if word in ("spend", "requests", "tokens", "errors") else "spend"
        )
    if many := _HOW_MANY.search(text):
        word = many.group(1)
        for name, pattern in _MEASURES:
            if pattern.search(word):
                return name
    for name, pattern in _MEASURES:
        if pattern.search(text):
            if name == "requests" and _MEASURES[6][1].search(text):
                return "spend"
            return name
    if intent in ("percentiles", "slo"):
        return "latency_ms"
    return "spend"


def _group_by(text: str) -> str | None:
    for pattern in _GROUP_PATTERNS:
        for match in pattern.finditer(text):
            for name in _DIMENSION_WORDS:
                if match.groupdict().get(name):
                    if name == "day" and re.search(r"\bper day\b|\bby day\b|\beach day\b", match.group(0)):
                        return "day"
                    return name
    if re.search(r"\b(daily|each day|every day|per day|day by day)\b", text):
        return "day"
    if re.search(r"\b(hourly|each hour|by the hour)\b", text):
        return "hour"
    return None


def _top(text: str) -> tuple[int | None, str]:
    order = "asc" if re.search(r"\b(bottom|least|cheapest|fewest|lowest|smallest)\b", text) else "desc"
    match = re.search(
        rf"\b(?:top|bottom|first|the)\s+{_NUM}\b|\b{_NUM}\s+(?:most|least|largest|biggest|smallest|cheapest|"
        r"slowest|costliest|priciest|heaviest|top|expensive|busiest|users|features|models|teams|projects|keys|"
        r"api keys|requests|calls|days|hours|customers)\b",
        text,
    )
    if match:
        raw = match.group(1) or match.group(2)
        value = int(_number(raw))
        if 1 <= value <= 100:
            return value, order
    if re.search(r"\bwhich\s+(?:[\w-]+\s+){0,6}?(?:highest|most|biggest|largest|top|lowest|least|fewest|busiest|"
                 r"costliest|priciest|cheapest)\b", text):  # fmt: skip
        return 1, order
    return None, order


def _rank_by(text: str) -> str:
    if re.search(r"\b(slowest|fastest|latency)\b", text):
        return "latency_ms"
    if re.search(
        r"\b(longest|largest|biggest|heaviest|smallest)\s+(?:\w+\s+)?(outputs?|responses?|completions?)\b",
        text,
    ):
        return "output_tokens"
    if re.search(r"\b(largest|biggest|longest|heaviest|smallest)\b|\btokens\b", text) and not re.search(
        r"\b(expensive|cost|costliest|priciest|cheapest)\b", text
    ):
        return "tokens"
    return "cost"


def _threshold(text: str) -> Threshold | None:
    above = r"(over|above|more than|longer than|slower than|exceed\w*|greater than|>|at least)"
    below = r"(under|below|less than|faster than|within|<)"
    for op, words in ((">", above), ("<", below)):
        latency = re.search(rf"\b{words}\s*{_NUM}\s*(ms|milliseconds?|s|secs?|seconds?)\b", text)
        if latency:
            value = _number(latency.group(2))
            ms = value if latency.group(3).startswith("m") else value * 1000
            return Threshold(measure="latency_ms", op=op, value=ms)  # type: ignore[arg-type]
        tokens = re.search(rf"\b{words}\s*{_NUM}\s*(input |output |prompt |completion )?tokens\b", text)
        if tokens and not re.search(r"\b(cap|limit|trim|truncat)", text):
            kind = (
                "output_tokens"
                if (tokens.group(3) or "").strip() in ("output", "completion")
                else "input_tokens"
            )
            return Threshold(measure=kind, op=op, value=_number(tokens.group(2)))  # type: ignore[arg-type]
    return None


def _percentiles(text: str) -> list[float]:
    found = [float(p) for p in re.findall(r"\bp(\d{2}(?:\.\d)?)\b", text) if 0 < float(p) < 100]
    if re.search(r"\bmedian\b", text):
        found.insert(0, 50.0)
    return sorted(set(found))


def _unit(text: str) -> str:
    if re.search(r"\b(?:average|mean)\s+(?:daily|per day|a day)\b|\bdaily average\b|\bper day on average\b", text):
        return "day"
    if re.search(r"\bper\s+(?:1k|1,000|thousand|1000)\b", text):
        return "1k_requests"
    if re.search(r"\bper\s+(?:1m|million|1,000,000)\b|\bper\s+(?:1m\s+)?tokens?\b", text):
        return "1m_tokens"
    if re.search(r"\bper\s+(?:user|customer)\b", text):
        return "user"
    if re.search(r"\bper\s+feature\b", text):
        return "feature"
    return "request"


def _targets(text: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if pct := re.search(rf"\b(?:by|cut|reduce|lower|save)\w*\s+(?:\w+\s+){{0,4}}?{_PCT}|{_PCT}\s+(?:\w+\s+){{0,2}}?"
                        r"(?:reduction|cut|savings|cheaper|lower|less)", text):  # fmt: skip
        value = float(pct.group(1) or pct.group(2))
        if 0 < value <= 100:
            out["reduction_pct"] = value
    if budget := re.search(r"\$\s?(\d[\d,]*(?:\.\d+)?)\s*(k\b)?", text):
        amount = float(budget.group(1).replace(",", "")) * (1000 if budget.group(2) else 1)
        if amount > 0:
            out["budget_usd"] = amount
    return out


# --- what-ifs ------------------------------------------------------------------------------------------


def _scenario(text: str, mentions: list[Mention]) -> tuple[Scenario | None, Mention | None]:
    share, condition = _share(text)
    common: dict[str, Any] = {"share_pct": share, "condition": condition}
    if m := re.search(
        rf"\b(?:cap\w*|limit\w*|max\w*|restrict\w*|clamp\w*|set)\s+(?:the\s+|our\s+)?(?:max(?:imum)?\s+)?"
        rf"(?:output|outputs|responses?|completions?|answers?|max_tokens|output tokens|generation)\s+"
        rf"(?:length\s+)?(?:at|to|of)?\s*{_NUM}|\bmax_tokens\s*(?:=|of|to|at)?\s*{_NUM}|"
        rf"(?:outputs?|responses?)\s+(?:capped|limited)\s+(?:at|to)\s+{_NUM}",
        text,
    ):
        value = int(_number(next(g for g in m.groups() if g)))
        return Scenario(kind="output_cap", max_output_tokens=value), None
    if m := re.search(
        rf"\b(?:trim\w*|truncat\w*|cut\w*|limit\w*|cap\w*|shorten\w*|reduc\w*)\s+(?:the\s+|our\s+)?"
        rf"(?:context|contexts|inputs?|prompts?|input tokens|context windows?)\s+(?:length\s+)?(?:to|at)\s+{_NUM}",
        text,
    ):
        return Scenario(kind="trim_context", max_input_tokens=int(_number(m.group(1)))), None
    if m := re.search(
        rf"{_PCT}\s+(?:cache\s+)?hit(?:\s+rate)?|(?:cache\s+)?hit\s+rate\s+(?:of\s+)?{_PCT}|"
        rf"{_PCT}\s+(?:of\s+)?(?:[\w-]+\s+){{0,4}}?(?:were\s+|was\s+|are\s+|is\s+|got\s+|get\s+)?"
        rf"(?:served|answered|came|come|hit)\s+(?:from\s+)?(?:a\s+|the\s+)?cache|\bcach\w*\s+{_PCT}",
        text,
    ):
        rate = float(next(g for g in m.groups() if g))
        if 0 < rate <= 100:
            return Scenario(kind="cache_hit", hit_rate_pct=rate), None
    if re.search(r"\bprompt[- ]cach\w*|\bcach\w+\s+(?:the\s+|a\s+|our\s+)?(?:shared\s+|common\s+|system\s+)?"
                 r"(?:prefix|prefixes|system prompts?)", text):  # fmt: skip
        size = re.search(
            rf"{_NUM}[- ]tokens?\s+(?:shared\s+|common\s+)?(?:prefix|system prompt)|prefix of {_NUM}", text
        )
        prefix = int(_number(size.group(1) or size.group(2))) if size else None
        return Scenario(kind="prompt_cache", prefix_tokens=prefix), None
    if re.search(r"\bbatch(?:es|ed|ing)?\b", text) and (_WHAT_IF.search(text) or _ROUTE_VERB.search(text)):
        return Scenario(kind="batch", **common), None
    if m := re.search(rf"{_PCT}\s+(cheaper|more expensive|lower|higher|less|more|off|increase|decrease|drop|rise)",
                      text) or re.search(rf"\bprices?\s+(?:drops?|dropped|fall\w*|fell|cut\w*|decreas\w*|increas\w*|"
                                         rf"rise\w*|rose|goes up|go up|went up|goes down|go down|went down|"
                                         rf"change\w*)\s+(?:by\s+)?{_PCT}", text):  # fmt: skip
        value = float(m.group(1))
        words = m.group(0)
        down = re.search(r"cheaper|lower|less|off|decreas|drop|fall|fell|cut|down", words) is not None
        if re.search(r"price|cheaper|expensive|cost", text):
            return Scenario(kind="price_change", price_change_pct=-value if down else value), None
    if g := re.search(
        rf"\b(?:traffic|usage|volume|requests|load|demand)\s+(?:grows?|grew|increases?|rises?|goes up|went up|jumps?)"
        rf"\s+(?:by\s+)?{_PCT}|{_PCT}\s+(?:more|growth in|increase in)\s+(?:traffic|usage|requests|volume|load)|"
        rf"\bgrow(?:s|th)?\s+(?:of\s+|by\s+)?{_PCT}",
        text,
    ):
        return Scenario(kind="growth", growth_pct=float(next(x for x in g.groups() if x))), None
    if re.search(r"\b(traffic|usage|volume|requests|load)\s+(doubles?|doubled)\b|\bdouble\s+(?:the\s+)?(traffic|usage)",
                 text):  # fmt: skip
        return Scenario(kind="growth", growth_pct=100.0), None
    target = _route_target(text, mentions)
    if target is not None and (_WHAT_IF.search(text) or _ROUTE_VERB.search(text)):
        return Scenario(kind="route", target_model=target.value, **common), target
    return None, None


def _share(text: str) -> tuple[float, str]:
    condition = "short" if re.search(r"\b(short|shorter|small|smaller|simple|easy)\s+(?:\w+\s+)?(requests?|ones|"
                                     r"calls|prompts|queries)\b", text) else "all"  # fmt: skip
    if re.search(r"\bhalf\b", text):
        return 50.0, condition
    if re.search(r"\b(?:a|one)\s+third\b", text):
        return 100 / 3, condition
    if re.search(r"\b(?:a|one)\s+quarter\b", text):
        return 25.0, condition
    if m := re.search(rf"{_PCT}\s+(?:of\s+)?", text):
        value = float(m.group(1))
        if 0 < value <= 100:
            return value, condition
    return 100.0, condition


def _route_target(text: str, mentions: list[Mention]) -> Mention | None:
    models = [m for m in mentions if m.dimension in ("model", "priced_model")]
    for m in reversed(models):
        before = text[max(0, m.span[0] - 12) : m.span[0]]
        if re.search(r"\b(to|onto|into|with|use|used|using|on|for)\s+(?:the\s+)?$", before):
            return m
    return None


# --- comparisons and forecasts -------------------------------------------------------------------------


def _comparison(text: str, periods: list[Reading], compared: list[Mention], today: date) -> dict[str, Any]:
    if compared:
        values = list(dict.fromkeys(m.value for m in compared))
        return {"comparison": Comparison(kind="values", dimension=compared[0].dimension, values=values)}  # type: ignore[arg-type]
    if len(periods) >= 2:
        later, earlier = sorted((r.period for r in periods), key=lambda p: p.start or p.end, reverse=True)[:2]
        return {"period": later, "comparison": Comparison(kind="period", period=earlier)}
    if len(periods) == 1 and periods[0].period.start and periods[0].period.end:
        return {"comparison": Comparison(kind="period", period=previous_like(periods[0].period))}
    unit = "month" if re.search(r"\b(month|mom)\b", text) else "week"
    current = read_periods(f"last {unit}", today)[0].period
    return {"period": current, "comparison": Comparison(kind="period", period=previous_like(current)),
            "readings": [f"Read {current.label}, compared with {previous_like(current).label}."]}  # fmt: skip


def _horizon(text: str, periods: list[Reading], today: date) -> dict[str, Any]:
    """The future period a forecast is for; the trend is always fitted on the whole history."""
    if m := re.search(r"\bnext\s+(\d{1,3})\s+days\b", text):
        return {"horizon_days": int(m.group(1)), "period": None}
    if re.search(r"\bnext\s+month\b|\bend of (?:the )?month\b", text) or not periods:
        # The month after the one the data (or today) is in: with a log that ends on 30 Nov, December.
        last = today - timedelta(days=1)
        year, month = (last.year + 1, 1) if last.month == 12 else (last.year, last.month + 1)
        horizon = month_period(year, month, "next month")
        return {
            "horizon": horizon,
            "period": None,
            "readings": [f"Forecast for {horizon.label.split(' as ')[-1]}."],
        }
    if re.search(r"\bnext\s+week\b", text):
        return {"horizon_days": 7, "period": None}
    return {"horizon": periods[0].period, "period": None}


# --- follow-ups ----------------------------------------------------------------------------------------


def _previous(context: list[Turn] | None) -> QueryPlan | None:
    for turn in reversed(context or []):
        try:
            return QueryPlan.model_validate(turn.plan)
        except ValidationError:
            continue
    return None


def _is_follow_up(low: str, plan: QueryPlan, periods: list[Reading], mentions: list[Mention]) -> bool:
    if _FOLLOW_UP.search(low):
        return True
    words = re.findall(r"[a-z0-9]+", low)
    return len(words) <= 4 and plan.intent in ("total", "overview") and bool(periods or mentions)


def _follow(
    plan: QueryPlan,
    previous: QueryPlan,
    fields: dict[str, Any],
    low: str,
    periods: list[Reading],
    mentions: list[Mention],
    context: list[Turn],
) -> QueryPlan:
    asked = context[-1].question if context else ""
    update: dict[str, Any] = {"readings": [*plan.readings], "unknown": plan.unknown, "source": "built-in"}
    if _WHY.search(low):
        top = context[-1].top if context else None
        filtered = {f.dimension for f in previous.filters}
        if previous.intent == "breakdown" and top and previous.group_by == "day":
            start = datetime.fromisoformat(top).replace(tzinfo=UTC)
            update["period"] = Period(start=start, end=start + timedelta(days=1), label=f"'{top}' as {top}")
            update["top_n"] = None
            filtered = set()
        elif previous.intent == "breakdown" and top and previous.group_by in DIMENSION_COLUMNS:
            update["filters"] = [*previous.filters, Filter(dimension=previous.group_by, values=[top])]
            update["top_n"] = None
            filtered.add(previous.group_by)
        update["group_by"] = next(d for d in ("feature", "model", "user") if d not in filtered)
        if previous.intent not in ("compare", "anomalies"):
            update["intent"] = "breakdown"
        focus = f" (for {top})" if top and "top_n" in update else ""
        update["readings"].append(f"Read 'why?' as what drove the answer to '{asked[:80]}'{focus}: broken down by "
                                  f"{update['group_by']}.")  # fmt: skip
        return _merged(previous, update)
    own = plan.intent not in ("total", "overview") and not re.search(
        r"\bbreak (?:that|it|this|those) down\b", low
    )
    if own and plan.intent != previous.intent and plan.intent != "breakdown":
        return plan  # a new question in the same thread
    filters = {f.dimension: f for f in previous.filters}
    for f in plan.filters:
        filters[f.dimension] = f
    update["filters"] = list(filters.values())
    if plan.group_by and plan.group_by != previous.group_by:
        update["group_by"] = plan.group_by
        if previous.intent in ("total", "overview", "share"):
            update["intent"] = "breakdown"
    if plan.period is not None:
        update["period"] = plan.period
        if previous.comparison is not None and previous.comparison.kind == "period" and plan.period.start:
            update["comparison"] = Comparison(kind="period", period=previous_like(plan.period))
    if plan.scenario is not None:
        update["scenario"] = plan.scenario
        update["intent"] = "what_if"
    if plan.top_n:
        update["top_n"] = plan.top_n
    changed = [f"{f.dimension} {', '.join(f.values)}" for f in plan.filters] + (
        [plan.period.label] if plan.period is not None and plan.period.label else []
    )
    what = "; ".join(changed) or (f"by {plan.group_by}" if plan.group_by else "the change asked")
    update["readings"].append(f"A follow-up to '{asked[:80]}': the same question with {what}.")
    return _merged(previous, update)


def _merged(previous: QueryPlan, update: dict[str, Any]) -> QueryPlan:
    data = previous.model_dump()
    for key, value in update.items():
        data[key] = value.model_dump() if hasattr(value, "model_dump") else value
    data["filters"] = [f.model_dump() if isinstance(f, Filter) else f for f in data.get("filters", [])]
    data["unknown"] = [u.model_dump() if isinstance(u, UnknownName) else u for u in data.get("unknown", [])]
    try:
        return QueryPlan.model_validate(data)
    except ValidationError:
        return previous
