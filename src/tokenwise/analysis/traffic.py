"""Request rate, peaks and burstiness of the usage table."""

from __future__ import annotations

import math
from dataclasses import dataclass

import duckdb

from tokenwise.analysis.sql import one

_BUCKETS = """
SELECT max(n), sum(n), sum(n * n)::DOUBLE,
    date_diff('{unit}', date_trunc('{unit}', min(b)), date_trunc('{unit}', max(b))) + 1
FROM (SELECT date_trunc('{unit}', ts) AS b, count(*) AS n FROM usage {where} GROUP BY 1)
"""


@dataclass(frozen=True)
class Rate:
    """Requests per second and per minute over the period; empty seconds and minutes count as 0."""

    mean_per_second: float
    mean_per_minute: float
    peak_per_second: int
    peak_per_minute: int
    # peak / mean requests per minute
    burstiness: float
    # coefficient of variation (population std / mean) of the per-minute request counts
    cv_per_minute: float


@dataclass(frozen=True)
class Buckets:
    """Request counts per time bucket (second or minute), empty buckets included."""

    peak: int
    total: int
    count: int
    mean: float
    cv: float


def buckets(con: duckdb.DuckDBPyConnection, unit: str, where: str = "") -> Buckets:
    """Per-`unit` request counts of the usage rows matching `where` (a SQL WHERE clause or '')."""
    peak, total, squares, count = one(con, _BUCKETS.format(unit=unit, where=where))
    if not total:
        return Buckets(0, 0, 0, 0.0, 0.0)
    mean = total / count
    variance = max(squares / count - mean * mean, 0.0)
    return Buckets(int(peak), int(total), int(count), mean, math.sqrt(variance) / mean)


def rate(con: duckdb.DuckDBPyConnection) -> Rate:
    """The request rate of the whole usage table."""
    seconds = buckets(con, "second")
    minutes = buckets(con, "minute")
    return Rate(
        mean_per_second=seconds.mean,
        mean_per_minute=minutes.mean,
        peak_per_second=seconds.peak,
        peak_per_minute=minutes.peak,
        burstiness=minutes.peak / minutes.mean if minutes.mean else 0.0,
        cv_per_minute=minutes.cv,
    )
