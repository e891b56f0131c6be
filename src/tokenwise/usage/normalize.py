"""The SQL that turns a mapped source into the normalized schema, and the checks that validate it first.

Three layers of SQL, all evaluated by DuckDB in bulk:
  raw     one text column per mapped field (`f_<field>`), blanks as NULL;
  parsed  the numbers and timestamps parsed with TRY_CAST (`n_<field>`, `t_<field>`);
  final   the schema's columns, in order, with their exact types.
Each `Check` is a boolean over `parsed` that is true for a row whose value is invalid.
"""

from __future__ import annotations

from dataclasses import dataclass

from tokenwise.usage import schema
from tokenwise.usage.mapping import RELATIVE_TIME_BASE, Detection
from tokenwise.usage.sources import Source, quote_literal

INTEGER_FIELDS = ("input_tokens", "output_tokens", "cached_input_tokens", "max_output_tokens",
                  "uncached_input_tokens", "cache_write_tokens", "cache_write_1h_tokens",
                  "cache_write_total_tokens")  # fmt: skip
_TOKEN_FIELDS = tuple(f for f in INTEGER_FIELDS if f != "max_output_tokens")
_TRUE_WORDS = ("true", "t", "yes", "y", "1", "1.0", "batch")
NUMBER_FIELDS = ("latency_ms", "latency_s", "cost_usd")
TIME_FIELDS = ("ts", "end_ts")
EXPECTED = {
    "integer": "a non-negative integer",
    "number": "a non-negative number",
    "time": "a timestamp (ISO 8601, with or without a zone, or epoch seconds/milliseconds)",
}
_ERROR_WORDS = (
    r"(error|fail|timeout|timed out|exception|cancel|abort|denied|refused|rate.?limit|invalid|reject)"
)
_OK_WORDS = ("success", "succeeded", "successful", "ok", "completed", "complete", "done", "finished")
_NO_ERROR = ("", "none", "null", "false", "0", "nan")


@dataclass(frozen=True)
class Options:
    """What the user tells an import beyond the file: the dataset's model and whether to keep prompts."""

    default_model: str | None = None
    keep_prompt_text: bool = False


@dataclass(frozen=True)
class Check:
    field: str
    column: str  # the source column, for the error message
    kind: str  # key of EXPECTED
    bad: str  # SQL over `parsed`: true when the row's value is invalid


@dataclass(frozen=True)
class TimeScale:
    """How numeric timestamps become times: microseconds = offset + value * factor."""

    offset_us: int
    factor: float
    meaning: str


def time_scale(max_abs: float | None, relative: bool) -> TimeScale:
    """Relative seconds when the format says so or values are small; else epoch s / ms / us / ns."""
    base_us = int(RELATIVE_TIME_BASE.timestamp() * 1_000_000)
    if max_abs is None and not relative:
        return TimeScale(0, 1e6, "date-times as written (UTC unless a zone is given)")
    if relative or max_abs is None or max_abs < 1e9:
        return TimeScale(base_us, 1e6, f"seconds from the start, placed at {RELATIVE_TIME_BASE.isoformat()}")
    if max_abs < 1e11:
        return TimeScale(0, 1e6, "epoch seconds")
    if max_abs < 1e14:
        return TimeScale(0, 1e3, "epoch milliseconds")
    if max_abs < 1e17:
        return TimeScale(0, 1.0, "epoch microseconds")
    return TimeScale(0, 1e-3, "epoch nanoseconds")


