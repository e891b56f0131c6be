"""Rows an import already has in the user's other datasets, which it does not store again.

Two files often overlap: a gateway export of this week and one of this month, two pulls of a usage report.
A row counts once:
  - a row with a request id that another dataset of the user already holds is skipped;
  - a row of a bucketed source (a usage report: one record per time bucket and grouping keys, recognised by
    its `bucket_start` column) has no request id; it is identified by its bucket key, SHA-256 of the bucket
    start and every grouping column (model, project, API key, user, batch, ...; never a measure such as
    tokens, requests or cost), and skipped when another dataset holds that key. The keys of a bucketed
    dataset are kept beside its Parquet file, in `<dataset>.buckets.parquet`.
Repeats inside one file are kept: a repeated request id there links a retry to its failed call.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import duckdb

from tokenwise.usage.mapping import normalize
from tokenwise.usage.sources import Source, quote_literal

BUCKET_START = "bucketstart"
# Fields that measure a bucket rather than name it: never part of its key.
_MEASURE_FIELDS = ("ts", "end_ts", "input_tokens", "output_tokens", "cached_input_tokens", "latency_ms",
                   "latency_s", "cost_usd", "max_output_tokens", "status", "error", "prompt_text",
                   "prompt_hash")  # fmt: skip
_MEASURE_WORDS = ("token", "request", "cost", "amount", "spend", "price", "latency", "duration")


@dataclass(frozen=True)
class Known:
    """What the user's other datasets hold: their normalized Parquet files and their bucket-key files."""

    files: tuple[Path, ...] = ()
    bucket_files: tuple[Path, ...] = ()


@dataclass(frozen=True)
class Skipped:
    """How many rows of an import were already stored, by the rule that recognised them."""

    request_id: int = 0
    bucket: int = 0

    @property
    def total(self) -> int:
        return self.request_id + self.bucket


def keys_path(parquet: Path) -> Path:
    """Where the bucket keys of the dataset stored in `parquet` live."""
    return parquet.with_name(f"{parquet.stem}.buckets.parquet")


def bucket_key(source: Source, mapping: dict[str, str]) -> str | None:
    """SQL over the source of a row's bucket key; None when the source is not bucketed."""
    names = {normalize(name): name for name in source.names}
    if BUCKET_START not in names:
        return None
    measures = {mapping[field] for field in _MEASURE_FIELDS if field in mapping}
    grouping = [
        name
        for name in source.names
        if name not in measures
        and normalize(name) != BUCKET_START
        and not any(word in normalize(name) for word in _MEASURE_WORDS)
    ]
    parts = [names[BUCKET_START], *sorted(grouping)]
    # Unit and record separators keep ('a', 'bc') and ('ab', 'c') apart, and NULL apart from ''.
    values = ", ".join(
        f"{quote_literal(name)}, COALESCE(NULLIF(trim({source.columns[name]}), ''), chr(30))"
        for name in parts
    )
    return f"sha256(concat_ws(chr(31), {values}))"


class Overlap:
    """The rows of one source that are new, given what the user's other datasets hold."""

    def __init__(self, source: Source, mapping: dict[str, str], known: Known) -> None:
        self.source = source
        self.key = bucket_key(source, mapping)
        rid = None
        if "request_id" in mapping:
            rid = f"NULLIF(trim({source.columns[mapping['request_id']]}), '')"
        files = [os.fspath(path) for path in known.files]
        bucket_files = [os.fspath(path) for path in known.bucket_files if path.exists()]
        self._by_rid = "false"
        if rid is not None and files:
            stored = (
                f"SELECT request_id FROM read_parquet({_list(files)}, union_by_name = true) "  # noqa: S608
                "WHERE request_id IS NOT NULL"
            )
            self._by_rid = f"COALESCE({rid} IN ({stored}), false)"
        self._by_bucket = "false"
        if self.key is not None and bucket_files:
            stored = f"SELECT bucket_key FROM read_parquet({_list(bucket_files)})"  # noqa: S608
            without_id = f"{rid} IS NULL AND " if rid is not None else ""
            self._by_bucket = f"({without_id}COALESCE({self.key} IN ({stored}), false))"

    @property
    def active(self) -> bool:
        return self._by_rid != "false" or self._by_bucket != "false"

    def count(self, con: duckdb.DuckDBPyConnection) -> Skipped:
        """How many of the source's rows are already stored elsewhere (one pass over the source)."""
        if not self.active:
            return Skipped()
        query = (
            f"SELECT count(*) FILTER (WHERE {self._by_rid}), "  # noqa: S608
            f"count(*) FILTER (WHERE NOT ({self._by_rid}) AND {self._by_bucket}) FROM {self.source.relation}"
        )
        row = con.execute(query).fetchone()
        return Skipped(int(row[0]), int(row[1])) if row else Skipped()

    def new_rows(self) -> str:
        """A relation of the source's rows that are not stored yet (the source itself when none are)."""
        if not self.active:
            return self.source.relation
        keep = f"NOT ({self._by_rid}) AND NOT ({self._by_bucket})"
        return f"(SELECT * FROM {self.source.relation} WHERE {keep})"  # noqa: S608

    def write_keys(self, con: duckdb.DuckDBPyConnection, relation: str, target: str) -> None:
        """Write the distinct bucket keys of `relation` (the rows being stored) to Parquet at `target`."""
        assert self.key is not None
        query = f"SELECT DISTINCT {self.key} AS bucket_key FROM {relation}"  # noqa: S608
        con.execute(f"COPY ({query}) TO {quote_literal(target)} (FORMAT parquet)")


def _list(paths: list[str]) -> str:
    return "[" + ", ".join(quote_literal(path) for path in paths) + "]"
