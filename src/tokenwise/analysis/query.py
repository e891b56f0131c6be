"""Executes a `QueryPlan` over the `usage` view with DuckDB: every value from the question is a bound
parameter, every SQL fragment interpolated below is one of this module's constants.

The result is plain JSON (numbers, labels, rows) for the answer writer; nothing here words a sentence.
"""

# SQL is assembled from the constant fragments of this module only (measures, columns, grains).
# ruff: noqa: S608

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

from tokenwise.analysis.plan import DIMENSION_COLUMNS, Filter, Period, QueryPlan
from tokenwise.analysis.sql import one, rows

JSON = dict[str, Any]

MEASURES: dict[str, str] = {
    "spend": "sum(cost)",
    "requests": "count(*)",
    "input_tokens": "sum(input_tokens)",
    "output_tokens": "sum(output_tokens)",
    "tokens": "sum(input_tokens + output_tokens)",
    "cached_input_tokens": "sum(cached_input_tokens)",
    "errors": "count(*) FILTER (WHERE is_error)",
    "error_rate": "100.0 * count(*) FILTER (WHERE is_error) / nullif(count(*), 0)",  # a percentage
    "latency_ms": "quantile_cont(latency_ms, 0.5)",
    "cost_per_request": "sum(cost) / nullif(count(*), 0)",
}
_TOTALS = (
    "count(*), sum(cost), count(*) FILTER (WHERE cost IS NULL), sum(input_tokens), sum(output_tokens), "
    "sum(cached_input_tokens), count(*) FILTER (WHERE is_error), min(ts), max(ts), count(latency_ms)"
)
GRAINS: dict[str, tuple[str, str]] = {
    # grain -> (label expression, order expression)
    "day": ("strftime(ts, '%Y-%m-%d')", "1"),
    "hour": ("strftime(ts, '%H:00')", "1"),  # hour of day, 00:00-23:00
    "hourly": ("strftime(date_trunc('hour', ts), '%Y-%m-%d %H:00')", "1"),
    "weekday": ("dayname(ts)", "min(isodow(ts))"),
    "week": ("strftime(date_trunc('week', ts), '%Y-%m-%d')", "1"),
    "month": ("strftime(ts, '%Y-%m')", "1"),
}
_MAX_GROUPS = 500


class Scope:
    """The WHERE clause of a plan's filters and period, with its parameters."""

    def __init__(self, plan: QueryPlan, period: Period | None = None, *, skip: tuple[str, ...] = ()) -> None:
        clauses: list[str] = []
        self.params: dict[str, object] = {}
        for i, f in enumerate(plan.filters):
            if f.dimension in skip:
                continue
            column = DIMENSION_COLUMNS[f.dimension]
            name = f"f{i}"
            self.params[name] = [v.lower() for v in f.values]
            test = f"list_contains(${name}, lower({column}))"
            clauses.append(f"({column} IS NULL OR NOT {test})" if f.exclude else f"COALESCE({test}, false)")
        chosen = plan.period if period is None else period
        if chosen is not None and chosen.start is not None:
            self.params["start"] = _naive(chosen.start)
            clauses.append("ts >= $start")
        if chosen is not None and chosen.end is not None:
            self.params["end"] = _naive(chosen.end)
            clauses.append("ts < $end")
        self.where = ("WHERE " + " AND ".join(clauses)) if clauses else ""

    def and_(self, condition: str) -> str:
        return f"{self.where} AND {condition}" if self.where else f"WHERE {condition}"


