"""GenAI spans -> usage records: the attribute rules, decoded from protobuf and from OTLP/JSON."""

from __future__ import annotations

import json
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from tokenwise.errors import MalformedBody
from tokenwise.usage.otel import extract, parse_json, parse_protobuf

START_NS = 1_764_590_400_000_000_000  # 2025-12-01T12:00:00Z
TRACE = bytes.fromhex("5b8efff798038103d269b633813fc60c")


def attr(key: str, value: Any) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def span(n: int, attributes: dict[str, Any], *, error: bool = False, start: int = START_NS) -> Span:
    return Span(
        trace_id=TRACE,
        span_id=n.to_bytes(8, "big"),
        name=f"chat {n}",
        start_time_unix_nano=start,
        end_time_unix_nano=start + 1_500_000_000 if start else 0,
        attributes=[attr(k, v) for k, v in attributes.items()],
        status=Status(code=Status.STATUS_CODE_ERROR if error else Status.STATUS_CODE_UNSET),
    )


def request(*spans: Span, resource: dict[str, Any] | None = None) -> ExportTraceServiceRequest:
    out = ExportTraceServiceRequest()
    rs: ResourceSpans = out.resource_spans.add()
    rs.resource.attributes.extend(
        attr(k, v) for k, v in (resource or {"service.name": "support-bot"}).items()
    )
    scope: ScopeSpans = rs.scope_spans.add()
    scope.spans.extend(spans)
    return out


CHAT = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o",
    "gen_ai.response.model": "gpt-4o-2024-08-06",
    "gen_ai.usage.input_tokens": 1200,
    "gen_ai.usage.output_tokens": 300,
    "gen_ai.usage.cache_read.input_tokens": 1024,
    "user.id": "alice",
}


def test_a_chat_span_becomes_one_record_with_every_field() -> None:
    extraction = extract(request(span(1, CHAT)))
    assert (extraction.ignored, extraction.rejected) == (0, 0)
    assert extraction.records == [
        {
            "ts": "2025-12-01T12:00:00+00:00",
            "model": "gpt-4o-2024-08-06",  # the model that answered, over the one asked for
            "provider": "openai",
            "input_tokens": 1200,
            "output_tokens": 300,
            "cached_input_tokens": 1024,
            "cache_write_tokens": None,
            "latency_ms": 1500.0,
            "status": "ok",
            "user": "alice",
            "feature": "support-bot",
            "request_id": f"{TRACE.hex()}-0000000000000001",
        }
    ]


def test_older_attribute_names_and_string_numbers_are_read() -> None:
    legacy = {
        "gen_ai.system": "anthropic",
        "gen_ai.request.model": "claude-sonnet-4",
        "gen_ai.usage.prompt_tokens": "800",
        "gen_ai.usage.completion_tokens": 50.0,
        "gen_ai.usage.cache_read_input_tokens": 400,
        "enduser.id": "bob",
    }
    (record,) = extract(request(span(2, legacy))).records
    assert record["provider"] == "anthropic"
    assert (record["input_tokens"], record["output_tokens"], record["cached_input_tokens"]) == (800, 50, 400)
    assert record["user"] == "bob"


def test_cache_writes_are_kept_apart_under_either_name() -> None:
    base = {"gen_ai.request.model": "claude-sonnet-4-5", "gen_ai.usage.output_tokens": 90}
    spans = [
        {**base, "gen_ai.usage.input_tokens": 5000, "gen_ai.usage.cache_read.input_tokens": 3000,
         "gen_ai.usage.cache_creation.input_tokens": 1500},
        {**base, "gen_ai.usage.input_tokens": 5000, "gen_ai.usage.cache_read_input_tokens": 3000,
         "gen_ai.usage.cache_creation_input_tokens": 1500},
        # Reported without the cache (input smaller than reads and writes): they are added to it.
        {**base, "gen_ai.usage.input_tokens": 500, "gen_ai.usage.cache_read_input_tokens": 3000,
         "gen_ai.usage.cache_creation_input_tokens": 1500},
        {**base, "gen_ai.usage.cache_creation.input_tokens": 700},  # no input count: the writes are the input
    ]  # fmt: skip
    records = extract(request(*(span(n + 1, attrs) for n, attrs in enumerate(spans)))).records
    counts = [(r["input_tokens"], r["cached_input_tokens"], r["cache_write_tokens"]) for r in records]
    assert counts == [(5000, 3000, 1500), (5000, 3000, 1500), (5000, 3000, 1500), (700, None, 700)]
    bad = {**base, "gen_ai.usage.input_tokens": 10, "gen_ai.usage.cache_creation.input_tokens": -3}
    assert extract(request(span(9, bad))).rejected == 1