class Plan:
    """The normalizing query for one source and mapping."""

    def __init__(self, source: Source, detection: Detection, options: Options) -> None:
        self.source, self.detection, self.options = source, detection, options
        self.mapping = detection.mapping
        self.checks = self._checks()

    def raw(self, relation: str | None = None, *, row_id: bool = False) -> str:
        """SELECT of the mapped fields' text; `row_id` adds `__row` (only valid over a table)."""
        items = ["rowid AS __row"] if row_id else []
        for field, column in self.mapping.items():
            items.append(f"NULLIF(trim({self.source.columns[column]}), '') AS f_{field}")
        select = f"SELECT {', '.join(items) or '1 AS __empty'} FROM {relation or self.source.relation}"  # noqa: S608
        fmt = self.detection.format
        counts = [self.source.columns[c] for f, c in self.mapping.items() if f in _TOKEN_FIELDS]
        if fmt is not None and fmt.usage_rows_only and counts:
            # spans and events of a trace carry no usage: they are not model requests
            select += " WHERE " + " OR ".join(f"NULLIF(trim({expr}), '') IS NOT NULL" for expr in counts)
        return select

    def parsed(self, relation: str | None = None, *, row_id: bool = False) -> str:
        """`raw` plus the parsed numbers (`n_<field>`) and text timestamps (`t_<field>`)."""
        items = ["*"]
        for field in self.mapping:
            if field in INTEGER_FIELDS or field in NUMBER_FIELDS or field in TIME_FIELDS:
                items.append(f"TRY_CAST(f_{field} AS DOUBLE) AS n_{field}")
            if field in TIME_FIELDS:
                items.append(f"CAST(TRY_CAST(f_{field} AS TIMESTAMPTZ) AS TIMESTAMP) AS t_{field}")
        return f"SELECT {', '.join(items)} FROM ({self.raw(relation, row_id=row_id)})"  # noqa: S608

    def _checks(self) -> list[Check]:
        checks: list[Check] = []
        given_input = "input_tokens" if "input_tokens" in self.mapping else "uncached_input_tokens"
        required = {"ts", "output_tokens", given_input}
        for field, column in self.mapping.items():
            missing = f"f_{field} IS NULL OR " if field in required else ""
            present = f"f_{field} IS NOT NULL AND "
            if field in TIME_FIELDS:
                bad = f"(n_{field} IS NULL AND t_{field} IS NULL) OR NOT isfinite(n_{field})"
                checks.append(Check(field, column, "time", f"{missing}({present}({bad}))"))
            elif field in INTEGER_FIELDS:
                n = f"n_{field}"
                bad = f"{n} IS NULL OR NOT ({n} >= 0 AND {n} < 1e18 AND {n} = floor({n}))"
                checks.append(Check(field, column, "integer", f"{missing}({present}({bad}))"))
            elif field in NUMBER_FIELDS:
                n = f"n_{field}"
                bad = f"{n} IS NULL OR NOT ({n} >= 0 AND {n} < 1e18)"
                checks.append(Check(field, column, "number", f"{present}({bad})"))
        return checks

    def final(self, scale: TimeScale, relation: str | None = None) -> str:
        """The normalized SELECT: exactly `schema.COLUMNS`, in order, with their types."""
        exprs = {column.name: "NULL" for column in schema.COLUMNS}
        m, fmt = self.mapping, self.detection.format
        exprs["ts"] = self._time("ts", scale)
        exprs["output_tokens"] = "CAST(n_output_tokens AS BIGINT)"
        for field in ("cached_input_tokens", "max_output_tokens", "cache_write_1h_tokens"):
            if field in m:
                exprs[field] = f"CAST(n_{field} AS BIGINT)"
        exprs["cache_write_tokens"] = self._cache_writes()
        exprs["input_tokens"] = self._input()
        if "batch" in m:
            words = ", ".join(quote_literal(word) for word in _TRUE_WORDS)
            exprs["batch"] = f"CASE WHEN f_batch IS NULL THEN NULL ELSE lower(f_batch) IN ({words}) END"
        for field in (
            "model",
            "provider",
            "user_tag",
            "feature",
            "team",
            "project",
            "api_key",
            "request_id",
            "prompt_hash",
        ):
            if field in m:
                exprs[field] = f"f_{field}"
        if self.options.default_model:
            exprs["model"] = _coalesce(exprs["model"], quote_literal(self.options.default_model))
        if fmt is not None and fmt.provider:
            exprs["provider"] = _coalesce(exprs["provider"], quote_literal(fmt.provider))
        if "cost_usd" in m:
            exprs["cost_usd"] = self._cost()
        exprs["latency_ms"] = self._latency(scale)
        exprs["status"], exprs["is_error"] = self._status()
        if "prompt_text" in m:
            exprs["prompt_hash"] = _coalesce(exprs["prompt_hash"], "sha256(f_prompt_text)")
            exprs["prefix_hash"] = "sha256(left(f_prompt_text, 1024))"
            if self.options.keep_prompt_text:
                exprs["prompt_text"] = "f_prompt_text"
        items = ", ".join(f"CAST({exprs[c.name]} AS {c.duckdb_type}) AS {c.name}" for c in schema.COLUMNS)
        return f"SELECT {items} FROM ({self.parsed(relation)})"  # noqa: S608

    def _input(self) -> str:
        """All input tokens: as given, or the uncached input plus cache reads and writes."""
        if "input_tokens" in self.mapping or "uncached_input_tokens" not in self.mapping:
            return "CAST(n_input_tokens AS BIGINT)"
        parts = ["n_uncached_input_tokens"]
        parts += [
            f"COALESCE(n_{f}, 0)"
            for f in ("cached_input_tokens", "cache_write_1h_tokens")
            if f in self.mapping
        ]
        writes = self._cache_writes()
        if writes != "NULL":
            parts.append(f"COALESCE({writes}, 0)")
        return f"CAST({' + '.join(parts)} AS BIGINT)"

    def _cache_writes(self) -> str:
        """5-minute (or unspecified) cache writes: given, or all writes less the 1-hour ones."""
        m = self.mapping
        total = None
        if "cache_write_total_tokens" in m:
            one_hour = "COALESCE(n_cache_write_1h_tokens, 0)" if "cache_write_1h_tokens" in m else "0"
            total = f"GREATEST(n_cache_write_total_tokens - {one_hour}, 0)"
        given = "n_cache_write_tokens" if "cache_write_tokens" in m else None
        exprs = [e for e in (given, total) if e is not None]
        return f"CAST({_coalesce(*exprs)} AS BIGINT)" if exprs else "NULL"

    def _cost(self) -> str:
        fmt, column = self.detection.format, self.mapping["cost_usd"]
        if fmt is not None and fmt.cost_may_be_nano and column.lower() == "cost":
            # Helicone's ClickHouse stores integer USD x 1e9: no single request costs $1,000
            return "n_cost_usd / CASE WHEN max(n_cost_usd) OVER () >= 1000 THEN 1e9 ELSE 1 END"
        return "n_cost_usd"

    def _time(self, field: str, scale: TimeScale) -> str:
        numeric = f"make_timestamp({scale.offset_us} + CAST(round(n_{field} * {scale.factor!r}) AS BIGINT))"
        return f"CASE WHEN n_{field} IS NOT NULL THEN {numeric} ELSE t_{field} END"

    def _latency(self, scale: TimeScale) -> str:
        if "latency_ms" in self.mapping:
            return "n_latency_ms"
        if "latency_s" in self.mapping:
            return "n_latency_s * 1000.0"
        if "end_ts" in self.mapping:
            diff = f"date_diff('microsecond', {self._time('ts', scale)}, {self._time('end_ts', scale)})"
            return f"CASE WHEN {diff} >= 0 THEN {diff} / 1000.0 END"
        return "NULL"

    def _status(self) -> tuple[str, str]:
        m, fmt = self.mapping, self.detection.format
        flags: list[str] = []
        if "status" in m:
            code = "TRY_CAST(f_status AS DOUBLE)"
            words = ", ".join(quote_literal(word) for word in _OK_WORDS)
            flags.append(
                f"CASE WHEN f_status IS NULL THEN NULL WHEN {code} IS NOT NULL THEN {code} >= 400 "
                f"WHEN lower(f_status) IN ({words}) THEN false "
                f"ELSE regexp_matches(lower(f_status), {quote_literal(_ERROR_WORDS)}) END"
            )
        if "error" in m:
            empty = ", ".join(quote_literal(word) for word in _NO_ERROR)
            flags.append(f"CASE WHEN f_error IS NULL THEN NULL ELSE lower(f_error) NOT IN ({empty}) END")
        if not flags and fmt is not None and fmt.zero_output_is_error:
            flags.append("n_output_tokens = 0")
        status_parts = [f"f_{name}" for name in ("status", "error") if name in m]
        status = _coalesce(*status_parts) if status_parts else "NULL"
        if not flags:
            return status, "NULL"
        is_error = flags[0] if len(flags) == 1 else f"({flags[0]}) OR ({flags[1]})"
        return status, is_error


def _coalesce(*exprs: str) -> str:
    parts = [e for e in exprs if e != "NULL"]
    if not parts:
        return "NULL"
    return parts[0] if len(parts) == 1 else f"COALESCE({', '.join(parts)})"