def _naive(moment: datetime) -> datetime:
    # `ts` is stored as naive UTC
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def totals(con: duckdb.DuckDBPyConnection, scope: Scope) -> JSON:
    """Requests, spend, tokens, errors and the first/last request of a scope."""
    n, spend, unpriced, inputs, outputs, cached, errors, start, end, latencies = one(
        con, f"SELECT {_TOTALS} FROM usage {scope.where}", scope.params
    )
    n = int(n)
    span = (end - start).total_seconds() if start and end else 0.0
    return {
        "requests": n,
        "spend_usd": None if spend is None else float(spend),
        "unpriced_requests": int(unpriced),
        "input_tokens": int(inputs or 0),
        "output_tokens": int(outputs or 0),
        "tokens": int((inputs or 0) + (outputs or 0)),
        "cached_input_tokens": int(cached or 0),
        "errors": int(errors),
        "error_rate": errors / n if n else None,
        "cost_per_request": float(spend) / n if n and spend is not None else None,
        "first": start.isoformat() if start else None,
        "last": end.isoformat() if end else None,
        "span_days": max(span, 1.0) / 86400 if n else 0.0,
        "latency_rows": int(latencies),
    }


def data_range(con: duckdb.DuckDBPyConnection) -> JSON:
    start, end, n = one(con, "SELECT min(ts), max(ts), count(*) FROM usage")
    first, last = (moment.isoformat() if moment else None for moment in (start, end))
    return {"first": first, "last": last, "rows": n}


def measure_value(t: JSON, measure: str) -> float | None:
    """A measure of a `totals` result (latency is not a total: see percentiles)."""
    value = t.get("spend_usd" if measure == "spend" else measure)
    if value is None:
        return None
    return 100 * float(value) if measure == "error_rate" else float(value)


def execute(con: duckdb.DuckDBPyConnection, plan: QueryPlan) -> JSON:
    """The figures that answer `plan` (what-ifs are priced by `analysis.scenario`)."""
    scope = Scope(plan)
    base = totals(con, scope)
    result: JSON = {"intent": plan.intent, "measure": plan.measure, "scope": base, "data": data_range(con)}
    if base["requests"] == 0 and plan.intent not in ("compare", "forecast"):
        return {**result, "empty": True}
    handler = _HANDLERS.get(plan.intent)
    if handler is not None:
        result.update(handler(con, plan, scope, base))
    return {**result, "empty": False}


def _group_expr(group_by: str, intent: str) -> tuple[str, str]:
    if group_by in DIMENSION_COLUMNS:
        return DIMENSION_COLUMNS[group_by], "value DESC NULLS LAST"
    grain = "hourly" if group_by == "hour" and intent == "trend" else group_by
    label, order = GRAINS[grain]
    return label, order


def groups(con: duckdb.DuckDBPyConnection, plan: QueryPlan, scope: Scope, group_by: str) -> list[JSON]:
    """The plan's measure (and requests, spend, share of spend) per value of `group_by`."""
    label, order = _group_expr(group_by, plan.intent)
    measure = MEASURES[plan.measure]
    if group_by in DIMENSION_COLUMNS or (plan.intent == "breakdown" and plan.top_n):
        # a ranking: "which day had the highest spend" orders days by their value, not by date
        direction = "ASC" if plan.order == "asc" else "DESC"
        order = f"value {direction} NULLS LAST, key"
    query = f"""
        SELECT {label} AS key, {measure} AS value, count(*), sum(cost), count(*) FILTER (WHERE is_error)
        FROM usage {scope.where} GROUP BY 1 ORDER BY {order} LIMIT {_MAX_GROUPS}"""
    found = rows(con, query, scope.params)
    total_spend = sum(float(s) for *_, s, _ in found if s is not None)
    total_value = sum(float(v) for _, v, *_ in found if v is not None)
    additive = plan.measure not in ("error_rate", "latency_ms", "cost_per_request")
    return [
        {
            "key": None if k is None else str(k),
            "value": None if v is None else float(v),
            "requests": int(n),
            "spend_usd": None if s is None else float(s),
            "errors": int(e),
            "share": float(v) / total_value if additive and v is not None and total_value else None,
            "spend_share": float(s) / total_spend if s is not None and total_spend else None,
        }
        for k, v, n, s, e in found
    ]


