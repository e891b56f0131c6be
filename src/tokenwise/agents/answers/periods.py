"""Answers about time: comparisons, trends, forecasts and the days that stand out."""

from __future__ import annotations

from tokenwise.agents.answers.words import (
    DIMENSION_NAMES,
    JSON,
    MEASURE_NAMES,
    MEASURE_UNITS,
    figure,
    fmt,
    label,
    pct,
    safe,
    subject,
    upper_first,
    when,
)
from tokenwise.analysis.plan import QueryPlan


def _rate(value: float, unit: str) -> str:
    """A slope: small counts per day keep two decimals (0.35 errors a day is not 0)."""
    if unit.startswith("usd") or unit in ("pct", "ms") or value >= 10:
        return fmt(value, unit)
    return f"{value:,.2f}"


def compare(plan: QueryPlan, result: JSON) -> JSON:
    unit = MEASURE_UNITS[plan.measure]
    name = MEASURE_NAMES[plan.measure]
    change = result.get("change") or {}
    delta, rel = change.get("absolute"), change.get("relative")
    direction = "up" if (delta or 0) > 0 else "down" if (delta or 0) < 0 else "unchanged"
    moved = f"{direction} {fmt(abs(delta), unit)}" if delta else "unchanged"
    relative = (
        f" ({'+' if (rel or 0) >= 0 else '-'}{pct(abs(100 * rel))})" if rel is not None and delta else ""
    )
    if result["kind"] == "period":
        assert plan.comparison is not None
        assert plan.comparison.period is not None
        later, earlier = result["later"], result["earlier"]
        a_when = when(plan)
        b_when = when(plan.model_copy(update={"period": plan.comparison.period}))
        from tokenwise.analysis.query import measure_value

        a, b = measure_value(later, plan.measure), measure_value(earlier, plan.measure)
        about = "" if not plan.filters else f" for {subject(plan)}"
        text = (
            f"{upper_first(name)}{about} {'were' if name.endswith('s') else 'was'} {fmt(a, unit)} "
            f"{a_when} vs "
            f"{fmt(b, unit)} {b_when}: "
            f"{moved}{relative}."
        )
        rows = [
            [label, later[key], earlier[key], (later[key] or 0) - (earlier[key] or 0)]
            for label, key in (("Requests", "requests"), ("Spend", "spend_usd"), ("Tokens", "tokens"),
                               ("Errors", "errors"))
        ]  # fmt: skip
        table = {
            "columns": [
                {"key": "measure", "label": "Measure", "unit": None},
                {"key": "later", "label": upper_first(a_when), "unit": None},
                {"key": "earlier", "label": upper_first(b_when), "unit": None},
                {"key": "change", "label": "Change", "unit": None},
            ],
            "rows": rows,
        }
        figures = [figure(a_when, a, unit), figure(b_when, b, unit), figure("Change", delta, unit),
                   figure("Change %", None if rel is None else 100 * rel, "pct")]  # fmt: skip
        return {"text": text, "figures": figures, "table": table}
    items = result["items"]
    from tokenwise.analysis.query import measure_value

    values = [(safe(i["value"], 80), measure_value(i["totals"], plan.measure)) for i in items]
    listed = " vs ".join(f"{v} {fmt(x, unit)}" for v, x in values)
    text = f"{upper_first(name)} {when(plan)}: {listed}"
    if len(values) == 2 and delta is not None:
        more = "more" if delta > 0 else "less"
        text += f"; {values[0][0]} is {fmt(abs(delta), unit)} {more}{relative}"
    text += "."
    figures = [figure(v, x, unit) for v, x in values]
    if delta is not None:
        figures += [
            figure("Difference", delta, unit),
            figure("Difference %", None if rel is None else 100 * rel, "pct"),
        ]
    return {"text": text, "figures": figures}


