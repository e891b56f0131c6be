"""`execute` over a generated log, checked against plain Python over the rows as generated."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from generated_usage import (
    BOOK,
    BURST_AT,
    INJECTION_USER,
    QUOTED_USER,
    SPIKE_DAY,
    cost,
    generate,
    group,
    select,
    spend,
    write,
)

from tokenwise.analysis.plan import Comparison, Filter, Period, QueryPlan, Threshold
from tokenwise.analysis.query import dimension_values, execute
from tokenwise.analysis.source import attach

ROWS = generate()
NOV_5, NOV_12 = datetime(2025, 11, 5), datetime(2025, 11, 12)


@pytest.fixture(scope="module")
def con(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    path = write(ROWS, tmp_path_factory.mktemp("usage") / "usage.parquet")
    with duckdb.connect() as connection:
        attach(connection, [path], BOOK)
        yield connection


def utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC)


def period(start: datetime, end: datetime) -> Period:
    return Period(start=utc(start), end=utc(end))


def plan(intent: str, **fields: Any) -> QueryPlan:
    return QueryPlan(intent=intent, **fields)  # type: ignore[arg-type]


def feature(*values: str, exclude: bool = False) -> Filter:
    return Filter(dimension="feature", values=list(values), exclude=exclude)


def test_total_of_a_filtered_period(con: duckdb.DuckDBPyConnection) -> None:
    p = plan("total", filters=[feature("faq-bot")], period=period(NOV_5, NOV_12))
    truth = select(ROWS, NOV_5, NOV_12, feature="faq-bot")
    scope = execute(con, p)["scope"]
    assert scope["requests"] == len(truth)
    assert scope["spend_usd"] == pytest.approx(spend(truth))
    assert scope["tokens"] == sum(r["input_tokens"] + r["output_tokens"] for r in truth)
    assert scope["errors"] == sum(r["is_error"] for r in truth)


def test_rows_without_a_reported_cost_are_priced_and_unknown_models_stay_unpriced(
    con: duckdb.DuckDBPyConnection,
) -> None:
    scope = execute(con, plan("total"))["scope"]
    assert scope["spend_usd"] == pytest.approx(spend(ROWS))
    assert scope["unpriced_requests"] == sum(cost(r) is None for r in ROWS) > 0


def test_filters_are_case_insensitive(con: duckdb.DuckDBPyConnection) -> None:
    upper = execute(con, plan("total", filters=[Filter(dimension="team", values=["ALPHA"])]))["scope"]
    assert upper["requests"] == len(select(ROWS, team="Alpha")) > 0
    excluded = execute(con, plan("total", filters=[feature("FAQ-BOT", exclude=True)]))["scope"]
    assert excluded["requests"] == len(ROWS) - len(select(ROWS, feature="faq-bot"))


@pytest.mark.parametrize("value", [QUOTED_USER, INJECTION_USER])
def test_values_with_quotes_and_sql_are_matched_literally(con: duckdb.DuckDBPyConnection, value: str) -> None:
    scope = execute(con, plan("total", filters=[Filter(dimension="user", values=[value])]))["scope"]
    assert scope["requests"] == len(select(ROWS, user_tag=value)) > 0
    assert execute(con, plan("total", filters=[Filter(dimension="user", values=["' OR '1'='1"])]))["empty"]
    assert execute(con, plan("total"))["scope"]["requests"] == len(ROWS)  # nothing was dropped


def test_an_empty_scope_says_empty(con: duckdb.DuckDBPyConnection) -> None:
    result = execute(con, plan("breakdown", period=period(datetime(2024, 1, 1), datetime(2024, 2, 1))))
    assert result["empty"] is True
    assert result["scope"]["requests"] == 0


def test_breakdown_ranks_groups_and_shares(con: duckdb.DuckDBPyConnection) -> None:
    result = execute(con, plan("breakdown", group_by="user", top_n=3))
    by_user = sorted(((spend(rs), u) for u, rs in group(ROWS, lambda r: r["user_tag"]).items()), reverse=True)
    assert [g["key"] for g in result["groups"]] == [u for _, u in by_user[:3]]
    assert [g["value"] for g in result["groups"]] == pytest.approx([s for s, _ in by_user[:3]])
    assert result["groups"][0]["share"] == pytest.approx(by_user[0][0] / spend(ROWS))
    bottom = execute(con, plan("breakdown", group_by="feature", measure="requests", top_n=2, order="asc"))
    counts = Counter(r["feature"] for r in ROWS)
    assert [(g["key"], g["value"]) for g in bottom["groups"]] == sorted(counts.items(), key=lambda kv: kv[1])[
        :2
    ]


def test_breakdown_by_day_and_weekday(con: duckdb.DuckDBPyConnection) -> None:
    days = execute(con, plan("breakdown", group_by="day", measure="requests"))["groups"]
    truth = Counter(r["ts"].strftime("%Y-%m-%d") for r in ROWS)
    assert {g["key"]: g["value"] for g in days} == truth
    weekdays = execute(con, plan("breakdown", group_by="weekday", measure="requests"))["groups"]
    assert {g["key"]: g["value"] for g in weekdays} == Counter(r["ts"].strftime("%A") for r in ROWS)


def test_share_of_a_model(con: duckdb.DuckDBPyConnection) -> None:
    result = execute(con, plan("share", filters=[Filter(dimension="model", values=["big-model"])]))
    assert result["share"] == pytest.approx(spend(select(ROWS, model="big-model")) / spend(ROWS))


@pytest.mark.parametrize(("rank_by", "key"), [("cost", cost), ("latency_ms", lambda r: r["latency_ms"])])
def test_top_requests(con: duckdb.DuckDBPyConnection, rank_by: str, key: Any) -> None:
    listed = execute(con, plan("top_requests", rank_by=rank_by, top_n=5))["requests_list"]
    truth = sorted((r for r in ROWS if key(r) is not None), key=key, reverse=True)[:5]
    # ties (the spike's identical requests) may come in any order: compare the ranked values
    assert [r["cost_usd" if rank_by == "cost" else rank_by] for r in listed] == pytest.approx(
        [key(r) for r in truth]
    )
    for r in listed:
        assert r["cost_usd"] == pytest.approx(
            cost(next(t for t in ROWS if t["request_id"] == r["request_id"]))
        )


def test_compare_periods_and_values(con: duckdb.DuckDBPyConnection) -> None:
    later, earlier = (NOV_12, NOV_12 + timedelta(7)), (NOV_5, NOV_12)
    comparison = Comparison(kind="period", period=period(*earlier))
    result = execute(con, plan("compare", period=period(*later), comparison=comparison))
    a, b = spend(select(ROWS, *later)), spend(select(ROWS, *earlier))
    assert result["change"]["absolute"] == pytest.approx(a - b)
    assert result["change"]["relative"] == pytest.approx((a - b) / b)
    values = Comparison(kind="values", dimension="feature", values=["faq-bot", "assistant"])
    items = execute(con, plan("compare", measure="requests", comparison=values))["items"]
    assert [i["totals"]["requests"] for i in items] == [len(select(ROWS, feature=f)) for f in values.values]


def inclusive(values: list[float], ps: list[float]) -> list[float]:
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return [cuts[int(p) - 1] for p in ps]


def test_percentiles_overall_and_by_model(con: duckdb.DuckDBPyConnection) -> None:
    ps = [50.0, 90.0, 95.0, 99.0]
    result = execute(con, plan("percentiles", measure="latency_ms", group_by="model"))
    latencies = [r["latency_ms"] for r in ROWS if r["latency_ms"] is not None]
    assert list(result["percentiles"].values()) == pytest.approx(inclusive(latencies, ps))
    for g in result["groups"]:
        mine = [r["latency_ms"] for r in ROWS if r["model"] == g["key"] and r["latency_ms"] is not None]
        assert list(g["percentiles"].values()) == pytest.approx(inclusive(mine, ps))
    tokens = execute(con, plan("percentiles", measure="output_tokens", percentiles=[50.0]))
    assert tokens["percentiles"]["p50"] == pytest.approx(statistics.median(r["output_tokens"] for r in ROWS))


def test_slo_counts_requests_over_a_threshold(con: duckdb.DuckDBPyConnection) -> None:
    result = execute(con, plan("slo", threshold=Threshold(measure="latency_ms", value=2000)))
    measured = [r for r in ROWS if r["latency_ms"] is not None]
    assert result["count"] == sum(r["latency_ms"] > 2000 for r in measured) > 0
    assert result["share"] == pytest.approx(result["count"] / len(measured))


@pytest.mark.parametrize(
    ("unit", "units"),
    [
        ("request", lambda rs: len(rs)),
        ("1k_requests", lambda rs: len(rs) / 1000),
        ("user", lambda rs: len({r["user_tag"] for r in rs})),
        ("feature", lambda rs: len({r["feature"] for r in rs})),
        ("1m_tokens", lambda rs: sum(r["input_tokens"] + r["output_tokens"] for r in rs) / 1e6),
    ],
)
def test_unit_cost(con: duckdb.DuckDBPyConnection, unit: str, units: Any) -> None:
    result = execute(con, plan("unit_cost", unit=unit, filters=[feature("assistant")]))
    scope = select(ROWS, feature="assistant")
    assert result["value"] == pytest.approx(spend(scope) / units(scope))


def test_capacity_peaks_per_wall_clock_second(con: duckdb.DuckDBPyConnection) -> None:
    result = execute(con, plan("capacity"))
    seconds = group(ROWS, lambda r: r["ts"].replace(microsecond=0))
    assert result["peak_requests_per_s"] == max(len(rs) for rs in seconds.values()) == len(seconds[BURST_AT])
    assert result["peak_tokens_per_s"] == max(
        sum(r["input_tokens"] + r["output_tokens"] for r in rs) for rs in seconds.values()
    )


def least_squares(values: list[float]) -> tuple[float, float]:
    n = len(values)
    mx, my = (n - 1) / 2, sum(values) / n
    slope = sum((x - mx) * (y - my) for x, y in enumerate(values)) / sum((x - mx) ** 2 for x in range(n))
    return my - slope * mx, slope


def test_forecast_sums_a_linear_fit_of_daily_spend(con: duckdb.DuckDBPyConnection) -> None:
    result = execute(con, plan("forecast", horizon_days=10))
    by_day = group(ROWS, lambda r: r["ts"].date())
    first, last = min(by_day), max(by_day)
    daily = [spend(by_day.get(first + timedelta(k), [])) for k in range((last - first).days + 1)]
    intercept, slope = least_squares(daily)
    truth = sum(max(0.0, intercept + slope * x) for x in range(len(daily), len(daily) + 10))
    assert result["forecast"] == pytest.approx(truth)
    assert result["low"] <= result["forecast"] <= result["high"]


def test_trend_has_every_day(con: duckdb.DuckDBPyConnection) -> None:
    result = execute(con, plan("trend", measure="requests"))
    truth = Counter(r["ts"].strftime("%Y-%m-%d") for r in ROWS)
    assert {p["label"]: p["value"] for p in result["points"]} == truth
    assert len(result["points"]) == 20


def test_anomalies_find_the_spike_day_and_its_feature(con: duckdb.DuckDBPyConnection) -> None:
    result = execute(con, plan("anomalies"))
    spike = SPIKE_DAY.strftime("%Y-%m-%d")
    assert [d["day"] for d in result["days"]] == [spike]
    day = result["days"][0]
    assert day["value"] == pytest.approx(spend(select(ROWS, SPIKE_DAY, SPIKE_DAY + timedelta(1))))
    drivers = {d["dimension"]: d["key"] for d in day["drivers"]}
    assert drivers["feature"] == "reporter"


def test_a_feature_new_on_the_spike_day_is_named_as_its_driver(tmp_path: Path) -> None:
    steady = [
        {
            "ts": nov(k, h),
            "model": "small-model",
            "feature": "steady",
            "input_tokens": 1000,
            "output_tokens": 100,
            "cost_usd": 0.01,
        }
        for k in range(14)
        for h in range(10)
    ]
    runaway = [
        {
            "ts": nov(9, h),
            "model": "big-model",
            "feature": "runaway",
            "input_tokens": 1000,
            "output_tokens": 100,
            "cost_usd": 1.0,
        }
        for h in range(10)
    ]
    with duckdb.connect() as c:
        attach(c, [write(steady + runaway, tmp_path / "u.parquet")], BOOK)
        (day,) = execute(c, plan("anomalies"))["days"]
    assert day["day"] == "2025-11-10"
    assert {d["dimension"]: d["key"] for d in day["drivers"]}["feature"] == "runaway"


def nov(day: int, hour: int) -> datetime:
    return datetime(2025, 11, 1 + day, hour)


def test_dimension_values_lists_the_most_frequent_first(con: duckdb.DuckDBPyConnection) -> None:
    values = dimension_values(con)
    counts = Counter(r["feature"] for r in ROWS)
    assert values["feature"] == [f for f, _ in counts.most_common()]
    assert set(values["team"]) == {"Alpha", "platform"}


def padded_p99(rows: list[dict[str, Any]]) -> float:
    """p99 of requests per second over every second from the first request to the last, empty ones as 0."""
    first = min(r["ts"] for r in rows)
    per_second = Counter(int((r["ts"] - first).total_seconds()) for r in rows)
    padded = [per_second.get(s, 0) for s in range(max(per_second) + 1)]
    return statistics.quantiles(padded, n=100, method="inclusive")[98]


def test_capacity_p99_counts_idle_seconds(con: duckdb.DuckDBPyConnection) -> None:
    assert execute(con, plan("capacity"))["p99_requests_per_s"] == pytest.approx(padded_p99(ROWS))


def test_capacity_p99_interpolates_next_to_the_idle_seconds(tmp_path: Path) -> None:
    rows = [
        {"ts": nov(0, 0) + timedelta(seconds=s), "input_tokens": 10, "output_tokens": 1} for s in (0, 149)
    ]
    with duckdb.connect() as c:
        attach(c, [write(rows, tmp_path / "u.parquet")], BOOK)
        result = execute(c, plan("capacity"))
    assert result["p99_requests_per_s"] == pytest.approx(padded_p99(rows)) == pytest.approx(0.51)
