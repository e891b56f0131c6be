"""The words of this domain's questions, as patterns: numbers, percentages, dimensions, what is asked."""

from __future__ import annotations

import re

NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
                 "nine": 9, "ten": 10, "twenty": 20}  # fmt: skip

NUM = r"(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?|" + "|".join(NUMBER_WORDS) + r")"

PCT = r"(\d{1,3}(?:\.\d+)?)\s*(?:%|percent\b|per cent\b)"

DIMENSION_WORDS: dict[str, str] = {
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

GROUP_WORD = "|".join(f"(?P<{k}>{v})" for k, v in DIMENSION_WORDS.items())

GROUP_PATTERNS = (
    re.compile(
        rf"\b(?:by|per|for each|for every|each|across|grouped by|group by)\s+(?:the\s+)?(?:{GROUP_WORD})\b"
    ),
    re.compile(rf"\bwhich\s+(?:{GROUP_WORD})\b"),
    re.compile(rf"\b(?:top|bottom|first|largest|biggest|smallest|least|most|cheapest|heaviest|priciest)\s+"
               rf"(?:{NUM}\s+)?(?:{GROUP_WORD})\b"),
    re.compile(rf"\b{NUM}\s+(?:most\s+expensive\s+|biggest\s+|largest\s+|top\s+|heaviest\s+|cheapest\s+)?"
               rf"(?:{GROUP_WORD})\s+(?:by|with|that|who|ranked)\b"),
    re.compile(rf"\b(?:{GROUP_WORD})\s+(?:by|ranked by|sorted by)\s+(?:spend|cost|requests|tokens|errors)\b"),
    re.compile(rf"\b(?:{GROUP_WORD})\s+(?:spend|spent|spends|cost|costs|use|used|make|made)\s+the\s+most\b"),
)  # fmt: skip

WHAT_IF = re.compile(
    r"\b(what if|what would|would it|would we|would that|how much (?:would|could|can|will|do) we|"
    r"if we|suppose|"
    r"imagine|hypothetical|scenario|what happens|could we save|can we save|save if|cost if)\b"
)

ROUTE_VERB = re.compile(
    r"\b(move|moving|moved|route|routing|routed|switch|switching|switched|send|sending|shift|shifting|"
    r"migrate|"
    r"migrating|use|used|using|downgrade|downgrading|replace|replacing|put|swap|swapping|serve|serving)\b"
)

PATTERNS = {
    "forecast": re.compile(
        r"\b(forecast\w*|predict\w*|projection|projected\s+(?:spend|cost)|expect(?:ed)?\s+to\s+(?:spend|pay)|"
        r"next\s+(?:month|week|quarter|year|\d+\s+days)|run[- ]rate|end of (?:the )?month|will we spend)\b"
    ),
    "anomalies": re.compile(
        r"\b(anomal\w*|unusual\w*|spikes?|spiked|spiking|stands? out|stood out|outliers?|abnormal\w*|"
        r"odd|weird|"
        r"strange|surges?|jumps?|jumped)\b"
    ),
    "top_requests": re.compile(
        r"\b(most expensive|costliest|priciest|slowest|largest|biggest|longest|heaviest|cheapest|"
        r"fastest|smallest)"
        r"\s+(?:\d+\s+|"
        + "|".join(NUMBER_WORDS)
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
        r"\b(vs\.?|versus|compared? (?:to|with)|compare|comparison|week[- ]over[- ]week|"
        r"month[- ]over[- ]month|"
        r"year[- ]over[- ]year|wow|mom|difference between|than (?:last|the previous|the week before|"
        r"the month before)|"
        r"change(?:d)? (?:from|since|between)|against)\b"
    ),
    "unit_cost": re.compile(
        r"\b(?:cost|spend|price|pay)\s+(?:us\s+)?per\s+(?:request|call|1k|1,000|thousand|user|feature|"
        r"1m|million|"
        r"token|customer)|\bunit (?:cost|economics)|\baverage (?:cost|spend)\b|\bcost of (?:a|one|"
        r"each) (?:request|call)\b"
        r"|\bcosts?\s+(?:us\s+)?on average\b|\bon average\b.*\bcosts?\b"
    ),
    "percentiles": re.compile(
        r"\b(p\d{2}(?:\.\d)?|median|percentiles?|latency|latencies|response times?|how (?:slow|fast)|"
        r"slowest|fastest|quickest)\b"
    ),
    "share": re.compile(
        r"\b(share|what percent(?:age)?|which percent(?:age)?|what fraction|proportion|"
        r"how much of (?:the|our) "
        r"(?:total|spend)|% of (?:the )?(?:total|spend|requests|traffic))\b"
    ),
    "trend": re.compile(
        r"\b(trends?|trending|over time|time series|daily|hourly|per day|each day|by day|day by day|"
        r"evolution|"
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

MEASURES = (
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

BY_MEASURE = re.compile(r"\bby\s+(spend|cost|requests|calls|tokens|errors|volume|traffic)\b")

HOW_MANY = re.compile(
    r"\bhow many\s+(?:\w+\s+)?(requests?|calls?|tokens?|errors?|failures?|input tokens|output tokens)\b"
)

FOLLOW_UP = re.compile(
    r"^\s*(?:and|what about|how about|and for|same for|now|also|then|ok|okay|what of|but|only|just|"
    r"break (?:that|it|this|those) down|why|how come|what caused|what drove|and why)\b"
)

WHY = re.compile(r"^\s*(?:and\s+)?(?:why|how come|what caused|what drove|what explains|what is behind)\b")

# Words that are never a name from the data, even next to "feature" or "model".
STOP = frozenset(
    (
        "the this that each every which what per by a an our my your all any one same top most new "
        "cheaper expensive other different largest biggest whole single of for and or to in on with "
        "cheapest its their his her least slowest many much how is are was did do does total spend cost "
        "requests tokens errors latency over under these those some no not than from between as at we us "
        "i me vs versus"
    ).split()
)

NAMED = (
    re.compile(
        r"\b(?:the\s+)?(?P<word>[a-z0-9][\w.:-]*[a-z0-9])\s+(?P<kind>feature|model|team|project|user|"
        r"api key|key|customer)\b"
    ),
    # after the kind, only what looks like an identifier ("user u-99", not "user made")
    re.compile(
        r"\b(?P<kind>feature|model|team|project|user|api key|customer)\s+"
        r"(?P<word>[a-z0-9]*[\d_.:-][\w.:-]*[a-z0-9])\b"
    ),
)

UNSUPPORTED = re.compile(
    r"\b(carbon(?: footprint)?|co2|emissions?|energy|electricity|revenue|profit|margin|satisfaction|nps|"
    r"accuracy|hallucinat\w*|quality score|sentiment|gpu utili[sz]ation|headcount)\b"
)

MODEL_LIKE = re.compile(
    r"\b((?:gpt|claude|gemini|llama|mistral|command|deepseek|qwen|mixtral)(?:[\w.:-]*[a-z0-9])?"
    r"|o[134](?:[\w.:-]*[a-z0-9])?)\b"
)

NAMED_DIMENSIONS = {"api key": "api_key", "key": "api_key", "customer": "user"}


def number(raw: str) -> float:
    return float(NUMBER_WORDS[raw]) if raw in NUMBER_WORDS else float(raw.replace(",", ""))
