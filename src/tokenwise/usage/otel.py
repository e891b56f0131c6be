"""OpenTelemetry GenAI spans -> usage records (the fields of `POST /api/workload/events`).

Pure functions over an `ExportTraceServiceRequest`, decoded from protobuf or from the OTLP/JSON mapping.
A span is a GenAI span when it names a model (`gen_ai.request.model` / `gen_ai.response.model`) or
carries token usage (`gen_ai.usage.*`); any other span (HTTP handlers, database calls, a workflow's
parent span) is ignored and only counted. A GenAI span whose values cannot be read is rejected, with
the reason, and the others go on.

Units follow the GenAI semantic conventions: `gen_ai.usage.input_tokens` includes the input read from and
written to a provider's prompt cache (`gen_ai.usage.cache_read.input_tokens` and
`gen_ai.usage.cache_creation.input_tokens` SHOULD be part of it), which is also the normalized schema's
rule; reads are priced at the cached rate and writes at the cache-write rate. An instrumentation that
reports input without the cache (as Anthropic's API does) is recognised by an input smaller than its
cache reads and writes together: those are added to it.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from tokenwise.errors import MalformedBody

# First present wins: the current semantic conventions, then older names and those of common
# instrumentations (OpenLLMetry, OpenLIT) that predate them.
MODEL_KEYS = ("gen_ai.response.model", "gen_ai.request.model")
PROVIDER_KEYS = ("gen_ai.provider.name", "gen_ai.system")
INPUT_KEYS = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens")
OUTPUT_KEYS = ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens")
CACHED_KEYS = (
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_read_input_tokens",
    "gen_ai.usage.cached_tokens",
)
# Writes to the prompt cache (Anthropic's cache_creation_input_tokens): the conventions' name, then
# OpenLLMetry's. No convention tells 5-minute from 1-hour writes: they are priced as 5-minute writes.
CACHE_WRITE_KEYS = (
    "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.usage.cache_creation_input_tokens",
)
USER_KEYS = ("user.id", "enduser.id", "gen_ai.user.id")
FEATURE_KEYS = ("service.name",)
_PROBLEMS_SHOWN = 3


@dataclass
class Extraction:
    """What a batch of spans held: usage records, and the spans ignored and rejected."""

    records: list[dict[str, Any]] = field(default_factory=list)
    ignored: int = 0
    rejected: int = 0
    problems: list[str] = field(default_factory=list)

    def message(self) -> str:
        """The partial-success message: the first few reasons for rejected spans."""
        if not self.rejected:
            return ""
        shown = "; ".join(self.problems[:_PROBLEMS_SHOWN])
        more = f" (and {self.rejected - _PROBLEMS_SHOWN} more)" if self.rejected > _PROBLEMS_SHOWN else ""
        return f"{self.rejected} GenAI span(s) rejected: {shown}{more}"


class _Rejected(Exception):
    pass


def parse_protobuf(body: bytes) -> ExportTraceServiceRequest:
    """An `ExportTraceServiceRequest` from its protobuf encoding; MalformedBody when it is not one."""
    try:
        return ExportTraceServiceRequest.FromString(body)
    except (DecodeError, RecursionError) as exc:
        raise MalformedBody(
            f"the body is not an OTLP ExportTraceServiceRequest: {exc}", field="body"
        ) from exc


def parse_json(body: bytes) -> ExportTraceServiceRequest:
    """An `ExportTraceServiceRequest` from OTLP/JSON (hex trace and span ids, integer enums)."""
    try:
        document = json.loads(body)
        if not isinstance(document, dict):
            raise ValueError("expected a JSON object with resourceSpans")
        _ids_to_base64(document)
        return json_format.ParseDict(document, ExportTraceServiceRequest(), ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, RecursionError) as exc:
        raise MalformedBody(f"the body is not OTLP/JSON trace data: {exc}", field="body") from exc


def _ids_to_base64(document: dict[str, Any]) -> None:
    # OTLP/JSON writes ids in hex, where the protobuf JSON mapping expects base64 for `bytes` fields.
    for resource_spans in _items(document, "resourceSpans", "resource_spans"):
        for scope_spans in _items(resource_spans, "scopeSpans", "scope_spans"):
            for span in _items(scope_spans, "spans"):
                _convert_ids(span)
                for link in _items(span, "links"):
                    _convert_ids(link)


def _items(node: Any, *keys: str) -> Iterator[dict[str, Any]]:
    if not isinstance(node, dict):
        return
    for key in keys:
        values = node.get(key)
        if isinstance(values, list):
            yield from (value for value in values if isinstance(value, dict))


def _convert_ids(node: dict[str, Any]) -> None:
    for key in ("traceId", "trace_id", "spanId", "span_id", "parentSpanId", "parent_span_id"):
        value = node.get(key)
        if isinstance(value, str) and value:
            # Not hex: left as it is, for the parser to say what is wrong.
            with contextlib.suppress(ValueError):
                node[key] = base64.b64encode(bytes.fromhex(value)).decode()


def extract(request: ExportTraceServiceRequest) -> Extraction:
    """Usage records of the request's GenAI spans; the other spans are counted as ignored."""
    result = Extraction()
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            scope = {**resource, **_attributes(scope_spans.scope.attributes)}
            for span in scope_spans.spans:
                own = _attributes(span.attributes)
                if not _is_genai(own):
                    result.ignored += 1
                    continue
                try:
                    result.records.append(usage_record(span, {**scope, **own}))
                except _Rejected as exc:
                    result.rejected += 1
                    result.problems.append(f"span {span.span_id.hex() or '?'} ({span.name}): {exc}")
    return result


