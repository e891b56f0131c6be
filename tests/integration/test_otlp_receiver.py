"""Live capture over OpenTelemetry: the OTel Python SDK's OTLP/HTTP exporter sends GenAI spans to a real
server, and the next answer over the WebSocket counts and prices them. Also OTLP/JSON, gzip, the limits,
and the replies the OTLP specification asks for."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import Callable, Iterator
from importlib import resources
from typing import Any

import duckdb
import httpx
import pytest
from google.rpc import status_pb2
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from support.clients import Account, collect_run, open_ws, send_message, signup
from support.live import LiveServer

MODEL = "gpt-4o"
PROTOBUF = {"Content-Type": "application/x-protobuf"}


async def key_for(server: LiveServer, account: Account, *scopes: str) -> str:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        created = await http.post(
            "/api/keys",
            json={"name": "otel", "scopes": list(scopes or ("ingest", "read"))},
            headers={"Authorization": f"Bearer {account.access_token}"},
        )
    assert created.status_code == 201, created.text
    secret: str = created.json()["secret"]
    return secret


def list_price(model: str) -> dict[str, float]:
    """The shipped price book's list price of `model`, read straight from the file."""
    book = json.loads(resources.files("tokenwise.usage").joinpath("prices.json").read_text())
    entry: dict[str, float] = book["models"][model]
    return entry


@pytest.fixture
def tracer_for() -> Iterator[Callable[..., tuple[Any, TracerProvider]]]:
    """A tracer whose spans go to `url` through the SDK's OTLP/HTTP exporter (its own provider)."""
    providers: list[TracerProvider] = []

    def make(url: str, secret: str, **exporter: Any) -> tuple[Any, TracerProvider]:
        provider = TracerProvider(resource=Resource.create({"service.name": "support-bot"}))
        provider.add_span_processor(
            BatchSpanProcessor(
                OTLPSpanExporter(
                    endpoint=f"{url}/v1/traces", headers={"Authorization": f"Bearer {secret}"}, **exporter
                )
            )
        )
        providers.append(provider)
        return provider.get_tracer("tokenwise.tests"), provider

    yield make
    for provider in providers:
        provider.shutdown()


async def answer(server: LiveServer, account: Account, question: str) -> dict[str, Any]:
    ws, _ = await open_ws(server.ws_url, account.access_token)
    try:
        ack = await send_message(ws, question)
        events = await collect_run(ws, ack["run_id"], timeout=60)
    finally:
        await ws.close()
    result: dict[str, Any] = events[-1]["data"]["result"]["answer"]
    return result


def figure(answer: dict[str, Any], unit: str) -> float:
    values = [f["value"] for f in answer["figures"] if f["unit"] == unit]
    assert values, answer
    return float(values[0])


async def test_sdk_exporter_spans_appear_in_the_next_answer(
    server: LiveServer, tracer_for: Callable[..., tuple[Any, TracerProvider]]
) -> None:
    account = await signup(server.url)
    secret = await key_for(server, account)
    tracer, provider = tracer_for(server.url, secret, compression=Compression.Gzip)
    calls = [(1000 + 37 * i, 150 + 11 * i, 512 if i % 3 == 0 else 0) for i in range(12)]
    for i, (prompt, completion, cached) in enumerate(calls):
        # The application's own span ("handle request") is not GenAI: ignored, only counted.
        with (
            tracer.start_as_current_span("handle request"),
            tracer.start_as_current_span(f"chat {MODEL}", kind=SpanKind.CLIENT) as span,
        ):
            span.set_attributes(
                {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": MODEL,
                    "gen_ai.usage.input_tokens": prompt,
                    "gen_ai.usage.output_tokens": completion,
                    "user.id": f"user-{i % 4}",
                }
            )
            if cached:
                span.set_attribute("gen_ai.usage.cache_read.input_tokens", cached)
    assert await asyncio.to_thread(provider.force_flush, 30_000)

    price = list_price(MODEL)
    spend = sum(
        ((p - c) * price["input"] + c * (price["cached_input"] or price["input"]) + o * price["output"]) / 1e6
        for p, o, c in calls
    )
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        listed = (await http.get("/api/datasets", headers={"Authorization": f"Bearer {secret}"})).json()
    (stream,) = listed["datasets"]
    assert (stream["name"], stream["row_count"]) == ("workload events", len(calls))

    requests = await answer(server, account, "how many requests did we make?")
    assert figure(requests, "requests") == len(calls)
    spent = await answer(server, account, "what did we spend?")
    assert figure(spent, "usd") == pytest.approx(spend, rel=1e-6)
    assert spend > 0.01  # large enough that rounding could not hide a wrong price