def trend(plan: QueryPlan, result: JSON) -> JSON:
    unit = MEASURE_UNITS[plan.measure]
    points = result["points"]
    grain = "hour" if result["grain"] == "hourly" else "day"
    first, last = points[0], points[-1]
    fit = result.get("fit")
    slope = (
        f"; the linear trend is {'+' if fit['slope'] >= 0 else '-'}{_rate(abs(fit['slope']), unit)} "
        f"per {grain}"
        if fit
        else ""
    )
    text = (
        f"{upper_first(MEASURE_NAMES[plan.measure])} per {grain} {when(plan, result['scope'])}"
        f"{' for ' + subject(plan) if plan.filters else ''}: {fmt(first['value'], unit)} on "
        f"{first['label']}, "
        f"{fmt(last['value'], unit)} on {last['label']}{slope}."
    )
    if result.get("value") is not None and unit not in ("pct", "ms"):
        text += f" Total {fmt(result['value'], unit)}."
    caption = f"{upper_first(MEASURE_NAMES[plan.measure])} per {grain}"
    series = {"kind": "line", "label": caption, "unit": unit, "points": points[-744:]}
    figures = [figure(f"First {grain}", first["value"], unit), figure(f"Last {grain}", last["value"], unit)]
    if fit:
        figures.append(figure(f"Trend per {grain}", fit["slope"], unit))
    if result.get("value") is not None:
        figures.append(figure("Total", result["value"], unit))
    return {"text": text, "figures": figures, "series": series}


def forecast(plan: QueryPlan, result: JSON) -> JSON:
    unit = MEASURE_UNITS[plan.measure]
    horizon = result["horizon"]
    label = (
        horizon["label"].split(" as ", 1)[-1] if horizon.get("label") else f"the next {horizon['days']} days"
    )
    fit = result["fit"]
    text = (
        f"Forecast for {label}: {fmt(result['forecast'], unit)} {MEASURE_NAMES[plan.measure]} "
        f"(95% range {fmt(result['low'], unit)} to {fmt(result['high'], unit)}), from a linear fit of daily "
        f"{MEASURE_NAMES[plan.measure]} over {result['history_days']} days (trend "
        f"{'+' if fit['slope'] >= 0 else '-'}{_rate(abs(fit['slope']), unit)} per day)."
    )
    text += f" A flat projection of the last 30 days would be {fmt(result['flat'], unit)}."
    figures = [figure("Forecast", result["forecast"], unit), figure("Low", result["low"], unit),
               figure("High", result["high"], unit), figure("Trend per day", fit["slope"], unit),
               figure("Flat projection", result["flat"], unit)]  # fmt: skip
    series = {"kind": "line", "label": f"Daily {MEASURE_NAMES[plan.measure]} (history)", "unit": unit,
              "points": result["points"][-366:]}  # fmt: skip
    return {"text": text, "figures": figures, "series": series}


def anomalies(plan: QueryPlan, result: JSON) -> JSON:
    metric = result["metric"]
    unit = MEASURE_UNITS[metric]
    name = MEASURE_NAMES[metric]
    series = {
        "kind": "line",
        "label": f"{upper_first(name)} per day",
        "unit": unit,
        "points": result["points"][-366:],
    }
    if not result["days"]:
        text = (
            f"No day stands out in {name} {when(plan, result['scope'])}: every day is within 3.5 robust "
            f"standard deviations of the typical {fmt(result['typical'], unit)}."
        )
        return {"text": text, "figures": [figure("Typical day", result["typical"], unit)], "series": series}
    parts, figures = [], [figure("Typical day", result["typical"], unit)]
    for day in result["days"][:3]:
        drivers = "; ".join(
            f"{DIMENSION_NAMES.get(d['dimension'], d['dimension'])} {label(d['key'])} "
            f"{fmt(d['value'], unit)} vs a typical {fmt(d['typical'], unit)}"
            for d in day.get("drivers", [])
        )
        parts.append(
            f"{day['day']} ({fmt(day['value'], unit)} vs a typical {fmt(result['typical'], unit)}; {drivers})"
        )
        figures.append(figure(day["day"], day["value"], unit))
        figures += [
            figure(f"{label(d['key'])} on {day['day']}", d["value"], unit) for d in day.get("drivers", [])
        ]
    stand = "days stand" if len(result["days"]) != 1 else "day stands"
    text = f"{len(result['days'])} {stand} out in {name}: {', '.join(parts)}."
    return {"text": text, "figures": figures, "series": series}
