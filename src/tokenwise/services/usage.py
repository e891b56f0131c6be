"""The usage source of a user without data: honest zeros, so the agents ask for data."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

from tokenwise.analysis.pricing import NO_PRICES, PriceBook
from tokenwise.analysis.sql import Engine


class NoUsageData:
    """The usage source of a user without datasets."""

    prices: PriceBook = NO_PRICES
    engine: Engine | None = None

    async def parquet_paths(self, only: Collection[str] | None = None) -> list[Path]:
        return []

    async def default_models(self) -> dict[str, str]:
        return {}

    async def datasets(self) -> list[dict[str, Any]]:
        return []

    async def excluded(self) -> list[dict[str, Any]]:
        return []