# (input, cache reads, cache writes, output) and the attribute names of the cache counts: the conventions'
# (`cache_read.input_tokens`), then OpenLLMetry's (`cache_read_input_tokens`). The input includes the cache,
# as the conventions say, except in the last call, where it is reported without it (Anthropic's own way).
CACHE_CALLS = [
    (12_000 + 100 * i, 8_000, 2_000 if i % 2 else 0, 300 + i, "." if i % 3 else "_") for i in range(9)
] + [(250, 6_000, 1_500, 120, ".")]


def cache_attributes(inp: int, read: int, write: int, out: int, style: str) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": "claude-sonnet-4-5",
        "gen_ai.usage.input_tokens": inp,
        "gen_ai.usage.output_tokens": out,
        f"gen_ai.usage.cache_read{style}input_tokens": read,
    }
    if write:
        attributes[f"gen_ai.usage.cache_creation{style}input_tokens"] = write
    return attributes


def cache_truth() -> tuple[int, int, int, float]:
    """(input, cache reads, cache writes, spend) from the calls and the price book's file, apart from
    Tokenwise: reads at the cached rate, writes at the 5-minute write rate, the rest at the input rate."""
    price = list_price("claude-sonnet-4-5")
    inputs = reads = writes = 0
    spend = 0.0
    for inp, read, write, out, _ in CACHE_CALLS:
        total = inp if inp >= read + write else inp + read + write
        inputs, reads, writes = inputs + total, reads + read, writes + write
        uncached = total - read - write
        spend += (uncached * price["input"] + read * price["cached_input"] + write * price["cache_write"]
                  + out * price["output"]) / 1e6  # fmt: skip
    return inputs, reads, writes, spend


def stored_tokens(server: LiveServer, user_id: str) -> tuple[int, int, int]:
    usage = server.services.datasets.usage_for(user_id)
    paths = [str(p) for p in server.call(usage.parquet_paths())]
    with duckdb.connect() as con:
        row = con.execute(
            "SELECT sum(input_tokens), sum(cached_input_tokens), sum(cache_write_tokens) "
            "FROM read_parquet(?, union_by_name = true)",
            [paths],
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


async def test_cache_reads_and_writes_are_priced_as_such(
    server: LiveServer, tracer_for: Callable[..., tuple[Any, TracerProvider]]
) -> None:
    account = await signup(server.url)
    secret = await key_for(server, account)
    tracer, provider = tracer_for(server.url, secret)
    for call in CACHE_CALLS:
        with tracer.start_as_current_span("chat claude-sonnet-4-5", kind=SpanKind.CLIENT) as span:
            span.set_attributes(cache_attributes(*call))
    assert await asyncio.to_thread(provider.force_flush, 30_000)
    inputs, reads, writes, spend = cache_truth()
    assert stored_tokens(server, account.user_id) == (inputs, reads, writes)
    spent = await answer(server, account, "what did we spend?")
    assert figure(spent, "usd") == pytest.approx(spend, rel=1e-6)
    # Priced as plain input, the writes would cost less and the reads far more: the figure tells them apart.
    price = list_price("claude-sonnet-4-5")
    outputs = sum(call[3] for call in CACHE_CALLS)
    assert abs(spend - (inputs * price["input"] + outputs * price["output"]) / 1e6) > 0.1

    # The same spans in an OTLP/JSON file, uploaded: the same rules.
    other = await signup(server.url)
    document = json_body([json_span(n + 1, **cache_attributes(*call)) for n, call in enumerate(CACHE_CALLS)])
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        uploaded = await http.post(
            "/api/datasets", files={"file": ("spans.json", document)},
            headers={"Authorization": f"Bearer {other.access_token}"},
        )  # fmt: skip
    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json()["detected_format"] == "otel_genai_spans"
    assert stored_tokens(server, other.user_id) == (inputs, reads, writes)
    from_file = await answer(server, other, "what did we spend?")
    assert figure(from_file, "usd") == pytest.approx(spend, rel=1e-6)


def json_body(spans: list[dict[str, Any]]) -> bytes:
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "rag-api"}}]}
    document = {
        "resourceSpans": [{"resource": resource, "scopeSpans": [{"scope": {"name": "t"}, "spans": spans}]}]
    }
    return json.dumps(document).encode()


