"""OTLP/JSON trace files (an OpenTelemetry Collector's file exporter, or saved export requests) as rows.

Each line (or the whole file) is one `ExportTraceServiceRequest`; its GenAI spans become usage rows by the
same rules as the live receiver (`otel.py`: `gen_ai.request.model`, `gen_ai.usage.input_tokens`, ...,
span start -> ts, end - start -> latency). Other spans are not requests and are left out. The rows land in
a temporary table on the import's connection, so that validation and writing read them like any source.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb

from tokenwise.errors import InvalidInput, MalformedBody
from tokenwise.usage import otel
from tokenwise.usage.sources import open_text

TABLE = "otlp_spans"
COLUMNS = ("ts", "model", "provider", "input_tokens", "output_tokens", "cached_input_tokens",
           "cache_write_tokens", "latency_ms", "status", "user", "feature", "request_id",
           "span_source")  # fmt: skip


def is_otlp(structure: dict[str, Any]) -> bool:
    """Whether a JSON structure is OTLP trace data."""
    return "resourceSpans" in structure or "resource_spans" in structure


def load(con: duckdb.DuckDBPyConnection, path: Path, kind: str) -> tuple[str, tuple[str, ...]]:
    """Create the table of the file's GenAI spans on `con`; returns (relation, columns)."""
    rows: list[tuple[str | None, ...]] = []
    for label, body in _documents(path, kind):
        try:
            extraction = otel.extract(otel.parse_json(body))
        except MalformedBody as exc:
            raise InvalidInput(f"{label}: {exc.message}", field="file") from exc
        if extraction.rejected:
            raise InvalidInput(f"{label}: {extraction.message()}", field="file")
        for record in extraction.records:
            values = {**record, "span_source": "otlp"}
            rows.append(tuple(None if values.get(c) is None else str(values[c]) for c in COLUMNS))
    columns = ", ".join(f"{name} VARCHAR" for name in COLUMNS)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {TABLE} ({columns})")
    if rows:
        con.executemany(f"INSERT INTO {TABLE} VALUES ({', '.join('?' for _ in COLUMNS)})", rows)  # noqa: S608
    return TABLE, COLUMNS


def _documents(path: Path, kind: str) -> list[tuple[str, bytes]]:
    with open_text(path) as handle:
        text = handle.read()
    if kind == "json":
        return [("the file", text.encode())]
    lines = [
        (f"line {n}", line.encode()) for n, line in enumerate(text.splitlines(), start=1) if line.strip()
    ]
    for label, line in lines:
        try:
            json.loads(line)
        except ValueError as exc:
            raise InvalidInput(
                f"{label}: expected one OTLP/JSON export request per line", field="file"
            ) from exc
    return lines