def _total(con: duckdb.DuckDBPyConnection, plan: QueryPlan, scope: Scope, base: JSON) -> JSON:
    out: JSON = {"value": measure_value(base, plan.measure)}
    if plan.unit == "day":
        # a daily average: over the period's days when it names one, else the days the data spans
        period = plan.period
        if period is not None and period.start is not None and period.end is not None:
            out["days"] = (period.end - period.start).total_seconds() / 86400
        else:
            out["days"] = round(base["span_days"], 2)
    if plan.measure == "latency_ms":
        out["percentiles"] = percentiles(con, scope, "latency_ms", plan.percentiles)
        out["value"] = out["percentiles"].get("p50")
    if plan.group_by:
        out["groups"] = groups(con, plan, scope, plan.group_by)
    return out


def _breakdown(con: duckdb.DuckDBPyConnection, plan: QueryPlan, scope: Scope, base: JSON) -> JSON:
    group_by = plan.group_by or "feature"
    found = groups(con, plan, scope, group_by)
    shown = found[: plan.top_n] if plan.top_n else found
    return {
        "group_by": group_by,
        "groups": shown,
        "groups_total": len(found),
        "value": measure_value(base, plan.measure),
    }


def _share(con: duckdb.DuckDBPyConnection, plan: QueryPlan, scope: Scope, base: JSON) -> JSON:
    dims = tuple(f.dimension for f in plan.filters)
    if not dims:
        return _breakdown(con, plan, scope, base)
    whole = totals(con, Scope(plan, skip=dims))
    part, all_ = measure_value(base, plan.measure), measure_value(whole, plan.measure)
    return {
        "value": part,
        "whole": all_,
        "whole_scope": whole,
        "share": part / all_ if part is not None and all_ else None,
    }


_RANKS = {
    "cost": "cost",
    "latency_ms": "latency_ms",
    "tokens": "input_tokens + output_tokens",
    "input_tokens": "input_tokens",
    "output_tokens": "output_tokens",
}


def _top_requests(con: duckdb.DuckDBPyConnection, plan: QueryPlan, scope: Scope, base: JSON) -> JSON:
    rank = _RANKS[plan.rank_by]
    direction = "ASC" if plan.order == "asc" else "DESC"
    limit = plan.top_n or 5
    found = rows(
        con,
        f"""SELECT request_ref, ts, model, feature, user_tag, input_tokens, output_tokens, latency_ms, cost
            FROM usage {scope.and_(f"({rank}) IS NOT NULL")}
            ORDER BY {rank} {direction} LIMIT {int(limit)}""",
        scope.params,
    )
    keys = ("request_id", "ts", "model", "feature", "user", "input_tokens", "output_tokens", "latency_ms")
    listed = []
    for row in found:
        item = dict(zip(keys, row[:8], strict=True))
        item["ts"] = item["ts"].isoformat() if item["ts"] else None
        item["cost_usd"] = None if row[8] is None else float(row[8])
        listed.append(item)
    return {"requests_list": listed, "rank_by": plan.rank_by}


def percentiles(con: duckdb.DuckDBPyConnection, scope: Scope, column: str, ps: list[float]) -> JSON:
    qs = [p / 100 for p in ps]
    query = f"SELECT quantile_cont({column}, $qs) FROM usage {scope.where}"
    (values,) = one(con, query, {**scope.params, "qs": qs})
    if values is None:
        return {}
    return {_p(p): float(v) for p, v in zip(ps, values, strict=True)}


def _p(p: float) -> str:
    return f"p{p:g}"


def _column_of(plan: QueryPlan) -> str:
    if plan.measure in ("input_tokens", "output_tokens"):
        return plan.measure
    if plan.measure == "tokens":
        return "(input_tokens + output_tokens)"
    return "latency_ms"