def _is_genai(attributes: Mapping[str, Any]) -> bool:
    return any(key in attributes for key in MODEL_KEYS) or any(
        key.startswith("gen_ai.usage.") for key in attributes
    )


def usage_record(span: Span, attributes: Mapping[str, Any]) -> dict[str, Any]:
    """One span as a workload-event record (span attributes over scope and resource attributes)."""
    if span.start_time_unix_nano <= 0:
        raise _Rejected("startTimeUnixNano is missing")
    start = datetime.fromtimestamp(span.start_time_unix_nano / 1e9, UTC)
    end_ns = span.end_time_unix_nano
    latency_ms = (end_ns - span.start_time_unix_nano) / 1e6 if end_ns >= span.start_time_unix_nano else None
    failed = span.status.code == Status.STATUS_CODE_ERROR or bool(attributes.get("error.type"))
    input_tokens, output_tokens = _count(attributes, INPUT_KEYS), _count(attributes, OUTPUT_KEYS)
    if input_tokens is None and output_tokens is None and not failed:
        raise _Rejected(f"no token usage ({INPUT_KEYS[0]} / {OUTPUT_KEYS[0]})")
    cached, written = _count(attributes, CACHED_KEYS), _count(attributes, CACHE_WRITE_KEYS)
    cache = (cached or 0) + (written or 0)
    if cache and (input_tokens or 0) < cache:
        input_tokens = (input_tokens or 0) + cache  # reported without the cache (see the module docstring)
    trace_id, span_id = span.trace_id.hex(), span.span_id.hex()
    return {
        "ts": start.isoformat(),
        "model": _text(attributes, MODEL_KEYS),
        "provider": _text(attributes, PROVIDER_KEYS),
        # A call that failed before any usage was reported still counts as a request, with no tokens.
        "input_tokens": input_tokens or 0,
        "output_tokens": output_tokens or 0,
        "cached_input_tokens": cached,
        "cache_write_tokens": written,
        "latency_ms": latency_ms,
        "status": "error" if failed else "ok",
        "user": _text(attributes, USER_KEYS),
        "feature": _text(attributes, FEATURE_KEYS),
        "request_id": f"{trace_id}-{span_id}" if trace_id and span_id else None,
    }


def _attributes(values: Any) -> dict[str, Any]:
    pairs: list[KeyValue] = list(values)
    return {pair.key: _value(pair.value) for pair in pairs}


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {pair.key: _value(pair.value) for pair in value.kvlist_value.values}
    return getattr(value, kind)


def _text(attributes: Mapping[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = attributes.get(key)
        if isinstance(value, str | int | float) and not isinstance(value, bool) and str(value).strip():
            return str(value).strip()[:200]
    return None


def _count(attributes: Mapping[str, Any], keys: tuple[str, ...]) -> int | None:
    for key in keys:
        if key not in attributes:
            continue
        value = attributes[key]
        number: float | None = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                number = None
        if number is None or not (0 <= number < 1e15) or number != int(number):
            raise _Rejected(f"{key} is not a non-negative integer ({value!r})")
        return int(number)
    return None


__all__ = ["Extraction", "extract", "parse_json", "parse_protobuf", "usage_record"]
