"""Preview of a usage file before import: detected format, mapping, columns, the first rows as read and
as they would be stored, and the first problem found in those rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tokenwise.errors import InvalidInput
from tokenwise.usage import schema
from tokenwise.usage.bounds import Bounds
from tokenwise.usage.ingest import connect, inspect, position_of, validate
from tokenwise.usage.mapping import missing as mapping_missing
from tokenwise.usage.normalize import Options, Plan, time_scale

PREVIEW_ROWS = 10


def preview_file(
    path: Path,
    filename: str | None = None,
    override: dict[str, str | None] | None = None,
    work_dir: Path | None = None,
    limit: int = PREVIEW_ROWS,
    bounds: Bounds | None = None,
) -> dict[str, Any]:
    """What an import of this file would do, from its first `limit` rows; raises only when unreadable."""
    con = connect(work_dir)
    try:
        source, detection = inspect(con, path, filename, override, bounds=bounds)
        con.execute(f"CREATE TEMP TABLE sample AS SELECT * FROM {source.relation} LIMIT {int(limit)}")  # noqa: S608
        texts = ", ".join(f"{expr} AS c{i}" for i, expr in enumerate(source.columns.values()))
        raw = con.execute(f"SELECT {texts} FROM sample").fetchall() if texts else []  # noqa: S608
        rows = [dict(zip(source.names, values, strict=True)) for values in raw]
        missing = mapping_missing(detection.mapping)
        normalized: list[dict[str, Any]] | None = None
        problem: str | None = None
        if not missing:
            plan = Plan(source, detection, Options())
            try:
                _, max_ts = validate(con, plan, position_of(source), "sample")
            except InvalidInput as exc:
                problem = exc.message
            else:
                fmt = detection.format
                scale = time_scale(max_ts, relative=fmt is not None and fmt.relative_time)
                result = con.execute(plan.final(scale, "sample")).fetchall()
                normalized = [
                    {name: _json_value(value) for name, value in zip(schema.NAMES, values, strict=True)}
                    for values in result
                ]
        return {
            **detection.describe(),
            "source_format": source.kind,
            "missing_fields": missing,
            "rows": rows,
            "normalized": normalized,
            "problem": problem,
        }
    finally:
        con.close()


def _json_value(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value
