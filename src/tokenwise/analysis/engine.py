"""`analyze`: measurements, strategies, chart series and notes for a user's normalized usage datasets."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from tokenwise.analysis.measurements import Measurements, measure
from tokenwise.analysis.pricing import PriceBook
from tokenwise.analysis.source import Loaded, load
from tokenwise.analysis.sql import Engine, connect
from tokenwise.analysis.strategies import Context, Strategy, propose
from tokenwise.analysis.thresholds import Thresholds
from tokenwise.errors import InvalidInput

# Prices older than this (relative to `now`) are flagged in the notes.
STALE_PRICE_DAYS = 180


@dataclass(frozen=True)
class Point:
    """One point of a chart series."""

    label: str
    value: float | None


@dataclass(frozen=True)
class Series:
    """Chart-ready series; values are None where spend is unknown (unpriced)."""

    spend_by_model: list[Point]
    spend_by_day: list[Point]
    requests_by_hour: list[Point]
    savings_by_strategy: list[Point]


@dataclass(frozen=True)
class Analysis:
    """The whole result: what was measured, what to do about it (largest saving first), and caveats."""

    measurements: Measurements
    strategies: list[Strategy]
    series: Series
    notes: list[str]
    generated_at: str
    thresholds: Thresholds = field(default_factory=Thresholds)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: measurements, strategies, series, notes, generated_at, thresholds."""
        return asdict(self)


def analyze(
    paths: Sequence[str | os.PathLike[str]],
    prices: PriceBook,
    default_models: Mapping[str, str] | None = None,
    *,
    now: datetime | None = None,
    thresholds: Thresholds | None = None,
    period: tuple[datetime | None, datetime | None] = (None, None),
    engine: Engine | None = None,
) -> Analysis:
    """Analyze normalized Parquet datasets; `default_models` maps a path to the model its rows lack.

    `period` limits the analysis to requests in [start, end) (either bound may be None).
    """
    if not paths:
        raise InvalidInput("The analysis needs at least one dataset.", field="paths")
    rules = thresholds or Thresholds()
    now = now or datetime.now(UTC)
    con = connect(engine)
    try:
        loaded = load(con, paths, prices, default_models, period)
        measurements = measure(con, rules.retry_window_s)
        strategies = propose(Context(con, measurements, rules)) if measurements.requests else []
    finally:
        con.close()
    return Analysis(
        measurements=measurements,
        strategies=strategies,
        series=_series(measurements, strategies),
        notes=_notes(measurements, loaded, rules, now),
        generated_at=now.isoformat(),
        thresholds=rules,
    )


def _series(m: Measurements, strategies: list[Strategy]) -> Series:
    return Series(
        spend_by_model=[Point(g.key or "(no model)", g.spend_usd) for g in m.models],
        spend_by_day=[Point(g.key or "", g.spend_usd) for g in m.by_day],
        requests_by_hour=[Point(g.key or "", float(g.requests)) for g in m.by_hour],
        savings_by_strategy=[Point(s.type, s.monthly_savings_usd) for s in strategies],
    )


def _notes(m: Measurements, loaded: Loaded, rules: Thresholds, now: datetime) -> list[str]:
    notes: list[str] = []
    if m.requests == 0:
        return ["The datasets hold no requests: there is nothing to measure."]
    if m.period:
        notes.append(
            f"Observed {m.period.days:.2f} days ({m.period.start} to {m.period.end}); monthly figures scale "
            f"them to {rules.month_days:g} days."
        )
        if m.period.days < 1:
            notes.append(
                "Less than a day was observed: monthly figures assume this traffic goes on around the "
                "clock, so read them as an upper bound until a longer period is uploaded."
            )
    dates = sorted({p.as_of for p in loaded.prices.values() if p.as_of})
    if dates:
        notes.append(f"Prices as of {', '.join(dates)} (price book), unless the data reported a cost.")
        age = _age_days(dates[0], now)
        if age is not None and age > STALE_PRICE_DAYS:
            notes.append(
                f"The oldest price used is {age} days old: check it against the provider's price list."
            )
    if m.reported_cost_requests:
        notes.append(
            f"{m.reported_cost_requests:,} of {m.requests:,} requests carry the cost reported in the data; "
            f"the other {m.requests - m.reported_cost_requests:,} are priced from the price book where it "
            "has the model."
        )
    for model, count in sorted(loaded.unpriced.items(), key=lambda item: -item[1]):
        if model is None:
            notes.append(
                f"{count:,} requests have no model name: name the model of their dataset to price them."
            )
        else:
            notes.append(
                f"{count:,} requests from model {model} were unpriced (no price and no reported cost)."
            )
    if m.spend_usd is not None and m.unpriced_requests:
        notes.append("Spend and savings cover the priced requests only.")
    if m.duplicates is None:
        notes.append("No prompt hashes: exact duplicates and shared prefixes cannot be measured.")
    notes.append(
        "Strategies can overlap (one request may be a duplicate and on an oversized model): their "
        "savings are not additive."
    )
    return notes


def _age_days(as_of: str, now: datetime) -> int | None:
    try:
        return (now.date() - date.fromisoformat(as_of[:10])).days
    except ValueError:
        return None
