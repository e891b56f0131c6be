"""What the usage data says, measured by DuckDB over the `usage` table: volume, spend, time, sizes, waste."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import duckdb

from tokenwise.analysis.sql import one, rows
from tokenwise.analysis.traffic import Rate, rate
from tokenwise.analysis.waste import Duplicates, Errors, Prefixes, duplicates, errors, prefixes

_TOTALS = """
SELECT count(*), COALESCE(sum(input_tokens), 0), COALESCE(sum(output_tokens), 0),
    COALESCE(sum(cached_input_tokens), 0), sum(cost), count(*) FILTER (WHERE cost IS NULL), min(ts), max(ts),
    quantile_cont(input_tokens, [0.5, 0.95, 0.99]), avg(input_tokens),
    quantile_cont(output_tokens, [0.5, 0.95, 0.99]), avg(output_tokens),
    quantile_cont(latency_ms, [0.5, 0.95, 0.99]), avg(latency_ms)
FROM usage
"""

# Labels are formatted after grouping, once per group rather than once per row.
_GROUPED = """
SELECT {label}, * EXCLUDE (k) FROM (
    SELECT {key} AS k, count(*) AS n, sum(input_tokens), sum(output_tokens), sum(cached_input_tokens),
        sum(cost) AS spend, count(*) FILTER (WHERE cost IS NULL)
    FROM usage GROUP BY 1
) ORDER BY {order}
"""


@dataclass(frozen=True)
class Period:
    """First and last request (ISO, UTC) and the days between them (at least one second)."""

    start: str
    end: str
    days: float


@dataclass(frozen=True)
class Sizes:
    """Distribution of a per-request quantity; percentiles are DuckDB `quantile_cont` (linear)."""

    p50: float
    p95: float
    p99: float
    mean: float


@dataclass(frozen=True)
class Group:
    """Requests, tokens and spend of one model, feature, day or hour."""

    key: str | None
    requests: int
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    spend_usd: float | None
    unpriced_requests: int
    spend_share: float | None
    request_share: float


@dataclass(frozen=True)
class Measurements:
    """Everything measured; group lists are ordered by spend (models, features) or by time."""

    requests: int
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    # reported cost, else priced from the price book; None when no request could be priced
    spend_usd: float | None
    unpriced_requests: int
    period: Period | None
    models: list[Group]
    features: list[Group]
    by_day: list[Group]
    by_hour: list[Group]
    rate: Rate
    input_sizes: Sizes
    output_sizes: Sizes
    latency_ms: Sizes | None
    errors: Errors
    duplicates: Duplicates | None
    prefixes: Prefixes | None
    # Where the spend came from: requests whose cost the data reported (the rest priced from the book),
    # and the input tokens written to the prompt cache (part of input_tokens, like cached_input_tokens).
    reported_cost_requests: int = 0
    cache_write_tokens: int = 0

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def measure(con: duckdb.DuckDBPyConnection, retry_window_s: float) -> Measurements:
    """Measure the `usage` table."""
    (
        requests,
        inputs,
        outputs,
        cached,
        spend,
        unpriced,
        start,
        end,
        in_q,
        in_mean,
        out_q,
        out_mean,
        lat_q,
        lat_mean,
    ) = one(con, _TOTALS)
    spend = None if spend is None else float(spend)
    (has_features,) = one(con, "SELECT count(feature) > 0 FROM usage")
    reported, writes = one(
        con,
        "SELECT count(reported_cost), COALESCE(sum(cache_write_tokens + cache_write_1h_tokens), 0) "
        "FROM usage",
    )

    def grouped(key: str, order: str = "spend DESC NULLS LAST, n DESC", label: str = "k") -> list[Group]:
        query = _GROUPED.format(key=key, order=order, label=label)
        return _groups(con, query, requests, spend)

    return Measurements(
        requests=int(requests),
        input_tokens=int(inputs),
        output_tokens=int(outputs),
        cached_input_tokens=int(cached),
        spend_usd=spend,
        unpriced_requests=int(unpriced),
        period=_period(start, end),
        models=grouped("model"),
        features=grouped("feature") if has_features else [],
        by_day=grouped("date_trunc('day', ts)", "k", "strftime(k, '%Y-%m-%d')"),
        by_hour=grouped("date_trunc('hour', ts)", "k", "strftime(k, '%Y-%m-%dT%H:00')"),
        rate=rate(con),
        input_sizes=_sizes(in_q, in_mean),
        output_sizes=_sizes(out_q, out_mean),
        latency_ms=None if lat_q is None else _sizes(lat_q, lat_mean),
        errors=errors(con, retry_window_s),
        duplicates=duplicates(con, int(requests)),
        prefixes=prefixes(con, int(inputs)),
        reported_cost_requests=int(reported),
        cache_write_tokens=int(writes),
    )


def _groups(con: duckdb.DuckDBPyConnection, query: str, requests: int, spend: float | None) -> list[Group]:
    return [
        Group(
            key=None if k is None else str(k),
            requests=int(n),
            input_tokens=int(i),
            output_tokens=int(o),
            cached_input_tokens=int(c),
            spend_usd=None if s is None else float(s),
            unpriced_requests=int(u),
            spend_share=float(s) / spend if s is not None and spend else None,
            request_share=n / requests if requests else 0.0,
        )
        for k, n, i, o, c, s, u in rows(con, query)
    ]


def _period(start: datetime | None, end: datetime | None) -> Period | None:
    if start is None or end is None:
        return None
    # at least one second, so a single request still scales to a month without dividing by zero
    seconds = max((end - start).total_seconds(), 1.0)
    return Period(start=start.isoformat(), end=end.isoformat(), days=seconds / 86400)


def _sizes(quantiles: list[float] | None, mean: float | None) -> Sizes:
    p50, p95, p99 = quantiles if quantiles else (0.0, 0.0, 0.0)
    return Sizes(p50=float(p50), p95=float(p95), p99=float(p99), mean=float(mean or 0.0))
