"""Savings strategies: each finder returns a quantified `Strategy`, or None when the data shows no need."""

from __future__ import annotations

from collections.abc import Callable

from tokenwise.analysis.strategies.batching import batching
from tokenwise.analysis.strategies.caching import prompt_caching, response_caching
from tokenwise.analysis.strategies.capacity import capacity
from tokenwise.analysis.strategies.context import context_trimming
from tokenwise.analysis.strategies.outputs import output_cap
from tokenwise.analysis.strategies.retries import retry_waste
from tokenwise.analysis.strategies.routing import model_routing
from tokenwise.analysis.strategies.strategy import Context, Strategy, StrategyType

__all__ = ["FINDERS", "Context", "Strategy", "StrategyType", "propose"]

FINDERS: tuple[Callable[[Context], Strategy | None], ...] = (
    model_routing,
    prompt_caching,
    response_caching,
    batching,
    output_cap,
    context_trimming,
    retry_waste,
    capacity,
)


def propose(ctx: Context) -> list[Strategy]:
    """Every strategy the data supports, largest monthly saving first (unpriced ones last)."""
    found = [s for s in (finder(ctx) for finder in FINDERS) if s is not None]
    return sorted(found, key=lambda s: (s.monthly_savings_usd is None, -(s.monthly_savings_usd or 0.0)))
