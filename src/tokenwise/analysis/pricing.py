"""Model prices as the analysis needs them, and the one interface a price table must offer.

The analysis never reads a price file itself: it asks a `PriceBook` for the price of each model it finds
in the data. Ingestion's shipped, dated price table satisfies the protocol; `PriceTable` is the plain
in-memory implementation (a user override file, tests).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class ModelPrice:
    """List prices of one model in $ per 1M tokens."""

    model: str
    input_per_mtok: float
    output_per_mtok: float
    # None: the provider gives no discount on cached input (cached tokens cost the input price).
    cached_input_per_mtok: float | None = None
    # Fraction taken off input and output prices by the provider's batch API (0.5 = half price).
    batch_discount: float = 0.0
    provider: str | None = None
    # The same provider's cheaper tier that short, simple requests can be routed to (gpt-4o -> gpt-4o-mini).
    cheaper_tier: str | None = None
    as_of: str | None = None
    source: str | None = None
    # $ per 1M tokens written to the prompt cache (5-minute / unspecified lifetime, and 1-hour lifetime);
    # None: writes cost the input price (OpenAI), or for 1-hour writes, the 5-minute write price.
    cache_write_per_mtok: float | None = None
    cache_write_1h_per_mtok: float | None = None

    @property
    def cached_rate(self) -> float:
        """$ per 1M cached input tokens (the input price when the provider has no cache discount)."""
        return self.input_per_mtok if self.cached_input_per_mtok is None else self.cached_input_per_mtok

    @property
    def cache_write_rate(self) -> float:
        """$ per 1M tokens written to the 5-minute (or unspecified) prompt cache."""
        return self.input_per_mtok if self.cache_write_per_mtok is None else self.cache_write_per_mtok

    @property
    def cache_write_1h_rate(self) -> float:
        """$ per 1M tokens written to the 1-hour prompt cache."""
        return self.cache_write_rate if self.cache_write_1h_per_mtok is None else self.cache_write_1h_per_mtok


class PriceBook(Protocol):
    """Anything that can price a model by name; None means the model is not in the table."""

    def price(self, model: str) -> ModelPrice | None: ...


class PriceTable:
    """A `PriceBook` over an in-memory set of prices."""

    def __init__(self, prices: Iterable[ModelPrice]) -> None:
        self._prices: Mapping[str, ModelPrice] = {p.model: p for p in prices}

    def price(self, model: str) -> ModelPrice | None:
        return self._prices.get(model)


NO_PRICES = PriceTable(())