def _percentiles(con: duckdb.DuckDBPyConnection, plan: QueryPlan, scope: Scope, base: JSON) -> JSON:
    column = _column_of(plan)
    if column == "latency_ms" and not base["latency_rows"]:
        return {"missing": "latency_ms"}
    out: JSON = {"percentiles": percentiles(con, scope, column, plan.percentiles), "column": column}
    if plan.group_by:
        label, _ = _group_expr(plan.group_by, plan.intent)
        qs = [p / 100 for p in plan.percentiles]
        found = rows(
            con,
            f"SELECT {label} AS key, quantile_cont({column}, $qs) AS q, count(*) FROM usage {scope.where} "
            # slowest (or largest) first: "which model is slowest" reads the first row
            f"GROUP BY 1 ORDER BY q[1] DESC NULLS LAST, 3 DESC LIMIT {_MAX_GROUPS}",
            {**scope.params, "qs": qs},
        )
        out["groups"] = [
            {
                "key": None if k is None else str(k),
                "requests": int(n),
                "percentiles": {_p(p): float(v) for p, v in zip(plan.percentiles, vs, strict=True)}
                if vs is not None
                else {},
            }
            for k, vs, n in found
        ]
    return out


_THRESHOLD_COLUMNS = {
    "latency_ms": "latency_ms",
    "input_tokens": "input_tokens",
    "output_tokens": "output_tokens",
    "cost": "cost",
}


def _slo(con: duckdb.DuckDBPyConnection, plan: QueryPlan, scope: Scope, base: JSON) -> JSON:
    assert plan.threshold is not None
    column = _THRESHOLD_COLUMNS[plan.threshold.measure]
    if column == "latency_ms" and not base["latency_rows"]:
        return {"missing": "latency_ms"}
    op = ">" if plan.threshold.op == ">" else "<"
    (count,) = one(
        con,
        f"SELECT count(*) FROM usage {scope.and_(f'{column} {op} $threshold')}",
        {**scope.params, "threshold": plan.threshold.value},
    )
    measured = base["latency_rows"] if column == "latency_ms" else base["requests"]
    return {
        "count": int(count),
        "share": count / measured if measured else None,
        "measured": measured,
        "threshold": plan.threshold.model_dump(),
    }


def _unit_cost(con: duckdb.DuckDBPyConnection, plan: QueryPlan, scope: Scope, base: JSON) -> JSON:
    unit = plan.unit or "request"
    denominators = {
        "request": "count(*)",
        "1k_requests": "count(*) / 1000.0",
        "user": "count(DISTINCT user_tag)",
        "feature": "count(DISTINCT feature)",
        "1m_tokens": "sum(input_tokens + output_tokens) / 1e6",
    }
    denominator = denominators[unit]
    spend, units = one(con, f"SELECT sum(cost), {denominator} FROM usage {scope.where}", scope.params)
    out: JSON = {
        "unit": unit,
        "value": float(spend) / float(units) if spend is not None and units else None,
        "spend_usd": None if spend is None else float(spend),
        "units": None if units is None else float(units),
    }
    if plan.group_by:
        label, _ = _group_expr(plan.group_by, plan.intent)
        found = rows(
            con,
            f"SELECT {label} AS key, sum(cost) / nullif({denominator}, 0) AS v, count(*) FROM usage "
            f"{scope.where} GROUP BY 1 ORDER BY v DESC NULLS LAST LIMIT {_MAX_GROUPS}",
            scope.params,
        )
        out["groups"] = [
            {
                "key": None if k is None else str(k),
                "value": None if v is None else float(v),
                "requests": int(n),
            }
            for k, v, n in found
        ]
    return out


