"""Ingest a usage file into one normalized Parquet file: detect, validate everything, then write atomically.

DuckDB does the work in bulk (no Python loop over rows): one pass validates every value and measures the
timestamps, a second writes the Parquet file. On any invalid value nothing is written and the error names
the first bad line, its column and what was expected. Python reads the file only on that error path, to
turn the bad record's position into a physical line number.
"""

from __future__ import annotations

import csv
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from tokenwise.errors import Conflict, InvalidInput
from tokenwise.usage import bounds as bounds_mod
from tokenwise.usage import mapping as mapping_mod
from tokenwise.usage.bounds import Bounds
from tokenwise.usage.mapping import Detection
from tokenwise.usage.normalize import EXPECTED, Check, Options, Plan, TimeScale, time_scale
from tokenwise.usage.overlap import Known, Overlap, Skipped, keys_path
from tokenwise.usage.sources import Source, detect_kind, open_source, open_text, quote_literal, read_error

Position = Callable[[int], tuple[str, dict[str, int]]]  # 0-based record -> ("line 17", {"line": 17})
_MAX_FIELD = 2**31 - 1


@dataclass(frozen=True)
class IngestResult:
    """What an import produced: where the rows came from, how they were read, and how many."""

    kind: str
    detection: Detection
    row_count: int
    period_start: datetime | None
    period_end: datetime | None
    bytes: int
    time_meaning: str
    # Rows already stored in the user's other datasets, not stored again.
    skipped: Skipped = field(default_factory=Skipped)
    bucket_keys: bool = False  # a bucket-key file was written beside the Parquet file (`keys_path`)

    def describe(self) -> dict[str, Any]:
        return {**self.detection.describe(), "source_format": self.kind, "timestamps": self.time_meaning}