def json_span(n: int, **attributes: Any) -> dict[str, Any]:
    start = 1_764_590_400_000_000_000 + n * 1_000_000_000
    values = [
        {"key": k, "value": {"intValue": str(v)} if isinstance(v, int) else {"stringValue": v}}
        for k, v in attributes.items()
    ]
    return {
        "traceId": "5b8efff798038103d269b633813fc60c",
        "spanId": f"{n:016x}",
        "name": "chat",
        "kind": 3,
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(start + 400_000_000),
        "attributes": values,
    }


GENAI = {
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.usage.input_tokens": 300,
    "gen_ai.usage.output_tokens": 40,
}


async def test_otlp_json_with_a_partial_success(server: LiveServer) -> None:
    account = await signup(server.url)
    secret = await key_for(server, account, "ingest")
    spans = [
        json_span(1, **GENAI),
        json_span(2, **GENAI),
        json_span(3, **{**GENAI, "gen_ai.usage.output_tokens": "lots"}),
        json_span(4, **{"http.route": "/search"}),
    ]
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        response = await http.post("/api/otlp/v1/traces", content=json_body(spans), headers=headers)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/json"
        partial = response.json()["partialSuccess"]
        assert partial["rejectedSpans"] == "1"  # int64 is a string in OTLP/JSON
        assert "gen_ai.usage.output_tokens is not a non-negative integer ('lots')" in partial["errorMessage"]
        clean = await http.post("/v1/traces", content=json_body([json_span(5, **GENAI)]), headers=headers)
        assert (clean.status_code, clean.json()) == (200, {})
    usage = server.services.datasets.usage_for(account.user_id)
    assert server.call(usage.row_count()) == 3


def protobuf_body(count: int, tokens: int = 100) -> bytes:
    request = ExportTraceServiceRequest()
    spans = request.resource_spans.add().scope_spans.add().spans
    for n in range(count):
        span = spans.add(
            trace_id=bytes(15) + b"\x01", span_id=(n + 1).to_bytes(8, "big"), name="chat",
            start_time_unix_nano=1_764_590_400_000_000_000 + n, end_time_unix_nano=1_764_590_401_000_000_000,
        )  # fmt: skip
        for key, value in (("gen_ai.request.model", "gpt-4o"),):
            span.attributes.add(key=key).value.string_value = value
        for key, number in (("gen_ai.usage.input_tokens", tokens), ("gen_ai.usage.output_tokens", 5)):
            span.attributes.add(key=key).value.int_value = number
    return request.SerializeToString()