def _compare(con: duckdb.DuckDBPyConnection, plan: QueryPlan, scope: Scope, base: JSON) -> JSON:
    comparison = plan.comparison
    assert comparison is not None
    if comparison.kind == "period":
        assert comparison.period is not None
        other = totals(con, Scope(plan, comparison.period))
        out: JSON = {"kind": "period", "later": base, "earlier": other}
        out["change"] = _change(base, other, plan.measure)
        if plan.group_by:
            later = {g["key"]: g for g in groups(con, plan, scope, plan.group_by)}
            earlier = {g["key"]: g for g in groups(con, plan, Scope(plan, comparison.period), plan.group_by)}
            out["groups"] = sorted(
                (
                    {
                        "key": key,
                        "later": (later.get(key) or {}).get("value"),
                        "earlier": (earlier.get(key) or {}).get("value"),
                    }
                    for key in {*later, *earlier}
                ),
                key=lambda g: -abs((g["later"] or 0) - (g["earlier"] or 0)),
            )
        return out
    assert comparison.dimension is not None
    skip = (comparison.dimension,)
    items: list[JSON] = []
    for value in comparison.values:
        kept = [f for f in plan.filters if f.dimension not in skip]
        narrowed = plan.model_copy(
            update={"filters": [*kept, Filter(dimension=comparison.dimension, values=[value])]}
        )
        items.append({"value": value, "totals": totals(con, Scope(narrowed))})
    values: JSON = {"kind": "values", "dimension": comparison.dimension, "items": items}
    if len(items) >= 2:
        values["change"] = _change(items[0]["totals"], items[1]["totals"], plan.measure)
    return values


def _change(a: JSON, b: JSON, measure: str) -> JSON:
    x, y = measure_value(a, measure), measure_value(b, measure)
    if x is None or y is None:
        return {"absolute": None, "relative": None}
    return {"absolute": x - y, "relative": (x - y) / y if y else None}


def daily(con: duckdb.DuckDBPyConnection, plan: QueryPlan, scope: Scope, grain: str = "day") -> list[JSON]:
    """The measure per day (or hour), every bucket between the first and the last one included."""
    measure = MEASURES[plan.measure]
    unit = "hour" if grain == "hourly" else "day"
    found = rows(
        con,
        f"SELECT date_trunc('{unit}', ts) AS b, {measure} FROM usage {scope.where} GROUP BY 1 ORDER BY 1",
        scope.params,
    )
    if not found:
        return []
    values = {b: (None if v is None else float(v)) for b, v in found}
    step = timedelta(hours=1) if unit == "hour" else timedelta(days=1)
    first, last = found[0][0], found[-1][0]
    zero = 0.0 if plan.measure not in ("error_rate", "latency_ms", "cost_per_request") else None
    points, moment = [], first
    while moment <= last:
        label = moment.strftime("%Y-%m-%d %H:00" if unit == "hour" else "%Y-%m-%d")
        points.append({"label": label, "value": values.get(moment, zero)})
        moment += step
    return points


def _trend(con: duckdb.DuckDBPyConnection, plan: QueryPlan, scope: Scope, base: JSON) -> JSON:
    grain = "hourly" if plan.group_by == "hour" or base["span_days"] <= 2 else "day"
    points = daily(con, plan, scope, grain)
    fit = linear_fit([p["value"] for p in points if p["value"] is not None])
    return {"grain": grain, "points": points, "fit": fit, "value": measure_value(base, plan.measure)}


def linear_fit(values: list[float]) -> JSON | None:
    """Least-squares line through (0, v0), (1, v1), ...: intercept, slope, residual std."""
    n = len(values)
    if n < 2:
        return None
    mean_x, mean_y = (n - 1) / 2, sum(values) / n
    sxx = sum((i - mean_x) ** 2 for i in range(n))
    slope = sum((i - mean_x) * (v - mean_y) for i, v in enumerate(values)) / sxx
    intercept = mean_y - slope * mean_x
    residuals = [v - (intercept + slope * i) for i, v in enumerate(values)]
    sigma = math.sqrt(sum(r * r for r in residuals) / (n - 2)) if n > 2 else 0.0
    return {"intercept": intercept, "slope": slope, "sigma": sigma, "n": n, "sxx": sxx, "mean_x": mean_x}


