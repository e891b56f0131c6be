"""A seeded usage log for the query and scenario tests: the rows as Python dicts (the ground truth is computed
from them in plain Python), written as one normalized Parquet file.

About 2,000 requests over 20 days (1-20 Nov 2025) on three priced models and one the price book does not
know; a reported cost on most rows (5 % above list, as a gateway's markup would be), none on the rest, so
the price book prices those; a spike day (12 Nov) of the `reporter` feature, which runs a little every
other day; a burst of six requests in one second; names with quotes and SQL metacharacters.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from tokenwise.analysis import ModelPrice, PriceTable
from tokenwise.usage.schema import COLUMNS

START = datetime(2025, 11, 1)
DAYS = 20
SPIKE_DAY = datetime(2025, 11, 12)
BURST_AT = datetime(2025, 11, 7, 10, 30, 15)
QUOTED_USER = "o'neil"
INJECTION_USER = "x'); DROP TABLE prices; --"
PRICES = {
    "big-model": ModelPrice("big-model", 2.5, 10.0, cached_input_per_mtok=1.25, batch_discount=0.5),
    "small-model": ModelPrice("small-model", 0.15, 0.6, cached_input_per_mtok=0.075, batch_discount=0.5),
    "mid-model": ModelPrice("mid-model", 1.0, 4.0),  # no cache discount, no batch API
    "tiny-model": ModelPrice("tiny-model", 0.1, 0.4, cached_input_per_mtok=0.025),  # only a route target
}
BOOK = PriceTable(PRICES.values())
FEATURES = ("faq-bot", "assistant", "classifier", "summarizer")
Row = dict[str, Any]


def list_cost(price: ModelPrice, inp: int, cached: int, out: int) -> float:
    cached_rate = price.input_per_mtok if price.cached_input_per_mtok is None else price.cached_input_per_mtok
    return ((inp - cached) * price.input_per_mtok + cached * cached_rate + out * price.output_per_mtok) / 1e6


def _row(rng: random.Random, i: int, ts: datetime, **fixed: Any) -> Row:
    model = rng.choices(("big-model", "small-model", "mid-model", "mystery-model"), (5, 8, 4, 0.2))[0]
    inp = rng.randint(50, 12_000)
    cached = min(inp, rng.choice((0, 0, 0, 512, 1024, 2048)))
    out = rng.randint(10, 1_500)
    row: Row = {
        "ts": ts,
        "model": model,
        "input_tokens": inp,
        "cached_input_tokens": cached,
        "output_tokens": out,
        "latency_ms": None if rng.random() < 0.03 else round(150 + out * 1.8 + rng.expovariate(1 / 400), 1),
        "is_error": rng.random() < 0.04,
        "feature": rng.choice(FEATURES),
        "user_tag": rng.choice([*(f"u-{k}" for k in range(1, 31)), QUOTED_USER, INJECTION_USER]),
        "team": rng.choice(("Alpha", "platform")),
        "project": rng.choice(("apollo", "zeus")),
        "api_key": rng.choice(("key-prod", "key-dev")),
        "request_id": f"req-{i:05d}",
        **fixed,
    }
    price = PRICES.get(row["model"])
    listed = (
        None
        if price is None
        else list_cost(price, row["input_tokens"], row["cached_input_tokens"], row["output_tokens"])
    )
    row["list_cost"] = listed
    row["cost_usd"] = None if listed is None or rng.random() < 0.3 else round(listed * 1.05, 9)
    return row


def generate(seed: int = 7, n: int = 1_900) -> list[Row]:
    rng = random.Random(seed)
    rows = [_row(rng, i, START + timedelta(seconds=rng.randrange(DAYS * 86400))) for i in range(n)]
    spike = [
        _row(
            rng,
            n + k,
            SPIKE_DAY + timedelta(seconds=rng.randrange(86400)),
            feature="reporter",
            model="big-model",
            input_tokens=20_000,
            cached_input_tokens=0,
            output_tokens=1_000,
        )
        for k in range(94)
    ]
    # reporter runs a little every day: the spike is its usual job gone wild
    daily = [
        _row(rng, n + 110 + k, START + timedelta(days=k, hours=9), feature="reporter", model="small-model")
        for k in range(DAYS)
        if START + timedelta(days=k) != SPIKE_DAY
    ]
    burst = [_row(rng, n + 100 + k, BURST_AT, output_tokens=700) for k in range(6)]
    return rows + spike + daily + burst


def write(rows: Iterable[Row], path: Path) -> Path:
    """The rows as a normalized Parquet file (columns the rows lack are NULL)."""
    names = [c.name for c in COLUMNS]
    with duckdb.connect() as con:
        con.execute("CREATE TABLE t (" + ", ".join(f"{c.name} {c.duckdb_type}" for c in COLUMNS) + ")")
        marks = ", ".join("?" for _ in names)
        con.executemany(f"INSERT INTO t VALUES ({marks})", [[r.get(c) for c in names] for r in rows])  # noqa: S608
        con.execute("COPY t TO $p (FORMAT parquet)", {"p": str(path)})
    return path


def cost(row: Row) -> float | None:
    """A row's cost as the truth has it: reported, else list-priced, else unknown."""
    return row["cost_usd"] if row["cost_usd"] is not None else row["list_cost"]


def select(
    rows: Iterable[Row], start: datetime | None = None, end: datetime | None = None, **equals: str
) -> list[Row]:
    """The rows in [start, end) whose columns equal the values (case-insensitively)."""
    return [
        r
        for r in rows
        if (start is None or r["ts"] >= start)
        and (end is None or r["ts"] < end)
        and all(r[k] is not None and r[k].lower() == v.lower() for k, v in equals.items())
    ]


def spend(rows: Iterable[Row]) -> float:
    return sum(c for r in rows if (c := cost(r)) is not None)


def span_days(rows: list[Row]) -> float:
    times = [r["ts"] for r in rows]
    return (max(times) - min(times)).total_seconds() / 86400


def group(rows: Iterable[Row], key: Callable[[Row], Any]) -> dict[Any, list[Row]]:
    out: dict[Any, list[Row]] = {}
    for r in rows:
        out.setdefault(key(r), []).append(r)
    return out
