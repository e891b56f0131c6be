"""Follow-ups in a thread: the previous question's plan with the change the follow-up names."""

from __future__ import annotations

from datetime import date

from tokenwise.agents.understanding import Turn, parse
from tokenwise.agents.vocabulary import Vocabulary
from tokenwise.analysis.plan import QueryPlan

TODAY = date(2025, 12, 1)
VOCABULARY = Vocabulary(
    {"model": ["gpt-4o", "gpt-4o-mini"], "feature": ["faq-bot", "assistant", "classifier"], "user": ["u-1"]},
    priced_models=["gpt-4o", "gpt-4o-mini"],
)
LAST_WEEK = ("2025-11-24", "2025-12-01")
NOVEMBER = ("2025-11-01", "2025-12-01")
OCTOBER = ("2025-10-01", "2025-11-01")


def ask(question: str, context: list[Turn] | None = None) -> QueryPlan:
    return parse(question, VOCABULARY, TODAY, context or [])


def view(plan: QueryPlan) -> dict[str, object]:
    def bounds(p: object) -> tuple[str, str] | None:
        return None if p is None else (p.start.date().isoformat(), p.end.date().isoformat())  # type: ignore[attr-defined]

    return {
        "intent": plan.intent,
        "filters": {f.dimension: f.values for f in plan.filters},
        "period": bounds(plan.period),
        "group_by": plan.group_by,
        "scenario": plan.scenario and plan.scenario.model_dump(exclude_defaults=True),
        "compare_period": plan.comparison and bounds(plan.comparison.period),
    }


def thread(*turns: tuple[str, str | None]) -> list[Turn]:
    context: list[Turn] = []
    for question, top in turns:
        context.append(Turn(question, ask(question, context).model_dump(mode="json"), top))
    return context


def test_and_for_another_value_keeps_the_question() -> None:
    context = thread(("How much did assistant spend last week?", None))
    plan = view(ask("and for faq-bot?", context))
    assert (plan["intent"], plan["filters"], plan["period"]) == ("total", {"feature": ["faq-bot"]}, LAST_WEEK)
    what_if = thread(("What would moving half the classifier traffic to gpt-4o-mini save?", None))
    again = view(ask("and for faq-bot?", what_if))
    assert again["scenario"] == {"kind": "route", "share_pct": 50.0, "target_model": "gpt-4o-mini"}
    assert again["filters"] == {"feature": ["faq-bot"]}


def test_what_about_another_period() -> None:
    plan = view(ask("what about last month?", thread(("spend of faq-bot last week", None))))
    assert (plan["filters"], plan["period"]) == ({"feature": ["faq-bot"]}, NOVEMBER)
    compared = view(ask("what about last month?", thread(("last week vs the week before", None))))
    assert (compared["intent"], compared["period"], compared["compare_period"]) == (
        "compare",
        NOVEMBER,
        OCTOBER,
    )


def test_break_that_down() -> None:
    plan = view(ask("break that down by user", thread(("spend of faq-bot last month", None))))
    assert (plan["intent"], plan["group_by"], plan["filters"]) == (
        "breakdown",
        "user",
        {"feature": ["faq-bot"]},
    )
    assert plan["period"] == NOVEMBER


def test_why_looks_into_the_top_row() -> None:
    day = view(ask("why?", thread(("which day had the highest spend?", "2025-11-12"))))
    assert (day["intent"], day["period"], day["group_by"]) == (
        "breakdown",
        ("2025-11-12", "2025-11-13"),
        "feature",
    )
    top = view(ask("why?", thread(("top 3 features by spend", "faq-bot"))))
    assert (top["filters"], top["group_by"]) == ({"feature": ["faq-bot"]}, "model")


def test_a_new_question_in_a_thread_is_not_a_follow_up() -> None:
    plan = view(ask("p95 latency", thread(("spend of faq-bot last week", None))))
    assert (plan["intent"], plan["filters"], plan["period"]) == ("percentiles", {}, None)


def test_a_follow_up_says_how_it_was_read() -> None:
    plan = ask("and for faq-bot?", thread(("How much did assistant spend last week?", None)))
    assert any("follow-up" in r.lower() and "faq-bot" in r for r in plan.readings)


def test_without_a_thread_a_follow_up_is_read_on_its_own() -> None:
    plan = view(ask("and for faq-bot?"))
    assert plan["intent"] in ("total", "overview")
    assert (plan["filters"], plan["period"]) == ({"feature": ["faq-bot"]}, None)