def _forecast(con: duckdb.DuckDBPyConnection, plan: QueryPlan, scope: Scope, base: JSON) -> JSON:
    # The trend is fitted on history: the horizon (a future period) is not a filter of the data.
    history_plan = plan.model_copy(update={"period": None})
    history = daily(con, plan, Scope(history_plan))
    values = [p["value"] or 0.0 for p in history]
    fit = linear_fit(values)
    if fit is None or not history:
        return {"missing": "history", "points": history}
    last_day = datetime.fromisoformat(history[-1]["label"]).replace(tzinfo=UTC)
    horizon = plan.horizon
    if horizon is None or horizon.start is None or horizon.end is None:
        days = plan.horizon_days or 30
        start = last_day + timedelta(days=1)
        horizon = Period(start=start, end=start + timedelta(days=days), label="")
    assert horizon.start is not None
    assert horizon.end is not None
    offset = (horizon.start - last_day).days + len(values) - 1
    length = max((horizon.end - horizon.start).days, 1)
    xs = [offset + k for k in range(length)]
    total = sum(max(0.0, fit["intercept"] + fit["slope"] * x) for x in xs)
    # The sum of `length` daily predictions: residual noise adds up as sqrt(length), the slope's
    # uncertainty linearly; a 95 % range from both.
    slope_se = fit["sigma"] / math.sqrt(fit["sxx"]) if fit["sxx"] else 0.0
    mean_offset = sum(xs) / length - fit["mean_x"]
    spread = 1.96 * math.sqrt(
        length * fit["sigma"] ** 2 * (1 + 1 / fit["n"]) + (length * mean_offset * slope_se) ** 2
    )
    flat = sum(values[-30:]) / len(values[-30:]) * length
    return {
        "points": history,
        "fit": fit,
        "horizon": {"start": horizon.start.isoformat(), "end": horizon.end.isoformat(), "days": length,
                    "label": horizon.label},
        "forecast": total,
        "low": max(0.0, total - spread),
        "high": total + spread,
        "flat": flat,
        "history_days": len(values),
    }  # fmt: skip


def _capacity(con: duckdb.DuckDBPyConnection, plan: QueryPlan, scope: Scope, base: JSON) -> JSON:
    per_second = f"""SELECT date_trunc('second', ts) AS s, count(*) AS n,
        sum(input_tokens + output_tokens) AS t FROM usage {scope.where} GROUP BY 1"""
    peak_n, peak_t, busy, busy_n, busy_t = one(
        con,
        "SELECT max(n), max(t), count(*), quantile_cont(n, 0.99), quantile_cont(t, 0.99) "
        f"FROM ({per_second})",
        scope.params,
    )
    seconds = max(round(base["span_days"] * 86400) + 1, int(busy))
    p99_n, p99_t = _padded(con, per_second, scope.params, seconds, busy)
    return {
        "peak_requests_per_s": int(peak_n or 0),
        "peak_tokens_per_s": int(peak_t or 0),
        "p99_requests_per_s": p99_n,
        "p99_tokens_per_s": p99_t,
        # sparse traffic has a p99 of 0 over all seconds: the seconds that had requests say more
        "busy_p99_requests_per_s": float(busy_n or 0.0),
        "busy_p99_tokens_per_s": float(busy_t or 0.0),
        "busy_seconds": int(busy),
        "mean_requests_per_s": base["requests"] / seconds,
        "mean_tokens_per_s": base["tokens"] / seconds,
        "seconds": seconds,
    }


def _padded(
    con: duckdb.DuckDBPyConnection, per_second: str, params: dict[str, object], seconds: int, busy: int
) -> tuple[float, float]:
    """p99 over every second of the span, seconds without requests counted as 0."""
    zeros = seconds - int(busy)
    pos = 0.99 * (seconds - 1)
    if pos <= zeros - 1:
        return 0.0, 0.0
    if pos < zeros:
        # between the last idle second and the quietest busy one: interpolate, like quantile_cont
        smallest_n, smallest_t = one(con, f"SELECT min(n), min(t) FROM ({per_second})", params)
        weight = pos - (zeros - 1)
        return float(weight * smallest_n), float(weight * smallest_t)
    fraction = (pos - zeros) / (busy - 1) if busy > 1 else 0.0
    query = f"SELECT quantile_cont(n, $q), quantile_cont(t, $q) FROM ({per_second})"
    n, t = one(con, query, {**params, "q": fraction})
    return float(n), float(t)


