"""A savings strategy, and the context every strategy finder reads."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import duckdb

from tokenwise.analysis.measurements import Measurements
from tokenwise.analysis.thresholds import Thresholds

StrategyType = Literal[
    "model_routing",
    "prompt_caching",
    "response_caching",
    "batching",
    "output_cap",
    "context_trimming",
    "retry_waste",
    "capacity",
]
Confidence = Literal["high", "medium", "low"]
Evidence = dict[str, float | int | str | None]


@dataclass(frozen=True)
class Strategy:
    """One recommendation: what it saves per month, on which assumptions, and the numbers behind it."""

    type: StrategyType
    title: str
    # None: the saving cannot be priced (e.g. capacity of a self-hosted model without a price)
    monthly_savings_usd: float | None
    # percent of the total monthly spend
    savings_pct: float | None
    assumptions: list[str]
    confidence: Confidence
    risk: str
    evidence: Evidence = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class Context:
    """The loaded `usage` table, its measurements and the thresholds, as every finder sees them."""

    con: duckdb.DuckDBPyConnection
    measurements: Measurements
    thresholds: Thresholds

    @property
    def scale(self) -> float:
        """Factor from the observed period to a month."""
        period = self.measurements.period
        return self.thresholds.month_days / period.days if period else 0.0

    @property
    def monthly_spend(self) -> float | None:
        spend = self.measurements.spend_usd
        return None if spend is None else spend * self.scale

    def month_note(self) -> str:
        period = self.measurements.period
        days = period.days if period else 0.0
        return f"Monthly = the observed {days:.2f} days scaled to {self.thresholds.month_days:g} days."

    def priced(
        self,
        kind: StrategyType,
        title: str,
        observed_savings: float | None,
        *,
        assumptions: list[str],
        confidence: Confidence,
        risk: str,
        evidence: Evidence,
    ) -> Strategy | None:
        """A strategy saving `observed_savings` $ over the period, or None when there is nothing to save."""
        if observed_savings is None:
            return None
        monthly = observed_savings * self.scale
        if monthly < self.thresholds.min_monthly_savings_usd:
            return None
        spend = self.monthly_spend
        return Strategy(
            type=kind,
            title=title,
            monthly_savings_usd=monthly,
            savings_pct=100 * monthly / spend if spend else None,
            assumptions=[*assumptions, self.month_note()],
            confidence=confidence,
            risk=risk,
            evidence={"observed_savings_usd": round(observed_savings, 4), **evidence},
        )
