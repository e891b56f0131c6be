"""Helpers for the usage tests: write a file, ingest it, read the normalized rows back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from tokenwise.usage.ingest import IngestResult, ingest
from tokenwise.usage.normalize import Options


def ingest_text(
    tmp_path: Path, name: str, text: str, *, options: Options | None = None, **kwargs: Any
) -> tuple[IngestResult, list[dict[str, Any]]]:
    """Write `text` to `name`, ingest it, and return the result and the stored rows as dicts."""
    source = tmp_path / name
    source.write_text(text, encoding="utf-8")
    return ingest_path(source, tmp_path / "out.parquet", options=options, **kwargs)


def ingest_path(
    source: Path, out: Path, *, options: Options | None = None, **kwargs: Any
) -> tuple[IngestResult, list[dict[str, Any]]]:
    result = ingest(source, out, options=options, **kwargs)
    return result, read_rows(out)


def read_rows(path: Path) -> list[dict[str, Any]]:
    relation = duckdb.sql(f"SELECT * FROM read_parquet('{path}')")  # noqa: S608
    names = [d[0] for d in relation.description]
    return [dict(zip(names, row, strict=True)) for row in relation.fetchall()]


def parquet_schema(path: Path) -> list[tuple[str, str]]:
    rows = duckdb.sql(f"DESCRIBE SELECT * FROM read_parquet('{path}')").fetchall()  # noqa: S608
    return [(str(r[0]), str(r[1])) for r in rows]