def _anomalies(con: duckdb.DuckDBPyConnection, plan: QueryPlan, scope: Scope, base: JSON) -> JSON:
    metric = "error_rate" if plan.measure in ("errors", "error_rate") else plan.measure
    if metric == "latency_ms":
        metric = "spend"
    metric_plan = plan.model_copy(update={"measure": metric})
    points = daily(con, metric_plan, scope)
    values = [p["value"] for p in points if p["value"] is not None]
    if len(values) < 7:
        return {"missing": "days", "points": points, "metric": metric}
    median = _median(values)
    mad = _median([abs(v - median) for v in values]) * 1.4826 or (median * 0.05) or 1e-9
    flagged = []
    for p in points:
        if p["value"] is None:
            continue
        z = (p["value"] - median) / mad
        if z > 3.5:
            flagged.append({"day": p["label"], "value": p["value"], "typical": median, "z": z})
    flagged.sort(key=lambda d: -d["z"])
    for item in flagged[:5]:
        item["drivers"] = _drivers(con, metric_plan, scope, item["day"])
    return {
        "metric": metric,
        "points": points,
        "typical": median,
        "days": flagged[:5],
        "flagged": len(flagged),
    }


def _drivers(con: duckdb.DuckDBPyConnection, plan: QueryPlan, scope: Scope, day: str) -> list[JSON]:
    """The feature and the model whose value on `day` exceeds their own typical day the most."""
    measure = MEASURES[plan.measure]
    found = []
    for dimension in ("feature", "model"):
        column = DIMENSION_COLUMNS[dimension]
        per_day = rows(
            con,
            f"SELECT {column}, strftime(ts, '%Y-%m-%d') AS d, {measure} FROM usage {scope.where} "
            "GROUP BY 1, 2",
            scope.params,
        )
        by_value: dict[Any, dict[str, float]] = {}
        for value, d, v in per_day:
            by_value.setdefault(value, {})[d] = float(v or 0.0)
        best = None
        every_day = {d for days in by_value.values() for d in days}
        for value, days in by_value.items():
            # a value absent on a day counts 0 there: a feature new on the spike day is its driver
            typical = _median([days.get(d, 0.0) for d in every_day])
            excess = days.get(day, 0.0) - typical
            if best is None or excess > best["excess"]:
                best = {"dimension": dimension, "key": value, "value": days.get(day, 0.0), "typical": typical,
                        "excess": excess}  # fmt: skip
        if best is not None and best["excess"] > 0:
            found.append(best)
    return found


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    if not n:
        return 0.0
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2


_HANDLERS = {
    "total": _total,
    "overview": _total,
    "breakdown": _breakdown,
    "share": _share,
    "top_requests": _top_requests,
    "percentiles": _percentiles,
    "slo": _slo,
    "unit_cost": _unit_cost,
    "compare": _compare,
    "trend": _trend,
    "forecast": _forecast,
    "capacity": _capacity,
    "anomalies": _anomalies,
}


def dimension_values(con: duckdb.DuckDBPyConnection, limit: int = 300) -> dict[str, list[str]]:
    """The values of every dimension in the data, most requests first (one scan for all of them)."""
    columns = list(DIMENSION_COLUMNS.items())
    sets = ", ".join(f"({column})" for _, column in columns)
    found = rows(
        con,
        f"SELECT {', '.join(c for _, c in columns)}, count(*) FROM usage GROUP BY GROUPING SETS ({sets})",
    )
    values: dict[str, list[tuple[int, str]]] = {d: [] for d, _ in columns}
    for row in found:
        for (dimension, _), value in zip(columns, row[:-1], strict=True):
            if value is not None:
                values[dimension].append((int(row[-1]), str(value)))
    ranked = {d: sorted(pairs, key=lambda pair: -pair[0])[:limit] for d, pairs in values.items() if pairs}
    return {d: [value for _, value in pairs] for d, pairs in ranked.items()}
