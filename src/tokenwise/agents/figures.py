"""How figures are written in thoughts and reports, in one place: a number reads the same everywhere."""

from __future__ import annotations

import math


def usd(value: float | None) -> str:
    """`$1,234.56`; amounts under a dollar keep at least three significant digits (`$0.000345`);
    `unknown` when not measured."""
    if value is None:
        return "unknown"
    if abs(value) >= 1 or value == 0:
        return f"-${-value:,.2f}" if value < 0 else f"${value:,.2f}"
    decimals = max(4, 2 - math.floor(math.log10(abs(value))))
    return f"-${-value:.{decimals}f}" if value < 0 else f"${value:.{decimals}f}"


def count(value: float | int | None) -> str:
    """`1,234` (rounded to a whole number)."""
    return "unknown" if value is None else f"{round(value):,}"


def pct(value: float | None, digits: int = 1) -> str:
    """`12.3%`; shares under 10% keep three significant digits (`3.21%`, `0.450%`)."""
    if value is None:
        return "unknown"
    if value != 0 and abs(value) < 10 and digits >= 1:
        digits = max(digits, 2 - math.floor(math.log10(abs(value))))
    return f"{value:.{digits}f}%"


def rate(value: float | None) -> str:
    """`12.3` for rates such as requests or tokens per second."""
    if value is None:
        return "unknown"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"


def days(value: float | None) -> str:
    """`7.0 days`, or `3.2 hours` under a day."""
    if value is None:
        return "unknown"
    return f"{value:.1f} days" if value >= 1 else f"{value * 24:.1f} hours"


def fmt(value: float | None, unit: str | None) -> str:
    """A figure as the answer writes it, by unit."""
    if value is None:
        return "unknown"
    if unit and unit.startswith("usd"):
        return usd(value) + (" a month" if unit == "usd_per_month" else "")
    if unit == "pct":
        return pct(value)
    if unit == "ms":
        return f"{count(value)} ms"
    if unit in ("requests_per_s", "tokens_per_s"):
        return f"{value:,.2f}" if value < 10 else count(value)
    return count(value)
