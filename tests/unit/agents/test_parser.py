"""The built-in parser: questions of every kind in issue 8 into the `QueryPlan` that answers them (follow-ups
in a thread: test_parser_follow_ups.py)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenwise.agents.understanding import Turn, parse
from tokenwise.agents.vocabulary import Vocabulary
from tokenwise.analysis.plan import QueryPlan

TODAY = date(2025, 12, 1)  # the day after a log that ends on 30 Nov 2025
VOCABULARY = Vocabulary(
    {
        "model": ["gpt-4o", "gpt-4o-mini", "claude-3-5-haiku"],
        "feature": ["faq-bot", "assistant", "classifier", "summarizer"],
        "user": ["u-1", "u-22", "alice"],
        "team": ["alpha", "platform"],
        "project": ["apollo", "zeus"],
        "api_key": ["key-prod", "key-dev"],
    },
    priced_models=["gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "claude-3-5-haiku", "claude-sonnet-4"],
)
LAST_WEEK = ("2025-11-24", "2025-12-01")
NOVEMBER = ("2025-11-01", "2025-12-01")
OCTOBER = ("2025-10-01", "2025-11-01")


def ask(question: str, context: list[Turn] | None = None) -> QueryPlan:
    return parse(question, VOCABULARY, TODAY, context or [])


def bounds(period: Any) -> tuple[str, str] | None:
    return None if period is None else (period.start.date().isoformat(), period.end.date().isoformat())


def view(plan: QueryPlan) -> dict[str, Any]:
    """The fields a test names, in a form a literal can state."""
    return {
        "intent": plan.intent,
        "measure": plan.measure,
        "filters": {f.dimension: f.values for f in plan.filters},
        "period": bounds(plan.period),
        "group_by": plan.group_by,
        "top_n": plan.top_n,
        "order": plan.order,
        "rank_by": plan.rank_by,
        "unit": plan.unit,
        "percentiles": plan.percentiles,
        "threshold": plan.threshold and plan.threshold.model_dump(),
        "scenario": plan.scenario and plan.scenario.model_dump(exclude_defaults=True),
        "compare_values": plan.comparison and plan.comparison.values,
        "compare_period": plan.comparison and bounds(plan.comparison.period),
        "horizon": bounds(plan.horizon),
        "horizon_days": plan.horizon_days,
        "unknown": [(u.text, u.dimension, u.suggestions[:1]) for u in plan.unknown],
        "unanswerable": plan.unanswerable,
        "reduction_pct": plan.reduction_pct,
    }


CASES: list[tuple[str, dict[str, Any]]] = [
    # totals with filters and periods
    (
        "How much did we spend yesterday?",
        {"intent": "total", "measure": "spend", "period": ("2025-11-30", "2025-12-01")},
    ),
    (
        "How many requests did faq-bot make on October 12?",
        {
            "intent": "total",
            "measure": "requests",
            "filters": {"feature": ["faq-bot"]},
            "period": ("2025-10-12", "2025-10-13"),
        },
    ),
    (
        "gpt-4o spend of the assistant feature last week",
        {"intent": "total", "filters": {"model": ["gpt-4o"], "feature": ["assistant"]}, "period": LAST_WEEK},
    ),
    ("How many errors in October?", {"intent": "total", "measure": "errors", "period": OCTOBER}),
    ("total tokens between 1 and 15 Nov", {"measure": "tokens", "period": ("2025-11-01", "2025-11-16")}),
    (
        "what is the error rate of faq-bot?",
        {"intent": "total", "measure": "error_rate", "filters": {"feature": ["faq-bot"]}},
    ),
    (
        "how much did alice spend since Nov 20?",
        {"filters": {"user": ["alice"]}, "period": ("2025-11-20", "2025-12-02")},
    ),
    ("GPT4O spend in the last 7 days", {"filters": {"model": ["gpt-4o"]}, "period": LAST_WEEK}),
    ("average daily spend in November", {"intent": "total", "unit": "day", "period": NOVEMBER}),
    # breakdowns, rankings, shares
    ("spend by model", {"intent": "breakdown", "group_by": "model", "top_n": None}),
    ("top 5 users by spend", {"intent": "breakdown", "group_by": "user", "top_n": 5, "order": "desc"}),
    (
        "bottom 3 features by requests",
        {"intent": "breakdown", "measure": "requests", "group_by": "feature", "top_n": 3, "order": "asc"},
    ),
    (
        "which team spent the most last month?",
        {"intent": "breakdown", "group_by": "team", "top_n": 1, "period": NOVEMBER},
    ),
    ("which day had the highest spend?", {"intent": "breakdown", "group_by": "day", "top_n": 1}),
    ("requests by weekday", {"intent": "breakdown", "measure": "requests", "group_by": "weekday"}),
    ("spend by api key", {"intent": "breakdown", "group_by": "api_key"}),
    ("spend of project apollo by team", {"group_by": "team", "filters": {"project": ["apollo"]}}),
    ("what share goes to gpt-4o?", {"intent": "share", "filters": {"model": ["gpt-4o"]}}),
    ("what percentage of requests are from faq-bot?", {"intent": "share", "measure": "requests"}),
    # the most expensive / slowest / largest requests
    (
        "our 3 most expensive requests",
        {"intent": "top_requests", "top_n": 3, "rank_by": "cost", "order": "desc"},
    ),
    (
        "the 10 slowest requests of faq-bot",
        {"intent": "top_requests", "top_n": 10, "rank_by": "latency_ms", "filters": {"feature": ["faq-bot"]}},
    ),
    ("largest requests by tokens", {"intent": "top_requests", "rank_by": "tokens"}),
    ("the cheapest 5 requests", {"intent": "top_requests", "top_n": 5, "order": "asc"}),
    # comparisons
    (
        "last week vs the week before",
        {"intent": "compare", "period": LAST_WEEK, "compare_period": ("2025-11-17", "2025-11-24")},
    ),
    ("month-over-month spend", {"intent": "compare", "period": NOVEMBER, "compare_period": OCTOBER}),
    (
        "compare October and November spend",
        {"intent": "compare", "period": NOVEMBER, "compare_period": OCTOBER},
    ),
    (
        "compare faq-bot and assistant spend",
        {"intent": "compare", "compare_values": ["faq-bot", "assistant"], "filters": {}},
    ),
    (
        "gpt-4o vs gpt-4o-mini requests in October",
        {
            "intent": "compare",
            "measure": "requests",
            "compare_values": ["gpt-4o", "gpt-4o-mini"],
            "period": OCTOBER,
        },
    ),
    # trends and forecasts
    ("daily spend trend", {"intent": "trend", "group_by": "day"}),
    ("hourly requests yesterday", {"intent": "trend", "measure": "requests", "group_by": "hour"}),
    ("forecast next month", {"intent": "forecast", "horizon": ("2025-12-01", "2026-01-01"), "period": None}),
    ("forecast spend for the next 14 days", {"intent": "forecast", "horizon_days": 14}),
    # unit economics
    ("cost per request", {"intent": "unit_cost", "unit": "request"}),
    (
        "cost per 1k requests of faq-bot",
        {"intent": "unit_cost", "unit": "1k_requests", "filters": {"feature": ["faq-bot"]}},
    ),
    ("cost per user", {"intent": "unit_cost", "unit": "user"}),
    ("cost per feature", {"intent": "unit_cost", "unit": "feature"}),
    ("cost per 1M tokens by model", {"intent": "unit_cost", "unit": "1m_tokens", "group_by": "model"}),
    # percentiles and SLOs
    ("p95 latency", {"intent": "percentiles", "measure": "latency_ms", "percentiles": [95.0]}),
    (
        "median and p99 latency by model",
        {"intent": "percentiles", "percentiles": [50.0, 99.0], "group_by": "model"},
    ),
    ("p50 output tokens by feature", {"intent": "percentiles", "measure": "output_tokens"}),
    (
        "how many requests over 2 s?",
        {"intent": "slo", "threshold": {"measure": "latency_ms", "op": ">", "value": 2000.0}},
    ),
    (
        "how many requests took longer than 500 ms last week?",
        {
            "intent": "slo",
            "threshold": {"measure": "latency_ms", "op": ">", "value": 500.0},
            "period": LAST_WEEK,
        },
    ),
    (
        "how many requests had more than 8000 input tokens?",
        {"intent": "slo", "threshold": {"measure": "input_tokens", "op": ">", "value": 8000.0}},
    ),
    # what-ifs
    (
        "What would moving half the classifier traffic to gpt-4o-mini save?",
        {
            "intent": "what_if",
            "filters": {"feature": ["classifier"]},
            "scenario": {"kind": "route", "share_pct": 50.0, "target_model": "gpt-4o-mini"},
        },
    ),
    (
        "switch all gpt-4o traffic to gpt-4o-mini",
        {"filters": {"model": ["gpt-4o"]}, "scenario": {"kind": "route", "target_model": "gpt-4o-mini"}},
    ),
    (
        "move 25% of assistant to claude-3-5-haiku",
        {"scenario": {"kind": "route", "share_pct": 25.0, "target_model": "claude-3-5-haiku"}},
    ),
    (
        "what if we cap output at 500 tokens?",
        {"intent": "what_if", "scenario": {"kind": "output_cap", "max_output_tokens": 500}},
    ),
    (
        "cap responses at 300 tokens for the assistant",
        {"filters": {"feature": ["assistant"]}, "scenario": {"kind": "output_cap", "max_output_tokens": 300}},
    ),
    ("what if we had a 30% cache hit rate?", {"scenario": {"kind": "cache_hit", "hit_rate_pct": 30.0}}),
    (
        "what if we use prompt caching for a 2000-token shared prefix?",
        {"scenario": {"kind": "prompt_cache", "prefix_tokens": 2000}},
    ),
    (
        "what if we move faq-bot to the batch API?",
        {"filters": {"feature": ["faq-bot"]}, "scenario": {"kind": "batch"}},
    ),
    (
        "what if we trim context to 4000 tokens?",
        {"scenario": {"kind": "trim_context", "max_input_tokens": 4000}},
    ),
    (
        "what if gpt-4o prices drop by 20%?",
        {"filters": {"model": ["gpt-4o"]}, "scenario": {"kind": "price_change", "price_change_pct": -20.0}},
    ),
    ("what if prices increase 10%?", {"scenario": {"kind": "price_change", "price_change_pct": 10.0}}),
    ("what if traffic grows by 50%?", {"scenario": {"kind": "growth", "growth_pct": 50.0}}),
    ("what if usage doubles?", {"scenario": {"kind": "growth", "growth_pct": 100.0}}),
    # capacity, anomalies, optimisation
    ("what is our peak tokens per second?", {"intent": "capacity"}),
    ("requests per second at peak for faq-bot", {"intent": "capacity", "filters": {"feature": ["faq-bot"]}}),
    ("were there any anomalies in spend?", {"intent": "anomalies", "measure": "spend"}),
    ("any unusual days in error rate?", {"intent": "anomalies", "measure": "error_rate"}),
    ("how do we cut costs by 30%?", {"intent": "optimize", "reduction_pct": 30.0}),
    # unknown names and what usage data cannot answer
    ("spend of chatbot-x feature", {"unknown": [("chatbot-x", "feature", ["faq-bot"])]}),
    ("spend on gpt-5", {"unknown": [("gpt-5", "model", ["gpt-4o"])]}),
    # a family named without a version means every model of it in the data; one not in it is unknown
    ("how much did we spend on claude models?", {"filters": {"model": ["claude-3-5-haiku"]}, "unknown": []}),
    ("gpt spend last week", {"filters": {"model": ["gpt-4o", "gpt-4o-mini"]}, "period": LAST_WEEK}),
    ("gemini spend", {"filters": {}, "unknown": [("gemini", "model", ["gpt-4o-mini"])]}),
    ("which model is slowest?", {"intent": "percentiles", "measure": "latency_ms", "group_by": "model"}),
    (
        "what is our carbon footprint and total spend?",
        {"intent": "total", "unanswerable": ["carbon footprint"]},
    ),
]


@pytest.mark.parametrize(("question", "expected"), CASES, ids=[q for q, _ in CASES])
def test_question_to_plan(question: str, expected: dict[str, Any]) -> None:
    got = view(ask(question))
    assert {k: got[k] for k in expected} == expected


# Once misread (how, in the middle), now read right.
MISREADINGS = [
    (
        "Spend in the last 30 days excluding faq-bot",
        "'excluding' is ignored: the filter keeps faq-bot",
        lambda p: p.filters[0].exclude is True,
    ),
    (
        "how many failed requests yesterday?",
        "'failed requests' counts requests, not errors",
        lambda p: p.measure == "errors",
    ),
    (
        "spend of team alpha vs team platform",
        "'vs team' makes 'vs' an unknown team",
        lambda p: p.unknown == [],
    ),
    (
        "what if we route the short requests of assistant to gpt-4.1-mini?",
        "a route target from the price book (not in the data) is reported as an unknown model",
        lambda p: p.unknown == [] and p.scenario is not None,
    ),
    (
        "What would it cost if we serve 40% of faq-bot from cache?",
        "'serve ... from cache' is not a cache what-if",
        lambda p: p.scenario is not None and p.scenario.kind == "cache_hit",
    ),
    ("spend on 2025-02-30", "an impossible date raises ValueError out of parse", lambda p: p.period is None),
]


@pytest.mark.parametrize(
    ("question", "holds"),
    [pytest.param(q, h, id=q) for q, _was, h in MISREADINGS],
)
def test_once_misread_questions_are_read_right(question: str, holds: Any) -> None:
    assert holds(ask(question))


def test_readings_say_how_periods_were_read() -> None:
    assert any("24\u201330 Nov 2025" in r for r in ask("spend last week").readings)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_text_gives_a_valid_plan(text: str) -> None:
    plan = ask(text)
    assert QueryPlan.model_validate(plan.model_dump()) == plan
