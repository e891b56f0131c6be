"""A user's workload data as the agents see it. Datasets arrive with ingestion; until then there is none."""

from __future__ import annotations

from pathlib import Path


class NoUsageData:
    """The usage source before any dataset exists: honest zeros, so the agents ask for data."""

    async def dataset_count(self) -> int:
        return 0

    async def row_count(self) -> int:
        return 0

    async def parquet_paths(self) -> list[Path]:
        return []

    async def default_models(self) -> dict[str, str]:
        return {}
