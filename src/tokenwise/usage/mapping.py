"""Column mapping: which source column feeds which field, detected from a file's header.

A mapping is a dict `field -> source column`. The fields are the schema's columns (see `schema.py`) plus
a few inputs that are transformed on the way in: `prompt_text` (hashed), `error` (error text: any value
marks a failure), `end_ts` (end time, for latency when there is no latency column), `latency_s`,
`uncached_input_tokens` (input that excludes cache reads and writes, as Anthropic reports it: the stored
input is its sum with them) and `cache_write_total_tokens` (all cache writes, when the source does not
split them by lifetime: the 5-minute share is the total less the 1-hour writes).

Header names are compared after normalisation (lower case, spaces, `_` and `-` dropped), so
`Request tokens`, `request_tokens` and `RequestTokens` are the same name. A named format, recognised by
a signature of columns, fixes the mapping for its columns; the alias lists fill in the rest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tokenwise.errors import InvalidInput
from tokenwise.usage.formats import FORMATS, RELATIVE_TIME_BASE, Format

__all__ = [  # the formats are defined in formats.py, and still imported from here
    "ALIASES",
    "FIELDS",
    "FORMATS",
    "GENERIC",
    "RELATIVE_TIME_BASE",
    "REQUIRED_FIELDS",
    "STAND_INS",
    "Detection",
    "Format",
    "apply_override",
    "detect",
    "missing",
    "normalize",
    "require",
]


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
    "uncached_input_tokens": ("uncached_input_tokens", "input_tokens_uncached"),
    "cached_input_tokens": ("cached_input_tokens", "cached_tokens", "prompt_tokens_details.cached_tokens",
                            "usage.prompt_tokens_details.cached_tokens", "cache_read_input_tokens",
                            "usage.cache_read_input_tokens", "input_cached_tokens", "cached_prompt_tokens",
                            "cached_content_token_count", "usage.input_tokens_details.cached_tokens",
                            "input_tokens_details.cached_tokens", "prompt_cache_read_tokens",
                            "native_tokens_cached", "cache_read_tokens"),
    "cache_write_tokens": ("cache_write_tokens", "cache_write_5m_tokens",
                           "cache_creation.ephemeral_5m_input_tokens",
                           "usage.cache_creation.ephemeral_5m_input_tokens"),
    "cache_write_1h_tokens": ("cache_write_1h_tokens", "cache_creation.ephemeral_1h_input_tokens",
                              "usage.cache_creation.ephemeral_1h_input_tokens"),
    "cache_write_total_tokens": ("cache_creation_input_tokens", "usage.cache_creation_input_tokens",
                                 "prompt_cache_write_tokens", "cache_write_input_tokens",
                                 "usage.prompt_tokens_details.cache_write_tokens",
                                 "prompt_tokens_details.cache_write_tokens", "cache_creation_tokens"),
    "batch": ("batch", "is_batch"),
    "latency_ms": ("latency_ms", "duration_ms", "response_time_ms", "response_time", "elapsed_ms",
                   "total_time_ms", "request_duration_ms", "latency", "duration"),
    "latency_s": ("latency_s", "latency_seconds", "duration_s", "duration_seconds", "response_time_s",
                  "elapsed_s"),
    "cost_usd": ("cost_usd", "cost", "spend", "total_cost", "cost_dollars", "response_cost", "price"),
    "status": ("status", "status_code", "http_status", "response_status", "outcome"),
    "error": ("error", "error_message", "error_code", "error_type", "exception"),
    "user_tag": ("user", "user_id", "end_user", "customer_id", "customer", "request_user_id"),
    "feature": ("feature", "metadata.feature", "tag", "tags", "request_tags", "metadata.tags", "route",
                "endpoint", "use_case", "application", "app", "request_properties.feature",
                "request_properties.app", "requestmetadata.feature"),
    "team": ("team", "team_id", "team_alias", "metadata.user_api_key_team_alias", "metadata.team",
             "request_properties.team", "requestmetadata.team"),
    "project": ("project", "project_id", "project_name", "workspace", "workspace_id", "metadata.project",
                "metadata.project_id", "request_properties.project", "requestmetadata.project"),
    "api_key": ("api_key", "api_key_id", "api_key_name", "api_key_alias", "key_alias", "key_name",
                "user_api_key_alias", "metadata.user_api_key_alias"),
    "request_id": ("request_id", "id", "call_id", "response_id", "x_request_id"),
    "prompt_hash": ("prompt_hash", "prompt_sha256", "input_hash", "messages_hash"),
    "prompt_text": ("prompt_text", "prompt", "messages", "input", "request_text"),
    "max_output_tokens": ("max_output_tokens", "max_tokens", "max_completion_tokens", "max_new_tokens",
                          "modelparameters.max_tokens"),
}  # fmt: skip
FIELDS: tuple[str, ...] = tuple(ALIASES)
REQUIRED_FIELDS: tuple[str, ...] = ("ts", "input_tokens", "output_tokens")
# A required field that another one can stand in for: input excluding the cache (plus reads and writes).
STAND_INS: dict[str, str] = {"input_tokens": "uncached_input_tokens"}


def normalize(name: str) -> str:
    """The comparison key of a column name: lower case without spaces, `_` or `-`."""
    return re.sub(r"[\s_\-]+", "", name.strip().lower())


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
        for name, keys in fmt.fixed.items():
            key = next((k for k in ((keys,) if isinstance(keys, str) else keys) if k in by_key), None)
            if key is not None:
                mapping[name] = by_key[key]
                used.add(by_key[key])
    for name, aliases in ALIASES.items():
        if name in mapping or (name == "input_tokens" and "uncached_input_tokens" in mapping):
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


def missing(mapping: dict[str, str]) -> list[str]:
    """The required fields that no column (nor a stand-in) feeds."""
    return [name for name in REQUIRED_FIELDS if name not in mapping and STAND_INS.get(name) not in mapping]


def require(detection: Detection) -> None:
    """Raise InvalidInput naming the first required field that no column feeds."""
    for name in missing(detection.mapping):
        aliases = ", ".join(ALIASES[name][:6])
        raise InvalidInput(
            f"missing required column for {name} (looked for {aliases}, ...); columns found: "
            f"{', '.join(detection.columns) or '(none)'}. Name it with a mapping, e.g. "
            f'{{"{name}": "<column>"}}',
            field=name,
            columns=list(detection.columns),
        )
