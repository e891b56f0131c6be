"""Column mapping: which source column feeds which field, detected from a file's header.

A mapping is a dict `field -> source column`. The fields are the schema's columns (see `schema.py`) plus
a few inputs that are transformed on the way in: `prompt_text` (hashed), `error` (error text: any value
marks a failure), `end_ts` (end time, for latency when there is no latency column) and `latency_s`.

Header names are compared after normalisation (lower case, spaces, `_` and `-` dropped), so
`Request tokens`, `request_tokens` and `RequestTokens` are the same name. A named format, recognised by
a signature of columns, fixes the mapping for its columns; the alias lists fill in the rest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tokenwise.errors import InvalidInput

# Relative timestamps (seconds from the start of a trace, as in BurstGPT) are placed on this clock:
# durations, rates and peaks are exact, wall-clock hours and weekdays are not the original ones.
RELATIVE_TIME_BASE = datetime(2024, 1, 1, tzinfo=UTC)

# Preferred alias first: when several columns match, the earliest alias wins.
ALIASES: dict[str, tuple[str, ...]] = {
    "ts": ("timestamp", "ts", "time", "created_at", "created", "start_time", "starttime", "request_time",
           "event_time", "datetime", "date"),
    "end_ts": ("end_time", "endtime", "completed_at", "completion_start_time"),
    "model": ("model", "model_name", "model_id", "engine", "deployment", "deployment_name", "model_group"),
    "provider": ("provider", "custom_llm_provider", "llm_provider", "api_provider", "vendor", "platform"),
    "input_tokens": ("input_tokens", "prompt_tokens", "context_tokens", "request_tokens",
                     "usage.input_tokens", "usage.prompt_tokens", "num_input_tokens", "n_input_tokens",
                     "input_token_count", "prompt_token_count", "tokens_in"),
    "output_tokens": ("output_tokens", "completion_tokens", "generated_tokens", "response_tokens",
                      "usage.output_tokens", "usage.completion_tokens", "num_output_tokens",
                      "n_output_tokens", "output_token_count", "completion_token_count",
                      "candidates_token_count", "tokens_out"),
    "cached_input_tokens": ("cached_input_tokens", "cached_tokens", "prompt_tokens_details.cached_tokens",
                            "usage.prompt_tokens_details.cached_tokens", "cache_read_input_tokens",
                            "usage.cache_read_input_tokens", "input_cached_tokens", "cached_prompt_tokens",
                            "cached_content_token_count"),
    "latency_ms": ("latency_ms", "duration_ms", "response_time_ms", "response_time", "elapsed_ms",
                   "total_time_ms", "request_duration_ms", "latency", "duration"),
    "latency_s": ("latency_s", "latency_seconds", "duration_s", "duration_seconds", "response_time_s",
                  "elapsed_s"),
    "cost_usd": ("cost_usd", "cost", "spend", "total_cost", "cost_dollars", "response_cost", "price"),
    "status": ("status", "status_code", "http_status", "response_status", "outcome"),
    "error": ("error", "error_message", "error_code", "error_type", "exception"),
    "user_tag": ("user", "user_id", "end_user", "customer_id", "customer", "request_user_id"),
    "feature": ("feature", "metadata.feature", "tag", "tags", "request_tags", "metadata.tags", "route",
                "endpoint", "use_case", "application", "app"),
    "team": ("team", "team_id", "team_alias", "metadata.user_api_key_team_alias", "metadata.team"),
    "project": ("project", "project_id", "project_name", "workspace", "workspace_id", "metadata.project"),
    "api_key": ("api_key", "api_key_id", "api_key_name", "api_key_alias", "key_alias", "key_name",
                "user_api_key_alias", "metadata.user_api_key_alias"),
    "request_id": ("request_id", "id", "call_id", "response_id", "x_request_id"),
    "prompt_hash": ("prompt_hash", "prompt_sha256", "input_hash", "messages_hash"),
    "prompt_text": ("prompt_text", "prompt", "messages", "input", "request_text"),
    "max_output_tokens": ("max_output_tokens", "max_tokens", "max_completion_tokens", "max_new_tokens"),
}  # fmt: skip
FIELDS: tuple[str, ...] = tuple(ALIASES)
REQUIRED_FIELDS: tuple[str, ...] = ("ts", "input_tokens", "output_tokens")


def normalize(name: str) -> str:
    """The comparison key of a column name: lower case without spaces, `_` or `-`."""
    return re.sub(r"[\s_\-]+", "", name.strip().lower())


@dataclass(frozen=True)
class Format:
    """A named source format: recognised when all columns of one signature are present."""

    name: str
    title: str
    signatures: tuple[tuple[str, ...], ...]
    fixed: dict[str, str] = field(default_factory=dict)  # field -> source column (normalised)
    provider: str | None = None  # the provider of every row, when the format implies one
    relative_time: bool = False  # `ts` holds seconds from the start of the trace
    zero_output_is_error: bool = False  # a row with no output tokens is a failed request
    notes: tuple[str, ...] = ()

    def matches(self, normalized: set[str]) -> bool:
        return any(all(column in normalized for column in sig) for sig in self.signatures)


FORMATS: tuple[Format, ...] = (
    Format(
        "azure_llm_inference_2023",
        "Azure LLM inference trace (2023)",
        (("timestamp", "contexttokens", "generatedtokens"),),
        {"ts": "timestamp", "input_tokens": "contexttokens", "output_tokens": "generatedtokens"},
        provider="azure",
        notes=(
            "The trace has no model column: name the model, or the analysis asks for it.",
            "Azure LLM inference trace 2023, Azure Public Dataset (CC-BY 4.0): Patel et al., "
            '"Splitwise: Efficient generative LLM inference using phase splitting", ISCA 2024.',
        ),
    ),
    Format(
        "burstgpt",
        "BurstGPT trace",
        (
            ("timestamp", "requesttokens", "responsetokens", "logtype"),
            ("timestamp", "requesttokens", "responsetokens", "totaltokens"),
        ),
        {
            "ts": "timestamp",
            "model": "model",
            "input_tokens": "requesttokens",
            "output_tokens": "responsetokens",
            "feature": "logtype",
        },
        provider="azure",
        relative_time=True,
        zero_output_is_error=True,
        notes=(
            f"Timestamp is seconds from the start of the trace, placed on a clock starting at "
            f"{RELATIVE_TIME_BASE.isoformat()}: rates and peaks are exact, wall-clock hours are not.",
            "Rows with 0 response tokens are counted as failed requests (BurstGPT's failure marker).",
            "`Log Type` (Conversation log / API log) is kept as the feature: it separates the channels.",
        ),
    ),
    Format(
        "litellm_spend_logs",
        "LiteLLM spend logs",
        (("starttime", "spend"), ("starttime", "endtime", "requestid", "model")),
        {"ts": "starttime", "end_ts": "endtime", "cost_usd": "spend"},
        notes=("Latency is endTime - startTime when no latency column is present.",),
    ),
    Format(
        "openai_usage_api",
        "OpenAI Usage API (completions buckets)",
        (("bucketstart", "timestamp", "inputtokens", "outputtokens", "apikeyid", "projectid"),),
        {"ts": "timestamp", "api_key": "apikeyid", "project": "projectid"},
        provider="openai",
        notes=(
            "Usage API buckets are aggregates: each bucket's requests are spread evenly over the bucket, "
            "with equal shares of its tokens: totals and request counts are exact, request sizes averages.",
        ),
    ),
    Format(
        "openai_usage",
        "OpenAI-style usage export",
        (
            ("model", "prompttokens", "completiontokens"),
            ("model", "inputtokens", "outputtokens"),
            ("model", "usage.prompttokens", "usage.completiontokens"),
        ),
    ),
)
GENERIC = "generic"


@dataclass(frozen=True)
class Detection:
    """What a header was recognised as: the format and the field -> source column mapping."""

    format: Format | None
    mapping: dict[str, str]
    columns: tuple[str, ...]

    @property
    def format_name(self) -> str:
        return self.format.name if self.format else GENERIC

    def describe(self) -> dict[str, Any]:
        """The detection as JSON, for previews and dataset records."""
        return {
            "detected_format": self.format_name,
            "format_title": self.format.title if self.format else "Generic usage log",
            "mapping": dict(self.mapping),
            "columns": list(self.columns),
            "notes": list(self.format.notes) if self.format else [],
        }


def detect(columns: list[str] | tuple[str, ...], override: dict[str, str | None] | None = None) -> Detection:
    """Recognise the format and map fields to source columns; `override` wins over what was detected."""
    by_key: dict[str, str] = {}
    for column in columns:
        by_key.setdefault(normalize(column), column)
    fmt = next((f for f in FORMATS if f.matches(set(by_key))), None)
    mapping: dict[str, str] = {}
    used: set[str] = set()
    if fmt is not None:
        for name, key in fmt.fixed.items():
            if key in by_key:
                mapping[name] = by_key[key]
                used.add(by_key[key])
    for name, aliases in ALIASES.items():
        if name in mapping:
            continue
        for alias in aliases:
            found = by_key.get(normalize(alias))
            if found is not None and found not in used:
                mapping[name] = found
                used.add(found)
                break
    if "latency_ms" in mapping:
        mapping.pop("latency_s", None)
    if override:
        mapping = apply_override(mapping, override, columns)
    return Detection(fmt, mapping, tuple(columns))


def apply_override(
    mapping: dict[str, str], override: dict[str, str | None], columns: list[str] | tuple[str, ...]
) -> dict[str, str]:
    """Merge a user's mapping over a detected one; a null or empty value unmaps the field."""
    merged = dict(mapping)
    for name, wanted in override.items():
        if name not in ALIASES:
            raise InvalidInput(
                f"unknown field '{name}' in the mapping; known fields: {', '.join(FIELDS)}", field="mapping"
            )
        if wanted is None or wanted == "":
            merged.pop(name, None)
            continue
        if not isinstance(wanted, str) or wanted not in columns:
            raise InvalidInput(
                f"mapping {name} -> {wanted!r}: no such column; columns found: {', '.join(columns)}",
                field="mapping",
            )
        merged[name] = wanted
    return merged


def require(detection: Detection) -> None:
    """Raise InvalidInput naming the first required field that no column feeds."""
    for name in REQUIRED_FIELDS:
        if name not in detection.mapping:
            aliases = ", ".join(ALIASES[name][:6])
            raise InvalidInput(
                f"missing required column for {name} (looked for {aliases}, ...); columns found: "
                f"{', '.join(detection.columns) or '(none)'}. Name it with a mapping, e.g. "
                f'{{"{name}": "<column>"}}',
                field=name,
                columns=list(detection.columns),
            )