def connect(work_dir: Path | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection in UTC, spilling to `work_dir` when memory runs short."""
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    if work_dir is not None:
        work_dir.mkdir(parents=True, exist_ok=True)
        con.execute(f"SET temp_directory = {quote_literal(str(work_dir))}")
    return con


def inspect(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    filename: str | None = None,
    override: dict[str, str | None] | None = None,
    kind: str | None = None,
    bounds: Bounds | None = None,
) -> tuple[Source, Detection]:
    """Open the file and detect its format and mapping (nothing is validated yet).

    A file over `bounds` (decompressed size, a Parquet footer's rows) is refused before it is read."""
    bounds = bounds or Bounds()
    bounds_mod.check_compressed(path, bounds)
    kind = kind or detect_kind(path, filename)
    if kind == "parquet":
        bounds_mod.check_parquet_rows(con, path, bounds)
    source = open_source(con, path, kind)
    return source, mapping_mod.detect(source.names, override)


def ingest(
    path: Path,
    out_path: Path,
    *,
    filename: str | None = None,
    options: Options | None = None,
    override: dict[str, str | None] | None = None,
    kind: str | None = None,
    position: Position | None = None,
    work_dir: Path | None = None,
    known: Known | None = None,
    bounds: Bounds | None = None,
) -> IngestResult:
    """Validate `path` and write its rows, normalized, to `out_path`; all or nothing.

    Rows that `known` (the user's other datasets) already holds are validated but not stored again; a
    bucketed source also gets its bucket keys written to `keys_path(out_path)`. A file over `bounds`
    is refused before anything is written.
    """
    options = options or Options()
    con = connect(work_dir)
    try:
        bounds = bounds or Bounds()
        source, detection = inspect(con, path, filename, override, kind, bounds)
        mapping_mod.require(detection)
        plan = Plan(source, detection, options)
        rows, max_ts = validate(con, plan, position or position_of(source))
        bounds_mod.check_rows(rows, bounds)
        if rows == 0:
            raise InvalidInput("the file has no data rows", field="file")
        fmt = detection.format
        scale = time_scale(max_ts, relative=fmt is not None and fmt.relative_time)
        overlap = Overlap(source, detection.mapping, known or Known())
        try:
            skipped = overlap.count(con)
        except duckdb.Error as exc:
            raise read_error(exc, source.kind) from exc
        if skipped.total >= rows:
            raise Conflict(
                f"all {rows} rows of the file are already stored in your other datasets "
                f"({_skipped_words(skipped)}): nothing new to import",
                skipped_rows=_skipped_json(skipped),
            )
        start, end, size, stored = _write(con, plan, scale, out_path, overlap)
        result = IngestResult(source.kind, detection, stored, start, end, size, scale.meaning)
        return replace(result, skipped=skipped, bucket_keys=overlap.key is not None)
    finally:
        con.close()


def _skipped_words(skipped: Skipped) -> str:
    parts = []
    if skipped.request_id:
        parts.append(f"{skipped.request_id} by request id")
    if skipped.bucket:
        parts.append(f"{skipped.bucket} by bucket and grouping keys")
    return ", ".join(parts)


def _skipped_json(skipped: Skipped) -> dict[str, int]:
    return {"request_id": skipped.request_id, "bucket": skipped.bucket, "total": skipped.total}


def skipped_note(skipped: Skipped) -> str | None:
    """The dataset note that says how many rows were already stored elsewhere, or None."""
    if not skipped.total:
        return None
    rows = "row was" if skipped.total == 1 else "rows were"
    return (
        f"{skipped.total} {rows} already in your other datasets and not stored again "
        f"({_skipped_words(skipped)})."
    )


def validate(
    con: duckdb.DuckDBPyConnection, plan: Plan, position: Position, relation: str | None = None
) -> tuple[int, float | None]:
    """Count rows and bad values in one pass; raise for the first bad value. Returns (rows, max |ts|)."""
    items = ["count(*)", "max(abs(n_ts)) FILTER (WHERE isfinite(n_ts))"]
    items += [f"count(*) FILTER (WHERE {check.bad})" for check in plan.checks]
    try:
        row = con.execute(f"SELECT {', '.join(items)} FROM ({plan.parsed(relation)})").fetchone()  # noqa: S608
    except duckdb.Error as exc:
        raise read_error(exc, plan.source.kind) from exc
    assert row is not None
    bad = {check: int(count) for check, count in zip(plan.checks, row[2:], strict=True) if count}
    if bad:
        raise _first_error(con, plan, bad, position, relation or plan.source.relation)
    return int(row[0]), float(row[1]) if row[1] is not None else None


def _first_error(
    con: duckdb.DuckDBPyConnection, plan: Plan, bad: dict[Check, int], position: Position, relation: str
) -> InvalidInput:
    # Error path only: a table keeps the file's order in `rowid`, which finds the first bad record.
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE diag AS SELECT * FROM {relation}")  # noqa: S608
        checks = list(bad)
        firsts = ", ".join(f"min(__row) FILTER (WHERE {check.bad})" for check in checks)
        row = con.execute(f"SELECT {firsts} FROM ({plan.parsed('diag', row_id=True)})").fetchone()  # noqa: S608
        assert row is not None
        # Several columns can fail on the same record: the leftmost one in the file is named first.
        order = {name: i for i, name in enumerate(plan.source.names)}
        failing = sorted(
            ((int(first), order.get(check.column, len(order)), check.column), check)
            for first, check in zip(row, checks, strict=True)
            if first is not None
        )
        (index, _, _), check = failing[0]
        found = con.execute(
            f"SELECT f_{check.field} FROM ({plan.raw('diag', row_id=True)}) WHERE __row = ?",  # noqa: S608
            [index],
        ).fetchone()
    except duckdb.Error as exc:
        raise read_error(exc, plan.source.kind) from exc
    value = found[0] if found else None
    got = "an empty value" if value is None else repr(value if len(value) <= 60 else value[:57] + "...")
    label, where = position(index)
    expected = EXPECTED[check.kind]
    word = "field" if plan.source.kind in ("jsonl", "json") else "column"
    message = f"{label}, {word} {check.column}: expected {expected}, got {got}"
    if (count := bad[check]) > 1:
        message += f" ({count} rows have an invalid {check.column})"
    also = [other.column for (first, _, _), other in failing[1:] if first == index]
    if also:
        message += f"; also invalid on this {label.split()[0]}: {', '.join(also)}"
    details: dict[str, Any] = {"also_invalid": also} if also else {}
    return InvalidInput(
        message, field=check.column, column=check.column, expected=expected, **where, **details
    )


def _write(
    con: duckdb.DuckDBPyConnection, plan: Plan, scale: TimeScale, out_path: Path, overlap: Overlap
) -> tuple[datetime | None, datetime | None, int, int]:
    """Write the new normalized rows (and bucket keys) to temporary files, then rename them into place.

    Returns (first ts, last ts, bytes, rows written)."""
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.{uuid.uuid4().hex}.tmp")
    keys = keys_path(out_path)
    keys_tmp = keys.with_name(f".{keys.name}.{uuid.uuid4().hex}.tmp")
    target = str(tmp).replace("'", "''")
    relation = overlap.new_rows()
    try:
        final = plan.final(scale, relation)
        con.execute(f"COPY ({final}) TO '{target}' (FORMAT parquet, COMPRESSION zstd)")
        query = f"SELECT min(ts), max(ts), count(*) FROM read_parquet('{target}')"  # noqa: S608
        row = con.execute(query).fetchone()
        if overlap.key is not None:
            overlap.write_keys(con, relation, str(keys_tmp))
            os.replace(keys_tmp, keys)
        os.replace(tmp, out_path)
    except duckdb.Error as exc:
        keys.unlink(missing_ok=True)
        raise read_error(exc, plan.source.kind) from exc
    except BaseException:
        keys.unlink(missing_ok=True)
        raise
    finally:
        tmp.unlink(missing_ok=True)
        keys_tmp.unlink(missing_ok=True)
    start, end, stored = (row[0], row[1], int(row[2])) if row else (None, None, 0)
    return _utc(start), _utc(end), out_path.stat().st_size, stored


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def position_of(source: Source) -> Position:
    """How a 0-based record index is named in errors: its physical line, or its row number."""
    if source.kind == "csv":
        return lambda index: _line(_csv_line(source.path, source.delimiter, index))
    if source.kind == "jsonl":
        return lambda index: _line(_jsonl_line(source.path, index))
    return lambda index: (f"row {index + 1}", {"row": index + 1})


def _line(number: int) -> tuple[str, dict[str, int]]:
    return f"line {number}", {"line": number}


def _csv_line(path: Path, delimiter: str, index: int) -> int:
    """The physical line (header = line 1) where data record `index` starts; blank lines are skipped."""
    # The csv module refuses fields over 128 KiB by default; DuckDB read them, so must this.
    csv.field_size_limit(max(csv.field_size_limit(), _MAX_FIELD))
    with open_text(path) as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        next(reader, None)
        previous, seen = reader.line_num, 0
        for record in reader:
            if record:
                if seen == index:
                    return previous + 1
                seen += 1
            previous = reader.line_num
    return index + 2


def _jsonl_line(path: Path, index: int) -> int:
    with open_text(path) as handle:
        seen = 0
        for number, line in enumerate(handle, start=1):
            if line.strip():
                if seen == index:
                    return number
                seen += 1
    return index + 1