async def test_gzip_protobuf_and_the_reply(server: LiveServer) -> None:
    account = await signup(server.url)
    secret = await key_for(server, account, "ingest")
    headers = {**PROTOBUF, "Authorization": f"Bearer {secret}", "Content-Encoding": "gzip"}
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        response = await http.post("/v1/traces", content=gzip.compress(protobuf_body(3)), headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-protobuf"
    reply = ExportTraceServiceResponse.FromString(response.content)
    assert not reply.HasField("partial_success")
    assert server.call(server.services.datasets.usage_for(account.user_id).row_count()) == 3


async def test_refusals_follow_the_otlp_spec(start_server: Callable[..., LiveServer]) -> None:
    server = start_server(max_upload_bytes=64 * 1024)
    account = await signup(server.url)
    secret = await key_for(server, account, "ingest")
    reader = await key_for(server, account, "read")
    auth = {"Authorization": f"Bearer {secret}"}

    def status_of(response: httpx.Response) -> status_pb2.Status:
        assert response.headers["content-type"] == "application/x-protobuf"
        return status_pb2.Status.FromString(response.content)

    async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        bomb = gzip.compress(b"\0" * (8 * 1024 * 1024))
        assert len(bomb) < 64 * 1024
        refused = await http.post(
            "/v1/traces", content=bomb, headers={**PROTOBUF, **auth, "Content-Encoding": "gzip"}
        )
        assert refused.status_code == 413
        assert "decompressed body is over the limit" in status_of(refused).message

        oversize = protobuf_body(2000)
        assert len(oversize) > 64 * 1024
        declared = await http.post("/v1/traces", content=oversize, headers={**PROTOBUF, **auth})
        assert declared.status_code == 413

        async def chunks() -> Any:  # no Content-Length: the limit holds as the bytes arrive
            for start in range(0, len(oversize), 8192):
                yield oversize[start : start + 8192]

        streamed = await http.post("/v1/traces", content=chunks(), headers={**PROTOBUF, **auth})
        assert streamed.status_code == 413

        garbage = await http.post("/v1/traces", content=b"\xff\xff\xff garbage", headers={**PROTOBUF, **auth})
        assert garbage.status_code == 400
        assert status_of(garbage).code == 3
        bad_json = await http.post(
            "/v1/traces", content=b"{oops", headers={**auth, "Content-Type": "application/json"}
        )
        assert bad_json.status_code == 400
        assert bad_json.json()["error"]["code"] == "malformed_body"
        wrong_type = await http.post(
            "/v1/traces", content=b"x", headers={**auth, "Content-Type": "text/plain"}
        )
        assert wrong_type.status_code == 415

        anonymous = await http.post("/v1/traces", content=protobuf_body(1), headers=PROTOBUF)
        assert anonymous.status_code == 401
        assert anonymous.headers["www-authenticate"] == "Bearer"
        no_scope = await http.post(
            "/v1/traces", content=protobuf_body(1), headers={**PROTOBUF, "Authorization": f"Bearer {reader}"}
        )
        assert no_scope.status_code == 403
        assert status_of(no_scope).code == 7

        key_id = (
            await http.get("/api/keys", headers={"Authorization": f"Bearer {account.access_token}"})
        ).json()
        first = next(k for k in key_id["keys"] if k["scopes"] == ["ingest"])
        revoke = await http.delete(
            f"/api/keys/{first['id']}", headers={"Authorization": f"Bearer {account.access_token}"}
        )
        assert revoke.status_code == 204
        revoked = await http.post("/v1/traces", content=protobuf_body(1), headers={**PROTOBUF, **auth})
        assert revoked.status_code == 401
        assert status_of(revoked) == status_pb2.Status(code=16, message="the API key has been revoked")
        revoked_json = await http.post(
            "/v1/traces",
            content=json_body([json_span(1, **GENAI)]),
            headers={**auth, "Content-Type": "application/json"},
        )
        assert revoked_json.status_code == 401
        assert revoked_json.json()["error"]["reason"] == "api_key_revoked"

    assert server.call(server.services.datasets.usage_for(account.user_id).row_count()) == 0


async def test_the_sdk_exporter_with_a_revoked_key_stores_nothing(
    server: LiveServer, tracer_for: Callable[..., tuple[Any, TracerProvider]]
) -> None:
    account = await signup(server.url)
    secret = await key_for(server, account, "ingest")
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        user = {"Authorization": f"Bearer {account.access_token}"}
        (key,) = (await http.get("/api/keys", headers=user)).json()["keys"]
        assert (await http.delete(f"/api/keys/{key['id']}", headers=user)).status_code == 204
    tracer, provider = tracer_for(server.url, secret)
    with tracer.start_as_current_span("chat", kind=SpanKind.CLIENT) as span:
        span.set_attributes(GENAI)
        span.set_status(Status(StatusCode.OK))
    await asyncio.to_thread(provider.force_flush, 30_000)
    assert server.call(server.services.datasets.usage_for(account.user_id).row_count()) == 0
