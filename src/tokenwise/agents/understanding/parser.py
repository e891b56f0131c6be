"""The built-in understanding of this domain's questions: a question (and its thread's earlier plans) into
a `QueryPlan`, with no language model.

It reads periods (`calendar`), names from the user's data (`vocabulary`), numbers, percentages and the
words that say what is asked (a total, a ranking, a comparison, a what-if, ...). Whatever it had to guess
is written into the plan's `readings`, so the answer can say how the question was read.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from tokenwise.agents.calendar import Reading, month_period, previous_like, read_periods
from tokenwise.agents.understanding.follow_ups import Turn, follow, is_follow_up, previous_plan
from tokenwise.agents.understanding.scenarios import scenario
from tokenwise.agents.understanding.words import (
    BY_MEASURE,
    DIMENSION_WORDS,
    GROUP_PATTERNS,
    HOW_MANY,
    MEASURES,
    MODEL_LIKE,
    NAMED,
    NAMED_DIMENSIONS,
    NUM,
    PATTERNS,
    PCT,
    STOP,
    UNSUPPORTED,
    number,
)
from tokenwise.agents.vocabulary import Mention, Vocabulary
from tokenwise.analysis.plan import Comparison, Filter, QueryPlan, Threshold, UnknownName


def parse(question: str, vocabulary: Vocabulary, today: date, context: list[Turn] | None = None) -> QueryPlan:
    """The plan for `question`, read against the user's names, `today`, and the thread's earlier turns."""
    text = " ".join(question.split())
    low = text.lower()
    periods = read_periods(text, today)
    masked = _mask(low, [r.span for r in periods])
    mentions = vocabulary.mentions(masked)
    taken = [m.span for m in mentions]
    mentions += [
        m for m in vocabulary.family(masked) if not any(a < m.span[1] and m.span[0] < b for a, b in taken)
    ]
    fields: dict[str, Any] = {}
    readings = [f"Read {r.period.label}." for r in periods if r.period.label]

    what_if, target = scenario(masked, mentions)
    mentions = [m for m in mentions if m is not target]
    target_span = (target.span,) if target is not None else ()
    filters, unknown, compared = _filters(masked, mentions, vocabulary, target_span)
    intent = "what_if" if what_if is not None else _intent(masked, compared, periods)
    measure = _measure(masked, intent)
    group_by = _group_by(masked)
    top_n, order = _top(masked)
    fields.update(intent=intent, measure=measure, filters=filters, unknown=unknown, readings=readings)
    fields["unanswerable"] = list(dict.fromkeys(m.group(0) for m in UNSUPPORTED.finditer(masked)))[:5]

    if what_if is not None:
        fields["scenario"] = what_if
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
        if not top_n and not re.search(r"\b(requests|calls|prompts|completions|responses|queries)\b", masked):
            top_n = 1  # "the most expensive request": one
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
    if top_n and intent != "forecast":
        fields["top_n"] = top_n
    fields["order"] = order

    plan = _build(fields)
    previous = previous_plan(context)
    if previous is not None and is_follow_up(low, plan, periods, mentions):
        plan = follow(plan, previous, fields, low, periods, mentions, context or [])
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


def _build(fields: dict[str, Any]) -> QueryPlan:
    try:
        return QueryPlan(**fields)
    except ValidationError:
        # A combination the schema refuses (e.g. a comparison without its other side): the plain reading.
        kept = {
            k: fields[k]
            for k in ("measure", "filters", "period", "readings", "unknown", "unanswerable")
            if k in fields
        }
        return QueryPlan(intent="total", **kept)


_EXCLUDING = re.compile(
    r"\b(?:excluding|except(?: for)?|other than|without|apart from|besides|but not|not)\s+"
    r"(?:the\s+)?(?:[\w-]+\s+)?$"
)


def _filters(
    text: str, mentions: list[Mention], vocabulary: Vocabulary, spoken_for: tuple[tuple[int, int], ...] = ()
) -> tuple[list[Filter], list[UnknownName], list[Mention]]:
    by_dimension: dict[tuple[str, bool], list[str]] = {}
    unknown: list[UnknownName] = []
    for m in mentions:
        if m.dimension == "priced_model":
            unknown.append(
                UnknownName(text=m.value, dimension="model", suggestions=vocabulary.suggest(m.value, "model"))
            )
            continue
        left_out = _EXCLUDING.search(text[max(0, m.span[0] - 30) : m.span[0]]) is not None
        values = by_dimension.setdefault((m.dimension, left_out), [])
        if m.value not in values:
            values.append(m.value)
    taken = [m.span for m in mentions] + list(spoken_for)
    named = [m for pattern in NAMED for m in pattern.finditer(text)]
    for match in named:
        word, kind, span = match.group("word"), match.group("kind"), match.span("word")
        if any(u.text == word for u in unknown):
            continue
        if word in STOP or any(a < span[1] and span[0] < b for a, b in taken) or word.isdigit():
            continue
        dimension = NAMED_DIMENSIONS.get(kind, kind)
        if vocabulary.known(dimension, word) is None:
            unknown.append(
                UnknownName(text=word, dimension=dimension, suggestions=vocabulary.suggest(word, dimension))
            )
    for match in MODEL_LIKE.finditer(text):
        span = match.span(1)
        if any(a < span[1] and span[0] < b for a, b in taken) or vocabulary.known("model", match.group(1)):
            continue
        if not any(u.text == match.group(1) for u in unknown):
            unknown.append(UnknownName(text=match.group(1), dimension="model",
                                       suggestions=vocabulary.suggest(match.group(1), "model")))  # fmt: skip
    compared: list[Mention] = []
    for (dimension, left_out), values in by_dimension.items():
        if len(values) >= 2 and not left_out and PATTERNS["compare"].search(text):
            compared = [m for m in mentions if m.dimension == dimension]
    filters = [
        Filter.model_validate({"dimension": d, "values": v, "exclude": left_out})
        for (d, left_out), v in by_dimension.items()
        if not compared or d != compared[0].dimension or left_out
    ]
    return filters, unknown[:10], compared


def _intent(text: str, compared: list[Mention], periods: list[Reading]) -> str:
    p = PATTERNS
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
        re.search(
            r"\b(week[- ]over[- ]week|month[- ]over[- ]month|year[- ]over[- ]year|wow|mom|last|previous|"
            r"before|change)\b",
            text,
        )
    )


def _measure(text: str, intent: str) -> str:
    if intent in ("percentiles",) and not re.search(r"\btokens?\b", text):
        return "latency_ms"
    if (
        re.search(r"\bcost\w*\s+(?:us\s+)?per\s+(?:request|call)\b|\b(?:request|call)\s+costs?\b", text)
        and intent != "unit_cost"
    ):
        return "cost_per_request"
    for name in ("error_rate", "cached_input_tokens", "input_tokens", "output_tokens"):
        if dict(MEASURES)[name].search(text):
            return name
    if by := BY_MEASURE.search(text):
        word = by.group(1)
        return {"cost": "spend", "calls": "requests", "volume": "requests", "traffic": "requests"}.get(
            word, word if word in ("spend", "requests", "tokens", "errors") else "spend"
        )
    if re.search(r"\bhow many\s+(?:failed|failing|errored|erroring|unsuccessful)\b", text):
        return "errors"
    if many := HOW_MANY.search(text):
        word = many.group(1)
        for name, pattern in MEASURES:
            if pattern.search(word):
                return name
    for name, pattern in MEASURES:
        if pattern.search(text):
            if name == "requests" and MEASURES[6][1].search(text):
                return "spend"
            return name
    if intent in ("percentiles", "slo"):
        return "latency_ms"
    return "spend"


def _group_by(text: str) -> str | None:
    for pattern in GROUP_PATTERNS:
        for match in pattern.finditer(text):
            for name in DIMENSION_WORDS:
                if match.groupdict().get(name):
                    if name == "day" and re.search(r"\bper day\b|\bby day\b|\beach day\b", match.group(0)):
                        return "day"
                    return name
    if re.search(r"\b(daily|each day|every day|per day|day by day)\b", text):
        return "day"
    if re.search(r"\b(hourly|each hour|by the hour)\b", text):
        return "hour"
    return None


_WHICH_MOST = (
    r"\bwhich\s+(?:[\w-]+\s+){0,6}?(?:highest|most|biggest|largest|top|lowest|least|fewest|busiest|"
    r"costliest|priciest|cheapest)\b"
)


def _top(text: str) -> tuple[int | None, str]:
    order = "asc" if re.search(r"\b(bottom|least|cheapest|fewest|lowest|smallest)\b", text) else "desc"
    match = re.search(
        rf"\b(?:top|bottom|first|the)\s+{NUM}\b|\b{NUM}\s+(?:most|least|largest|biggest|smallest|cheapest|"
        r"slowest|costliest|priciest|heaviest|top|expensive|busiest|users|features|models|teams|"
        r"projects|keys|"
        r"api keys|requests|calls|days|hours|customers)\b",
        text,
    )
    if match:
        raw = match.group(1) or match.group(2)
        value = int(number(raw))
        if 1 <= value <= 100:
            return value, order
    if re.search(_WHICH_MOST, text):
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
        latency = re.search(rf"\b{words}\s*{NUM}\s*(ms|milliseconds?|s|secs?|seconds?)\b", text)
        if latency:
            value = number(latency.group(2))
            ms = value if latency.group(3).startswith("m") else value * 1000
            return Threshold(measure="latency_ms", op=op, value=ms)
        tokens = re.search(rf"\b{words}\s*{NUM}\s*(input |output |prompt |completion )?tokens\b", text)
        if tokens and not re.search(r"\b(cap|limit|trim|truncat)", text):
            kind = (
                "output_tokens"
                if (tokens.group(3) or "").strip() in ("output", "completion")
                else "input_tokens"
            )
            return Threshold(measure=kind, op=op, value=number(tokens.group(2)))
    return None


def _percentiles(text: str) -> list[float]:
    found = [float(p) for p in re.findall(r"\bp(\d{2}(?:\.\d)?)\b", text) if 0 < float(p) < 100]
    if re.search(r"\bmedian\b", text):
        found.insert(0, 50.0)
    return sorted(set(found))


def _unit(text: str) -> str:
    if re.search(
        r"\b(?:average|mean)\s+(?:daily|per day|a day)\b|\bdaily average\b|\bper day on average\b", text
    ):
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
    target = (
        rf"\b(?:by|cut|reduce|lower|save)\w*\s+(?:\w+\s+){{0,4}}?{PCT}|"
        rf"{PCT}\s+(?:\w+\s+){{0,2}}?(?:reduction|cut|savings|cheaper|lower|less)"
    )
    if pct := re.search(target, text):
        value = float(pct.group(1) or pct.group(2))
        if 0 < value <= 100:
            out["reduction_pct"] = value
    if budget := re.search(r"\$\s?(\d[\d,]*(?:\.\d+)?)\s*(k\b)?", text):
        amount = float(budget.group(1).replace(",", "")) * (1000 if budget.group(2) else 1)
        if amount > 0:
            out["budget_usd"] = amount
    return out


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _comparison(text: str, periods: list[Reading], compared: list[Mention], today: date) -> dict[str, Any]:
    if compared:
        values = list(dict.fromkeys(m.value for m in compared))
        return {"comparison": Comparison(kind="values", dimension=compared[0].dimension, values=values)}
    if len(periods) >= 2:
        later, earlier = sorted(
            (r.period for r in periods), key=lambda p: p.start or p.end or _EPOCH, reverse=True
        )[:2]
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
