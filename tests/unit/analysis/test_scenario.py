"""`price_scenario` for every what-if kind, against the formulas of tests/support/evaluation.py computed in
plain Python over the generated rows."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterator
from typing import Any

import duckdb
import pytest
from generated_usage import BOOK, PRICES, Row, cost, generate, list_cost, select, span_days, spend, write
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tokenwise.analysis.plan import Filter, QueryPlan, Scenario
from tokenwise.analysis.scenario import price_scenario
from tokenwise.analysis.source import attach

ROWS = generate()


@pytest.fixture(scope="module")
def con(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    path = write(ROWS, tmp_path_factory.mktemp("usage") / "usage.parquet")
    with duckdb.connect() as connection:
        attach(connection, [path], BOOK)
        yield connection


def what_if(feature: str | None = None, **scenario: Any) -> QueryPlan:
    filters = [Filter(dimension="feature", values=[feature])] if feature else []
    return QueryPlan(intent="what_if", filters=filters, scenario=Scenario(**scenario))


def monthly(saving: float, scope: list[Row]) -> float:
    return saving * 30 / span_days(scope)


def priced(scope: list[Row]) -> list[Row]:
    return [r for r in scope if r["model"] in PRICES]


def route_saving(scope: list[Row], target: str) -> float:
    t = PRICES[target]
    return sum(
        cost(r) - list_cost(t, r["input_tokens"], r["cached_input_tokens"], r["output_tokens"])
        for r in scope
        if cost(r) is not None and r["model"] != target
    )


def check(con: duckdb.DuckDBPyConnection, plan: QueryPlan, scope: list[Row], saving: float) -> dict[str, Any]:
    result = price_scenario(con, plan, BOOK)
    assert result["empty"] is False
    assert result["saving_period_usd"] == pytest.approx(saving)
    assert result["saving_monthly_usd"] == pytest.approx(monthly(saving, scope))
    assert result["baseline_monthly_usd"] == pytest.approx(monthly(spend(scope), scope))
    assert result["saving_pct"] == pytest.approx(100 * saving / spend(scope))
    assert result["assumptions"], "every what-if states what it assumed"
    return result


def test_route_half_of_a_feature(con: duckdb.DuckDBPyConnection) -> None:
    scope = select(ROWS, feature="classifier")
    plan = what_if("classifier", kind="route", target_model="tiny-model", share_pct=50)
    check(con, plan, scope, 0.5 * route_saving(scope, "tiny-model"))


def test_route_to_a_model_already_in_the_scope_leaves_its_rows_alone(con: duckdb.DuckDBPyConnection) -> None:
    scope = select(ROWS, feature="assistant")
    result = check(
        con,
        what_if("assistant", kind="route", target_model="small-model"),
        scope,
        route_saving(scope, "small-model"),
    )
    assert result["excluded_requests"] == sum(cost(r) is None for r in scope) > 0


def test_route_the_short_requests(con: duckdb.DuckDBPyConnection) -> None:
    scope = select(ROWS, feature="summarizer")
    median = statistics.median(r["input_tokens"] + r["output_tokens"] for r in scope)
    short = [r for r in scope if r["input_tokens"] + r["output_tokens"] <= median]
    plan = what_if("summarizer", kind="route", target_model="tiny-model", condition="short")
    result = check(con, plan, scope, route_saving(short, "tiny-model"))
    assert result["short_threshold_tokens"] == pytest.approx(median)


def test_route_to_an_unpriced_model_says_so(con: duckdb.DuckDBPyConnection) -> None:
    result = price_scenario(con, what_if(kind="route", target_model="no-such-model"), BOOK)
    assert result["missing"] == "target_price"


@pytest.mark.parametrize("cap", [200, 800, 5_000])
def test_output_cap(con: duckdb.DuckDBPyConnection, cap: int) -> None:
    saving = (
        sum(max(0, r["output_tokens"] - cap) * PRICES[r["model"]].output_per_mtok for r in priced(ROWS)) / 1e6
    )
    check(con, what_if(kind="output_cap", max_output_tokens=cap), ROWS, saving)


def test_cache_hit_rate(con: duckdb.DuckDBPyConnection) -> None:
    scope = select(ROWS, feature="faq-bot")
    check(con, what_if("faq-bot", kind="cache_hit", hit_rate_pct=30), scope, 0.3 * spend(scope))


@pytest.mark.parametrize("prefix", [1024, 3000])
def test_prompt_cache_of_a_shared_prefix(con: duckdb.DuckDBPyConnection, prefix: int) -> None:
    def rate(r: Row) -> float:
        p = PRICES[r["model"]]
        cached = p.input_per_mtok if p.cached_input_per_mtok is None else p.cached_input_per_mtok
        return p.input_per_mtok - cached

    saving = sum(
        max(0, prefix - r["cached_input_tokens"]) * rate(r)
        for r in priced(ROWS)
        if r["input_tokens"] >= prefix
    )
    check(con, what_if(kind="prompt_cache", prefix_tokens=prefix), ROWS, saving / 1e6)


def test_batch_api(con: duckdb.DuckDBPyConnection) -> None:
    scope = select(ROWS, feature="summarizer")
    saving = sum(cost(r) * PRICES[r["model"]].batch_discount for r in priced(scope))
    result = check(con, what_if("summarizer", kind="batch"), scope, saving)
    mid = [r for r in scope if r["model"] not in PRICES or PRICES[r["model"]].batch_discount == 0]
    assert result["excluded_requests"] == len(mid) > 0  # mid-model has no batch API


@pytest.mark.parametrize("limit", [1_000, 4_000])
def test_trim_context(con: duckdb.DuckDBPyConnection, limit: int) -> None:
    def trimmed(r: Row) -> float:
        p, inp, cached, out = (
            PRICES[r["model"]],
            r["input_tokens"],
            r["cached_input_tokens"],
            r["output_tokens"],
        )
        return list_cost(p, inp, cached, out) - list_cost(p, min(inp, limit), min(cached, limit), out)

    check(
        con, what_if(kind="trim_context", max_input_tokens=limit), ROWS, sum(trimmed(r) for r in priced(ROWS))
    )


@pytest.mark.parametrize("change", [-20.0, 15.0])
def test_price_change_of_a_model(con: duckdb.DuckDBPyConnection, change: float) -> None:
    scope = select(ROWS, model="big-model")
    plan = QueryPlan(
        intent="what_if",
        filters=[Filter(dimension="model", values=["big-model"])],
        scenario=Scenario(kind="price_change", price_change_pct=change),
    )
    check(con, plan, scope, -change / 100 * spend(scope))


def test_traffic_growth_costs_extra(con: duckdb.DuckDBPyConnection) -> None:
    result = check(con, what_if(kind="growth", growth_pct=50), ROWS, -0.5 * spend(ROWS))
    assert result["new_monthly_usd"] == pytest.approx(1.5 * result["baseline_monthly_usd"])


def test_an_empty_scope_says_empty(con: duckdb.DuckDBPyConnection) -> None:
    assert (
        price_scenario(con, what_if("no-such-feature", kind="growth", growth_pct=10), BOOK)["empty"] is True
    )


SCENARIOS: dict[str, Callable[[int], dict[str, Any]]] = {
    "output_cap": lambda n: {"max_output_tokens": n},
    "trim_context": lambda n: {"max_input_tokens": n},
    "prompt_cache": lambda n: {"prefix_tokens": n},
    "route": lambda n: {"target_model": "tiny-model", "share_pct": 1 + n % 100},
}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    kind=st.sampled_from(sorted(SCENARIOS)),
    n=st.integers(1, 20_000),
    feature=st.sampled_from(["faq-bot", None]),
)
def test_no_saving_exceeds_the_scope_spend(
    con: duckdb.DuckDBPyConnection, kind: str, n: int, feature: str | None
) -> None:
    result = price_scenario(con, what_if(feature, kind=kind, **SCENARIOS[kind](n)), BOOK)
    assert 0 <= result["saving_period_usd"] <= result["baseline_period_usd"] + 1e-9
    assert result["new_monthly_usd"] >= -1e-9
