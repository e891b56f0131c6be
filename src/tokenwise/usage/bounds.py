"""Bounds on what one uploaded file may cost: decompressed bytes (absolute and as a ratio) and rows.

A gzip file is decompressed once here, counting, before any reader sees it: a bomb (a few hundred KB
that inflate to gigabytes) is refused after `ratio` times its own size, and a file that is not gzip or
is cut short is refused with what is wrong, instead of failing deep inside the readers. The row limit
is exact: a Parquet file's footer says how many rows it has; CSV and JSON are counted by the first
validation pass, before anything is written.
"""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass
from pathlib import Path

import duckdb

from tokenwise.errors import InvalidInput, TooLarge

_CHUNK = 1024 * 1024
_RATIO_FROM = 16 * 1024 * 1024  # below this many decompressed bytes the ratio is not looked at


@dataclass(frozen=True)
class Bounds:
    """The limits of one import (Settings: max_dataset_rows, max_decompressed_bytes, …); rows per dataset."""

    max_rows: int = 20_000_000
    max_decompressed_bytes: int = 2 * 1024**3
    max_ratio: int = 100


def check_compressed(path: Path, bounds: Bounds) -> None:
    """For a `.gz` file: TooLarge over the decompression bounds, InvalidInput when it is not valid gzip."""
    if path.suffix != ".gz":
        return
    packed = path.stat().st_size
    limit = min(bounds.max_decompressed_bytes, max(_RATIO_FROM, bounds.max_ratio * packed))
    total = 0
    try:
        with gzip.open(path, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                total += len(chunk)
                if total > limit:
                    break
    except EOFError as exc:
        raise InvalidInput("could not read the gzip file: it is cut short (truncated)", field="file") from exc
    except (OSError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise InvalidInput(f"could not read the gzip file: {exc}", field="file") from exc
    if total <= limit:
        return
    if limit == bounds.max_decompressed_bytes:
        what = f"over {bounds.max_decompressed_bytes} bytes"
    else:
        what = f"over {bounds.max_ratio} times its compressed size of {packed} bytes"
    raise TooLarge(
        f"the file decompresses to {what}: refused before reading it (compress it less, or split it)",
        limit_bytes=limit,
    )


def check_parquet_rows(con: duckdb.DuckDBPyConnection, path: Path, bounds: Bounds) -> None:
    """A Parquet file with more rows than the limit, refused from its footer alone."""
    try:
        row = con.execute("SELECT sum(num_rows) FROM parquet_file_metadata(?)", [str(path)]).fetchone()
    except duckdb.Error:
        return  # not readable: the reader says why, in its own words
    if row and row[0] is not None:
        check_rows(int(row[0]), bounds)


def check_rows(rows: int, bounds: Bounds) -> None:
    """InvalidInput (422) when a file has more rows than one dataset may hold."""
    if rows > bounds.max_rows:
        raise InvalidInput(
            f"the file has {rows} rows, over the limit of {bounds.max_rows} rows per dataset: split it",
            field="file",
            limit_rows=bounds.max_rows,
        )


def check_stream_rows(stored: int, adding: int, bounds: Bounds) -> None:
    """InvalidInput (422) when a batch would take the workload-events dataset past the rows per dataset."""
    if stored + adding > bounds.max_rows:
        raise InvalidInput(
            f"the workload-events dataset holds {stored} rows: {adding} more would pass the limit of "
            f"{bounds.max_rows} rows per dataset; nothing was stored (delete the dataset to start afresh)",
            field="records",
            limit_rows=bounds.max_rows,
            stored_rows=stored,
        )
