"""The typed query plan: what a question asks of the usage data, as data rather than SQL.

Triage turns a question (and its thread's context) into a `QueryPlan`; the data agent executes it with
DuckDB (`analysis.query`), with every user-supplied value bound as a parameter, never spliced into SQL.
The same schema is offered to an optional language model as a tool's parameters (`plan_json_schema`), so
whatever proposes a plan is validated by one set of rules.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# Dimensions a filter or a breakdown can name, and the `usage` column behind each.
Dimension = Literal["model", "feature", "user", "team", "project", "api_key", "provider"]
DIMENSION_COLUMNS: dict[str, str] = {
    "model": "model",
    "feature": "feature",
    "user": "user_tag",
    "team": "team",
    "project": "project",
    "api_key": "api_key",
    "provider": "provider",
}
TimeGrain = Literal["hour", "day", "weekday", "week", "month"]
GroupBy = Literal["model", "feature", "user", "team", "project", "api_key", "provider"] | TimeGrain

Measure = Literal[
    "spend",
    "requests",
    "input_tokens",
    "output_tokens",
    "tokens",
    "cached_input_tokens",
    "errors",
    "error_rate",
    "latency_ms",
    "cost_per_request",
]
Intent = Literal[
    "total",  # one figure (or a few) for a filtered scope
    "breakdown",  # a measure grouped by a dimension or a time grain, ranked
    "share",  # what share of the total a value takes
    "top_requests",  # the most expensive / slowest / largest requests
    "compare",  # period vs period, or value vs value
    "trend",  # a time series
    "forecast",  # a future period from the trend
    "unit_cost",  # cost per request / 1k requests / user / feature / 1M tokens
    "percentiles",  # p50/p90/p95/p99 of latency or size
    "slo",  # how many requests cross a threshold
    "what_if",  # a priced scenario
    "capacity",  # tokens/s and requests/s at peak and p99
    "anomalies",  # days or hours that stand out
    "optimize",  # the savings strategies report
    "overview",  # everything measured, no single figure asked for
]
RankBy = Literal["cost", "latency_ms", "tokens", "input_tokens", "output_tokens"]
Unit = Literal["request", "1k_requests", "user", "feature", "1m_tokens", "day"]  # day: a daily average
ScenarioKind = Literal[
    "route", "output_cap", "cache_hit", "prompt_cache", "batch", "trim_context", "price_change", "growth"
]

_STRICT = ConfigDict(extra="forbid", frozen=True)


class Filter(BaseModel):
    """Rows whose `dimension` is one of `values` (or none of them with `exclude`)."""

    model_config = _STRICT
    dimension: Dimension
    values: list[str] = Field(min_length=1, max_length=20)
    exclude: bool = False


class Period(BaseModel):
    """[start, end) in UTC; either bound may be open. `label` is how the question's words were read."""

    model_config = _STRICT
    start: datetime | None = None
    end: datetime | None = None
    label: str = Field(default="", max_length=200)

    @model_validator(mode="after")
    def _ordered(self) -> Period:
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError("period end must be after its start")
        return self


class Comparison(BaseModel):
    """What the scope is compared with: another period, or other values of a dimension."""

    model_config = _STRICT
    kind: Literal["period", "values"]
    period: Period | None = None  # kind=period: the earlier period (the plan's `period` is the later one)
    dimension: Dimension | None = None  # kind=values
    values: list[str] = Field(default_factory=list, max_length=10)

    @model_validator(mode="after")
    def _complete(self) -> Comparison:
        if self.kind == "period" and self.period is None:
            raise ValueError("a period comparison needs the other period")
        if self.kind == "values" and (self.dimension is None or len(self.values) < 2):
            raise ValueError("a comparison of values needs a dimension and at least two values")
        return self


class Threshold(BaseModel):
    """An SLO-style condition: requests whose `measure` is over (or under) `value`."""

    model_config = _STRICT
    measure: Literal["latency_ms", "input_tokens", "output_tokens", "cost"]
    op: Literal[">", "<"] = ">"
    value: float = Field(ge=0)


