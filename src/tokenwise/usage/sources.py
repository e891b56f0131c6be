"""Readers: a usage file (CSV, JSON Lines, JSON array or Parquet) as DuckDB text columns.

Every source becomes `FROM <relation>` plus one SQL expression per source column that yields its value as
text, so that mapping, validation and normalisation are the same whatever the format. Nested JSON objects
and Parquet structs become dotted column names (`usage.prompt_tokens_details.cached_tokens`).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

import duckdb

from tokenwise import jsonlimits
from tokenwise.errors import InvalidInput

KINDS = ("csv", "jsonl", "json", "parquet")
_EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_HEAD_BYTES = 64 * 1024
JSON_DEPTH = 128  # DuckDB's own limit on JSON nesting: deeper lines are refused by both readers


@dataclass(frozen=True)
class Source:
    """A readable usage file: `relation` for FROM, and a text expression per source column."""

    kind: str
    path: Path
    relation: str
    columns: dict[str, str]  # source column -> SQL expression of its value as text
    unit: str  # what an error position counts: "line" (CSV, JSON Lines) or "row"
    delimiter: str = ","

    @property
    def names(self) -> list[str]:
        return list(self.columns)


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _open(path: Path) -> IO[bytes]:
    return cast(IO[bytes], gzip.open(path, "rb")) if path.suffix == ".gz" else path.open("rb")


def open_text(path: Path) -> IO[str]:
    """The file as text (UTF-8, BOM dropped, newlines kept for the csv module)."""
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8-sig", errors="replace", newline="")
    return path.open(encoding="utf-8-sig", errors="replace", newline="")


def detect_kind(path: Path, filename: str | None = None) -> str:
    """The file's kind, from its name's extension, or else from its first bytes."""
    name = (filename or path.name).lower().removesuffix(".gz")
    if kind := _EXTENSIONS.get(Path(name).suffix):
        return kind
    with _open(path) as handle:
        head = handle.read(_HEAD_BYTES)
    if head.startswith(b"PAR1"):
        return "parquet"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"["):
        return "json"
    if text.startswith(b"{"):
        first = text.split(b"\n", 1)[0].strip()
        return "jsonl" if first.endswith(b"}") else "json"
    return "csv"


def open_source(con: duckdb.DuckDBPyConnection, path: Path, kind: str) -> Source:
    """Describe the file at `path` as a Source; InvalidInput when it cannot be read as `kind`."""
    try:
        if kind == "csv":
            return _csv(path)
        if kind in ("jsonl", "json"):
            return _json(con, path, kind)
        if kind == "parquet":
            return _parquet(con, path)
    except duckdb.Error as exc:
        raise (_jsonl_error(path) if kind == "jsonl" else None) or read_error(exc, kind) from exc
    raise InvalidInput(f"unsupported file kind {kind!r}; use one of {', '.join(KINDS)}", field="file")


def _csv(path: Path) -> Source:
    with _open(path) as raw:
        head = raw.read(_HEAD_BYTES).decode("utf-8-sig", errors="replace")
    first_line = head.splitlines()[0] if head.strip() else ""
    if not first_line.strip():
        raise InvalidInput("line 1: the file is empty or has no header row", field="file", line=1)
    delimiter = max([",", ";", "\t", "|"], key=first_line.count)
    header = next(csv.reader(io.StringIO(first_line), delimiter=delimiter))
    names = [name.strip() or f"column{index + 1}" for index, name in enumerate(header)]
    if duplicates := sorted({n for n in names if names.count(n) > 1}):
        raise InvalidInput(f"line 1: duplicate column names {', '.join(duplicates)}", field="file", line=1)
    columns = ", ".join(f"{quote_literal(name)}: 'VARCHAR'" for name in names)
    relation = (
        f"read_csv({quote_literal(str(path))}, header = true, auto_detect = false, "
        f"delim = {quote_literal(delimiter)}, quote = '\"', escape = '\"', columns = {{{columns}}})"
    )
    return Source("csv", path, relation, {name: quote_ident(name) for name in names}, "line", delimiter)


def _json(con: duckdb.DuckDBPyConnection, path: Path, kind: str) -> Source:
    fmt = "newline_delimited" if kind == "jsonl" else "auto"
    relation = f"read_json_objects({quote_literal(str(path))}, format = {quote_literal(fmt)})"
    structure = _structure(con, relation)
    if not isinstance(structure, dict):
        raise InvalidInput("the JSON holds no objects: expected one usage record per line", field="file")
    from tokenwise.usage import otlp_files, reports  # they import this module

    if otlp_files.is_otlp(structure):
        table, names = otlp_files.load(con, path, kind)
        return Source("json", path, table, {name: quote_ident(name) for name in names}, "row")
    if (page := reports.open_page(relation, structure)) is not None:
        expanded, names = page
        return Source("json", path, expanded, {name: quote_ident(name) for name in names}, "row")
    if (records := _unwrapped(relation, structure)) is not None:
        # an API response page (`{"data": [records], "meta": ...}` or `{"data": {record}}`): its records
        relation, kind = records, "json"
        structure = _structure(con, relation)
        if not isinstance(structure, dict):
            raise InvalidInput("the JSON's `data` holds no objects: expected usage records", field="file")
    paths = _leaf_paths(structure)
    columns = {".".join(p): f"json_extract_string(json, {quote_literal(_json_path(p))})" for p in paths}
    return Source(kind, path, relation, columns, "line" if kind == "jsonl" else "row")


def _structure(con: duckdb.DuckDBPyConnection, relation: str) -> Any:
    row = con.execute(f"SELECT json_group_structure(json) FROM {relation}").fetchone()  # noqa: S608
    return json.loads(row[0]) if row and row[0] else {}


# Keys of an API response page beside its `data`: pagination, never usage.
_PAGE_KEYS = {"data", "meta", "object", "has_more", "next_page", "first_id", "last_id", "cursor", "page",
              "limit", "total", "pagination"}  # fmt: skip


def _unwrapped(relation: str, structure: dict[str, Any]) -> str | None:
    data = structure.get("data")
    if not set(structure) <= _PAGE_KEYS:
        return None
    if isinstance(data, list) and data and isinstance(data[0], dict):
        return (
            f"(SELECT u.r AS json FROM {relation} t, "  # noqa: S608
            "unnest(CAST(json_extract(t.json, '$.data') AS JSON[])) AS u(r))"
        )
    if isinstance(data, dict) and data:
        return f"(SELECT json_extract(t.json, '$.data') AS json FROM {relation} t)"  # noqa: S608
    return None


def _parquet(con: duckdb.DuckDBPyConnection, path: Path) -> Source:
    relation = f"read_parquet({quote_literal(str(path))})"
    described = con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()  # noqa: S608
    columns: dict[str, str] = {}
    for name, type_name, *_ in described:
        ident = quote_ident(str(name))
        if str(type_name).startswith("STRUCT("):
            sample = f"SELECT {ident} FROM {relation} LIMIT 10000"  # noqa: S608
            row = con.execute(f"SELECT json_group_structure(to_json({ident})) FROM ({sample})").fetchone()  # noqa: S608
            structure = json.loads(row[0]) if row and row[0] else {}
            for sub in _leaf_paths(structure) if isinstance(structure, dict) else []:
                path_sql = quote_literal(_json_path(sub))
                columns[".".join((str(name), *sub))] = f"json_extract_string(to_json({ident}), {path_sql})"
        else:
            columns[str(name)] = f"CAST({ident} AS VARCHAR)"
    return Source("parquet", path, relation, columns, "row")


def _jsonl_error(path: Path) -> InvalidInput | None:
    """Error path only: the first line that is not a JSON object, found line by line."""
    with open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                value = jsonlimits.loads(line, limit=JSON_DEPTH)
            except ValueError as exc:
                reason = getattr(exc, "msg", str(exc))
                message = f"line {number}: could not read the JSONL file: expected a JSON object ({reason})"
                return InvalidInput(message, field="file", line=number)
            if not isinstance(value, dict):
                message = f"line {number}: could not read the JSONL file: expected a JSON object"
                return InvalidInput(f"{message}, got {type(value).__name__}", field="file", line=number)
    return None


def _leaf_paths(structure: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths: list[tuple[str, ...]] = []
    for key, value in structure.items():
        if isinstance(value, dict) and value and len(prefix) < 4:
            paths.extend(_leaf_paths(value, (*prefix, key)))
        else:
            paths.append((*prefix, key))
    return paths


def _json_path(parts: tuple[str, ...]) -> str:
    return "$" + "".join("." + '"' + part.replace('"', '\\"') + '"' for part in parts)


_LINE = re.compile(r"(?:CSV Error on Line|line)[: ]\s*(\d+)", re.IGNORECASE)
_COLUMNS = re.compile(r"Expected Number of Columns: (\d+) Found: (\d+)")


def read_error(exc: duckdb.Error, kind: str) -> InvalidInput:
    """A reader's error in plain words, with the line number when the reader knows it."""
    text = str(exc)
    line_match = _LINE.search(text)
    line = int(line_match.group(1)) if line_match else None
    where = f"line {line}: " if line is not None else ""
    if columns := _COLUMNS.search(text):
        what = f"expected {columns.group(1)} columns, found {columns.group(2)}"
    elif "Invalid unicode" in text:
        what = "expected UTF-8 text (save the file as UTF-8)"
    elif "unterminated quote" in text:
        what = "a quoted value is never closed"
    elif "maximum recursion depth" in text:
        what = f"expected JSON nested at most {JSON_DEPTH} levels deep"
    elif "Malformed JSON" in text or "malformed" in text.lower():
        reason = text.rsplit(":", 1)[-1].strip() or "malformed JSON"
        what = f"expected a JSON object ({reason})"
    elif "Invalid Input Error: No magic bytes" in text or "parquet" in text.lower():
        what = "not a readable Parquet file"
    else:
        first = text.splitlines()[0] if text else type(exc).__name__
        what = re.sub(r"^[A-Za-z ]+Error: ", "", first)[:200]
    return InvalidInput(f"{where}could not read the {kind.upper()} file: {what}", field="file", line=line)