def test_span_attributes_win_over_resource_attributes() -> None:
    extraction = extract(
        request(
            span(3, {**CHAT, "service.name": "checkout"}), resource={"service.name": "shop", "user.id": "x"}
        )
    )
    assert extraction.records[0]["feature"] == "checkout"
    assert extraction.records[0]["user"] == "alice"


def test_non_genai_spans_are_ignored_and_bad_genai_spans_rejected_with_the_reason() -> None:
    extraction = extract(
        request(
            span(1, {"http.method": "GET", "http.route": "/"}),
            span(2, {"db.system": "postgresql"}),
            span(3, CHAT),
            span(4, {**CHAT, "gen_ai.usage.input_tokens": -5}),
            span(5, {"gen_ai.request.model": "gpt-4o"}),  # a model but no usage, and it did not fail
            span(6, CHAT, start=0),
        )
    )
    assert (len(extraction.records), extraction.ignored, extraction.rejected) == (1, 2, 3)
    message = extraction.message()
    assert message.startswith("3 GenAI span(s) rejected: ")
    assert "gen_ai.usage.input_tokens is not a non-negative integer (-5)" in message
    assert "no token usage" in message
    assert "startTimeUnixNano is missing" in message


def test_a_failed_call_without_usage_is_a_failed_request_with_no_tokens() -> None:
    (record,) = extract(request(span(7, {"gen_ai.request.model": "gpt-4o"}, error=True))).records
    assert (record["status"], record["input_tokens"], record["output_tokens"]) == ("error", 0, 0)
    (typed,) = extract(request(span(8, {**CHAT, "error.type": "timeout"}))).records
    assert typed["status"] == "error"


def test_protobuf_round_trip_and_garbage() -> None:
    body = request(span(1, CHAT)).SerializeToString()
    assert extract(parse_protobuf(body)).records[0]["input_tokens"] == 1200
    with pytest.raises(MalformedBody):
        parse_protobuf(b"\xff\xff\xff\xff not protobuf")


def test_otlp_json_with_hex_ids_and_string_int64s() -> None:
    document = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "rag"}}]},
                "scopeSpans": [
                    {
                        "scope": {"name": "openlit"},
                        "spans": [
                            {
                                "traceId": TRACE.hex(),
                                "spanId": "eee19b7ec3c1b174",
                                "name": "chat gpt-4o-mini",
                                "kind": 3,
                                "startTimeUnixNano": str(START_NS),
                                "endTimeUnixNano": str(START_NS + 250_000_000),
                                "attributes": [
                                    {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o-mini"}},
                                    {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "42"}},
                                    {"key": "gen_ai.usage.output_tokens", "value": {"intValue": 7}},
                                ],
                                "status": {"code": 2, "message": "rate limited"},
                            }
                        ],
                    }
                ],
            }
        ]
    }
    (record,) = extract(parse_json(json.dumps(document).encode())).records
    assert record["request_id"] == f"{TRACE.hex()}-eee19b7ec3c1b174"
    assert (record["input_tokens"], record["output_tokens"], record["latency_ms"]) == (42, 7, 250.0)
    assert (record["status"], record["feature"]) == ("error", "rag")


@pytest.mark.parametrize(
    "body", [b"not json", b"[1, 2]", b'{"resourceSpans": "nope"}', b'{"resourceSpans": [{"scopeSpans": 1}]}']
)
def test_json_that_is_not_otlp_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedBody):
        parse_json(body)