class Scenario(BaseModel):
    """A what-if, priced over the plan's scope (its filters and period)."""

    model_config = _STRICT
    kind: ScenarioKind
    share_pct: float = Field(default=100.0, gt=0, le=100)  # of the scope's traffic that changes
    condition: Literal["all", "short"] = "all"  # "short": only requests of the scope under its median size
    target_model: str | None = Field(default=None, max_length=100)  # route
    max_output_tokens: int | None = Field(default=None, ge=1)  # output_cap
    hit_rate_pct: float | None = Field(default=None, gt=0, le=100)  # cache_hit
    prefix_tokens: int | None = Field(default=None, ge=1)  # prompt_cache
    max_input_tokens: int | None = Field(default=None, ge=1)  # trim_context
    price_change_pct: float | None = Field(default=None, ge=-100, le=1000)  # price_change
    growth_pct: float | None = Field(default=None, ge=-100, le=10000)  # growth

    @model_validator(mode="after")
    def _parameters(self) -> Scenario:
        needed = {
            "route": "target_model",
            "output_cap": "max_output_tokens",
            "cache_hit": "hit_rate_pct",
            "trim_context": "max_input_tokens",
            "price_change": "price_change_pct",
            "growth": "growth_pct",
        }.get(self.kind)
        if needed is not None and getattr(self, needed) is None:
            raise ValueError(f"a {self.kind} scenario needs {needed}")
        return self


class UnknownName(BaseModel):
    """A name in the question that matches nothing in the data, with the closest known ones."""

    model_config = _STRICT
    text: str = Field(max_length=100)
    dimension: Dimension | None = None
    suggestions: list[str] = Field(default_factory=list, max_length=5)


class QueryPlan(BaseModel):
    """Everything the data agent needs to answer one question."""

    model_config = _STRICT
    intent: Intent
    measure: Measure = "spend"
    filters: list[Filter] = Field(default_factory=list, max_length=10)
    period: Period | None = None
    group_by: GroupBy | None = None
    top_n: int | None = Field(default=None, ge=1, le=100)
    order: Literal["desc", "asc"] = "desc"
    rank_by: RankBy = "cost"
    comparison: Comparison | None = None
    percentiles: list[float] = Field(default_factory=lambda: [50.0, 90.0, 95.0, 99.0], max_length=8)
    threshold: Threshold | None = None
    scenario: Scenario | None = None
    horizon_days: int | None = Field(default=None, ge=1, le=366)  # forecast
    horizon: Period | None = None  # forecast: the future period, when the question names one
    unit: Unit | None = None
    # How ambiguous words were read ("reading 'last week' as 24-30 Nov 2025"), stated in the answer.
    readings: list[str] = Field(default_factory=list, max_length=10)
    unknown: list[UnknownName] = Field(default_factory=list, max_length=10)
    # Parts of the question usage data cannot answer ("carbon footprint"): the answer says so.
    unanswerable: list[str] = Field(default_factory=list, max_length=5)
    # Targets the optimisation report checks (cut spend by N %, a budget, a latency SLO).
    reduction_pct: float | None = Field(default=None, gt=0, le=100)
    budget_usd: float | None = Field(default=None, gt=0)
    source: Literal["built-in", "language_model"] = "built-in"

    @model_validator(mode="after")
    def _consistent(self) -> QueryPlan:
        if self.intent == "what_if" and self.scenario is None:
            raise ValueError("a what_if plan needs a scenario")
        if self.intent == "compare" and self.comparison is None:
            raise ValueError("a compare plan needs a comparison")
        if self.intent == "slo" and self.threshold is None:
            raise ValueError("an slo plan needs a threshold")
        if any(not 0 < p < 100 for p in self.percentiles):
            raise ValueError("percentiles must be between 0 and 100")
        return self

    def arguments(self) -> dict[str, Any]:
        """The plan as a tool call's arguments: JSON, without the defaults nobody asked for."""
        return self.model_dump(mode="json", exclude_defaults=True) | {"intent": self.intent}


def plan_json_schema() -> dict[str, Any]:
    """The JSON schema of a plan, for a language model's tool (function) parameters."""
    return QueryPlan.model_json_schema()
