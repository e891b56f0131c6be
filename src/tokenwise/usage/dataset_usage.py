"""One user's datasets as the agents and the analysis read them (the `UsageSource` of a run)."""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokenwise.analysis.sql import Engine
from tokenwise.db.tables import DatasetRow
from tokenwise.usage.datasets import dataset_json
from tokenwise.usage.prices import PriceList

if TYPE_CHECKING:
    from tokenwise.usage.datasets import Datasets


class DatasetUsage:
    """One user's datasets as the agents and the analysis see them (implements agents.base.UsageSource).

    Only the datasets the user includes (`included`, the data page's checkbox) are read; the excluded
    ones are only named, so that an answer can say what it left out. The dataset rows are read once per
    instance: one run sees one consistent set of files.
    """

    def __init__(self, datasets: Datasets, user_id: str) -> None:
        self._datasets, self.user_id = datasets, user_id
        # The price book the analysis should use: the user's own once the rows are read (every tool
        # reads the files first), so one run prices with one book even if the user changes a price.
        self.prices: PriceList = datasets.prices
        self.engine: Engine = datasets.engine
        self._rows: list[DatasetRow] | None = None

    async def _all(self) -> list[DatasetRow]:
        if self._rows is None:
            rows = await self._datasets.list(self.user_id)
            if self._datasets.prices_for is not None:
                self.prices = await self._datasets.prices_for(self.user_id)
            self._rows = rows  # only now: a concurrent reader never sees rows without their prices
        return self._rows

    async def _included(self) -> list[DatasetRow]:
        return [row for row in await self._all() if row.included is not False]

    async def row_count(self) -> int:
        return sum(row.row_count for row in await self._included())

    async def datasets(self) -> list[dict[str, Any]]:
        """Each included dataset as the API shows it (name, format, rows, period, model, mapping, grain)."""
        return [dataset_json(row) for row in await self._included()]

    async def excluded(self) -> list[dict[str, Any]]:
        """The datasets the user left out of their questions, as the API shows them."""
        return [dataset_json(row) for row in await self._all() if row.included is False]

    async def parquet_paths(self, only: Collection[str] | None = None) -> list[Path]:
        """The normalized Parquet files of the included datasets (of those whose id is in `only`, if given),
        absolute paths, all with `schema.COLUMNS`."""
        rows = [row for row in await self._included() if only is None or row.id in only]
        return [path for row in rows for path in self._datasets.files_of(row)]

    async def default_models(self) -> dict[str, str]:
        """`os.fspath(path) -> model` of files whose dataset names a model (for rows that name none)."""
        return {
            os.fspath(path): row.model
            for row in await self._included()
            if row.model
            for path in self._datasets.files_of(row)
        }
