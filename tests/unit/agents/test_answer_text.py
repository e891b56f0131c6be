"""How answers write figures, and that the text of an answer states the figures it reports (and no others)."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokenwise.agents.answers import write
from tokenwise.agents.figures import count, fmt, pct, usd
from tokenwise.analysis import ModelPrice, PriceTable
from tokenwise.analysis.plan import Comparison, Filter, Period, QueryPlan, Scenario, Threshold
from tokenwise.analysis.query import execute
from tokenwise.analysis.scenario import price_scenario
from tokenwise.analysis.source import attach
from tokenwise.usage.schema import COLUMNS

BOOK = PriceTable([ModelPrice("big", 2.5, 10.0, 1.25, 0.5), ModelPrice("small", 0.15, 0.6, 0.075, 0.5)])


@pytest.mark.parametrize(
    ("value", "written"),
    [
        (1234.5, "$1,234.50"),
        (1, "$1.00"),
        (0, "$0.00"),
        (0.5, "$0.5000"),
        (0.000345, "$0.000345"),
        (0.0123456, "$0.0123"),
        (-0.25, "-$0.2500"),
        (-1500, "-$1,500.00"),
        (None, "unknown"),
    ],
)
def test_usd(value: float | None, written: str) -> None:
    assert usd(value) == written


@pytest.mark.parametrize(
    ("value", "written"),
    [
        (12.34, "12.3%"),
        (3.214, "3.21%"),
        (0.45, "0.450%"),
        (0.0001234, "0.000123%"),
        (0, "0.0%"),
        (100, "100.0%"),
        (-4.5, "-4.50%"),
        (None, "unknown"),
    ],
)
def test_pct(value: float | None, written: str) -> None:
    assert pct(value) == written


@pytest.mark.parametrize(
    ("value", "unit", "written"),
    [
        (1234.5, "usd", "$1,234.50"),
        (99.5, "usd_per_month", "$99.50 a month"),
        (0.00123, "usd_per_request", "$0.00123"),
        (12.34, "pct", "12.3%"),
        (1234.4, "ms", "1,234 ms"),
        (3.14159, "requests_per_s", "3.14"),
        (12_345.6, "tokens_per_s", "12,346"),
        (12_345.6, "tokens", "12,346"),
        (None, "usd", "unknown"),
    ],
)
def test_fmt_by_unit(value: float | None, unit: str, written: str) -> None:
    assert fmt(value, unit) == written


def number(text: str) -> float:
    return float(text.replace("$", "").replace(",", "").replace("%", ""))


def significant(text: str) -> int:
    return len(text.replace("$", "").replace("-", "").replace("%", "").replace(".", "").lstrip("0"))


@given(st.floats(1e-7, 0.9999, allow_nan=False))
def test_small_dollars_keep_three_significant_digits(value: float) -> None:
    written = usd(value)
    assert significant(written) >= 3
    assert number(written) == pytest.approx(value, rel=5e-3)


@given(st.floats(1e-6, 9.99, allow_nan=False))
def test_percents_under_ten_keep_three_significant_digits(value: float) -> None:
    written = pct(value)
    assert significant(written) >= 3
    assert number(written) == pytest.approx(value, rel=5e-3)


@given(st.floats(-1e9, 1e9, allow_nan=False))
def test_every_written_figure_is_within_half_its_last_digit(value: float) -> None:
    for written in (usd(value), count(value)):
        assert abs(number(written) - value) <= half_unit(written) + 1e-9 * abs(value)


# --- the text of an answer holds its figures ----------------------------------------------------------

NUMBER = re.compile(r"-?\$?\d[\d,]*(?:\.\d+)?%?")
START = datetime(2025, 11, 1)


def half_unit(written: str) -> float:
    decimals = written.split(".")[1].rstrip("%") if "." in written else ""
    return 0.5 * 10 ** -len(re.sub(r"\D.*", "", decimals)) if decimals else 0.5


def numbers_in(text: str) -> list[str]:
    # dates (2025-11-03, the day ranges of labels) and request ids are words, not figures
    text = re.sub(r"\b\d{4}-\d\d-\d\d(?: \d\d:\d\d)?\b|\breq-\d+\b|\bp\d\d\b", " ", text)
    return [m.group(0) for m in NUMBER.finditer(text)]


def stated(text: str, value: float) -> bool:
    return any(abs(abs(number(n)) - abs(value)) <= half_unit(n) + 1e-9 for n in numbers_in(text))


@pytest.fixture(scope="module")
def con(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    rng = random.Random(3)
    rows = [
        (
            START + timedelta(seconds=rng.randrange(14 * 86400)),
            rng.choice(["big", "small"]),
            rng.randint(100, 9000),
            rng.randint(10, 900),
            rng.choice([0, 512]),
            rng.uniform(200, 3000),
            rng.random() < 0.05,
            rng.choice(["faq-bot", "assistant", "classifier"]),
            f"u-{rng.randint(1, 9)}",
            f"req-{i}",
        )
        for i in range(400)
    ]
    fields = "ts, model, input_tokens, output_tokens, cached_input_tokens, latency_ms, is_error, feature, "
    fields += "user_tag, request_id"
    path = tmp_path_factory.mktemp("answers") / "u.parquet"
    with duckdb.connect() as c:
        c.execute("CREATE TABLE t (" + ", ".join(f"{col.name} {col.duckdb_type}" for col in COLUMNS) + ")")
        c.executemany(f"INSERT INTO t ({fields}) VALUES ({', '.join('?' * 10)})", rows)  # noqa: S608
        c.execute("COPY t TO $p (FORMAT parquet)", {"p": str(path)})
    with duckdb.connect() as connection:
        attach(connection, [path], BOOK)
        yield connection


def days(a: int, b: int) -> Period:
    return Period(
        start=(START + timedelta(a)).replace(tzinfo=UTC),
        end=(START + timedelta(b)).replace(tzinfo=UTC),
        label=f"'those days' as {a + 1}\u2013{b} Nov 2025",
    )


FAQ = [Filter(dimension="feature", values=["faq-bot"])]
PLANS: list[tuple[QueryPlan, set[str]]] = [
    # the plan, and the labels of figures the text need not state
    (QueryPlan(intent="total", filters=FAQ, period=days(0, 7)), set()),
    (QueryPlan(intent="total", measure="errors"), {"Spend"}),  # context, not what was asked
    (QueryPlan(intent="breakdown", group_by="feature"), set()),
    (QueryPlan(intent="breakdown", group_by="user", top_n=3), set()),
    (QueryPlan(intent="share", filters=[Filter(dimension="model", values=["big"])]), set()),
    (
        QueryPlan(
            intent="compare", period=days(7, 14), comparison=Comparison(kind="period", period=days(0, 7))
        ),
        set(),
    ),
    (
        QueryPlan(
            intent="compare",
            comparison=Comparison(kind="values", dimension="feature", values=["faq-bot", "assistant"]),
        ),
        set(),
    ),
    (QueryPlan(intent="unit_cost", unit="1k_requests"), set()),
    (QueryPlan(intent="percentiles", measure="latency_ms"), set()),
    (QueryPlan(intent="slo", threshold=Threshold(measure="latency_ms", value=2000)), set()),
    (QueryPlan(intent="top_requests", top_n=3), set()),
    (QueryPlan(intent="capacity"), {"Mean tokens/s"}),
    (QueryPlan(intent="forecast", horizon_days=7), set()),
    (
        QueryPlan(
            intent="what_if", filters=FAQ, scenario=Scenario(kind="route", target_model="small", share_pct=50)
        ),
        {"Requests affected"},
    ),
    (
        QueryPlan(intent="what_if", scenario=Scenario(kind="output_cap", max_output_tokens=300)),
        {"Requests affected"},
    ),
]


@pytest.mark.parametrize(("plan", "exempt"), PLANS, ids=[f"{p.intent}-{i}" for i, (p, _) in enumerate(PLANS)])
def test_the_text_states_the_figures(
    con: duckdb.DuckDBPyConnection, plan: QueryPlan, exempt: set[str]
) -> None:
    result = execute(con, plan)
    scenario = price_scenario(con, plan, BOOK) if plan.intent == "what_if" else None
    answer = write(plan, result, scenario)
    assert answer["answerable"] is True
    missing = [
        (f["label"], f["value"])
        for f in answer["figures"]
        if f["value"] is not None and f["label"] not in exempt and not stated(answer["text"], f["value"])
    ]
    assert missing == [], answer["text"]


@pytest.mark.parametrize(("plan", "exempt"), PLANS[:8], ids=[p.intent for p, _ in PLANS[:8]])
def test_every_dollar_amount_in_the_text_is_a_figure(
    con: duckdb.DuckDBPyConnection, plan: QueryPlan, exempt: set[str]
) -> None:
    answer = write(plan, execute(con, plan))
    values = [f["value"] for f in answer["figures"] if f["value"] is not None]
    for written in numbers_in(answer["text"]):
        if written.lstrip("-").startswith("$"):
            assert any(abs(abs(number(written)) - abs(v)) <= half_unit(written) + 1e-9 for v in values), (
                written
            )


def test_an_empty_scope_is_said_with_the_datas_range(con: duckdb.DuckDBPyConnection) -> None:
    plan = QueryPlan(intent="total", period=days(20, 25))
    answer: dict[str, Any] = write(plan, execute(con, plan))
    assert answer["answerable"] is False
    assert "No request matches" in answer["text"]
    assert "2025-11-01" in answer["text"]
