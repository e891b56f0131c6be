"""Workload analysis: measurements and quantified savings strategies from normalized usage datasets.

`analyze(paths, prices)` reads the datasets with one DuckDB scan; figures come from SQL, never invented.
"""

from __future__ import annotations

from tokenwise.analysis.engine import Analysis, Point, Series, analyze
from tokenwise.analysis.measurements import Measurements
from tokenwise.analysis.pricing import NO_PRICES, ModelPrice, PriceBook, PriceTable
from tokenwise.analysis.profile import ModelRows, Profile, profile
from tokenwise.analysis.strategies import Strategy, StrategyType
from tokenwise.analysis.thresholds import Thresholds

__all__ = [
    "NO_PRICES",
    "Analysis",
    "Measurements",
    "ModelPrice",
    "ModelRows",
    "Point",
    "PriceBook",
    "PriceTable",
    "Profile",
    "Series",
    "Strategy",
    "StrategyType",
    "Thresholds",
    "analyze",
    "profile",
]
