"""The OTLP/HTTP trace receiver: GenAI spans from any OpenTelemetry SDK or collector become usage rows.

`POST /v1/traces` (and `/api/otlp/v1/traces`, for deployments that route only `/api`) takes an
`ExportTraceServiceRequest` as `application/x-protobuf` or OTLP/JSON, optionally gzip- or
deflate-compressed, with `Authorization: Bearer <API key with scope ingest>` (or an access token).

Replies follow the OTLP/HTTP specification: 200 with an `ExportTraceServiceResponse` in the request's
encoding (`partial_success` counting rejected GenAI spans), and on failure a `google.rpc.Status` in the
request's encoding (the JSON form also carries the usual `error` object). 400 is for a body that does
not decode, which an exporter must not retry; 413 is for a body over the limit, compressed or not;
429 with Retry-After is for a user over an import quota (imports at once, bytes a day), retried later.
"""

from __future__ import annotations

import asyncio
import json
import logging
import zlib
from enum import Enum

from fastapi import APIRouter, Request, Response
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceResponse,
)

from tokenwise.errors import InvalidInput, MalformedBody, TokenwiseError, TooLarge, UnsupportedMediaType
from tokenwise.security.apikeys import Scope
from tokenwise.services.container import Services
from tokenwise.usage import otel
from tokenwise.usage.datasets import human_bytes
from tokenwise.usage.import_quota import Meter
from tokenwise.web.deps import AppServices, authenticate
from tokenwise.web.errors import error_headers

log = logging.getLogger(__name__)
router = APIRouter(tags=["otlp"])
# The OpenTelemetry Collector's default max_request_body_size: a body is decoded in memory, so the
# upload limit (sized for files streamed to disk) is capped here.
MAX_OTLP_BYTES = 20 * 1024 * 1024
# google.rpc.Code of each HTTP status an OTLP client may see from here.
_RPC_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 413: 8, 415: 3, 422: 3, 429: 8, 503: 14}


class Encoding(Enum):
    PROTOBUF = "application/x-protobuf"
    JSON = "application/json"


def encoding_of(content_type: str | None) -> Encoding | None:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media in ("application/x-protobuf", "application/protobuf"):
        return Encoding.PROTOBUF
    if media == "application/json":
        return Encoding.JSON
    return None


async def read_body(request: Request, limit: int, meter: Meter | None = None) -> bytes:
    """The request body, refused with 413 as soon as it passes `limit` bytes (or says it will); counted
    by `meter` against the user's import bytes of the day (429 once over them)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    if meter is not None and declared.isdigit():
        meter.expect(int(declared))
    body = bytearray()
    async for chunk in request.stream():
        if meter is not None:
            await meter.received(len(chunk))
        body += chunk
        if len(body) > limit:
            raise _too_large(limit)
    return bytes(body)


def inflate(body: bytes, content_encoding: str | None, limit: int) -> bytes:
    """`body` decompressed per Content-Encoding, never past `limit` bytes of output (a gzip bomb is 413)."""
    coding = (content_encoding or "identity").strip().lower()
    if coding in ("", "identity"):
        return body
    if coding not in ("gzip", "deflate"):
        raise UnsupportedMediaType(
            f"Content-Encoding {coding!r} is not supported; use gzip, deflate or none",
            field="content-encoding",
        )
    wbits = 16 + zlib.MAX_WBITS if coding == "gzip" else zlib.MAX_WBITS
    out = bytearray()
    data = body
    try:
        while data:  # one pass per gzip member: concatenated members are one body
            stream = zlib.decompressobj(wbits)
            while data and not stream.eof:
                out += stream.decompress(data, limit + 1 - len(out))
                if len(out) > limit:
                    raise TooLarge(
                        f"the decompressed body is over the limit of {human_bytes(limit)} ({limit} bytes)",
                        limit_bytes=limit,
                    )
                data = stream.unconsumed_tail
            if not stream.eof:
                raise MalformedBody(f"the {coding} body is truncated", field="body")
            data = stream.unused_data
    except zlib.error as exc:
        raise MalformedBody(f"the body is not valid {coding}: {exc}", field="body") from exc
    return bytes(out)


def _too_large(limit: int) -> TooLarge:
    return TooLarge(f"the body is over the limit of {human_bytes(limit)} ({limit} bytes)", limit_bytes=limit)


def decode(body: bytes, content_encoding: str | None, encoding: Encoding, limit: int) -> otel.Extraction:
    """Decompress, parse and read the spans (CPU work: run it off the event loop)."""
    raw = inflate(body, content_encoding, limit)
    parse = otel.parse_json if encoding is Encoding.JSON else otel.parse_protobuf
    return otel.extract(parse(raw))


def _reply(encoding: Encoding, extraction: otel.Extraction) -> Response:
    reply = ExportTraceServiceResponse()
    if extraction.rejected:
        reply.partial_success.CopyFrom(
            ExportTracePartialSuccess(rejected_spans=extraction.rejected, error_message=extraction.message())
        )
    if encoding is Encoding.JSON:
        return Response(json_format.MessageToJson(reply, indent=None), media_type=encoding.value)
    return Response(reply.SerializeToString(), media_type=encoding.value)


def _failure(encoding: Encoding, error: TokenwiseError) -> Response:
    code = _RPC_CODES.get(error.http_status, 2)
    headers = error_headers(error)
    if encoding is Encoding.JSON:
        body = {"code": code, "message": error.message, **error.body()}
        return Response(json.dumps(body), error.http_status, headers, media_type=encoding.value)
    return Response(_rpc_status(code, error.message), error.http_status, headers, media_type=encoding.value)


def _rpc_status(code: int, message: str) -> bytes:
    """A `google.rpc.Status {code = 1; message = 2}`, encoded by hand (its module is not a dependency)."""
    text = message.encode()
    return b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


@router.post("/v1/traces")
@router.post("/api/otlp/v1/traces")
async def export_traces(request: Request, services: AppServices) -> Response:
    """Store the GenAI spans of an OTLP export as the caller's workload events."""
    encoding = encoding_of(request.headers.get("content-type"))
    try:
        if encoding is None:
            raise UnsupportedMediaType(
                "send application/x-protobuf or application/json (OTLP/HTTP)", field="content-type"
            )
        caller = await authenticate(request, services, Scope.INGEST)
        limit = min(services.settings.max_upload_bytes, MAX_OTLP_BYTES)
        async with services.datasets.quota.importing(caller.user_id) as meter:
            body = await read_body(request, limit, meter)
            content_encoding = request.headers.get("content-encoding")
            extraction = await asyncio.to_thread(decode, body, content_encoding, encoding, limit)
            await _store(services, caller.user_id, extraction.records)
    except TokenwiseError as exc:
        return _failure(encoding or Encoding.PROTOBUF, exc)
    services.metrics.otlp_spans(len(extraction.records), extraction.ignored, extraction.rejected)
    if extraction.rejected:
        log.info("otlp: %d GenAI span(s) rejected for user %s", extraction.rejected, caller.user_id)
    return _reply(encoding, extraction)


async def _store(services: Services, user_id: str, records: list[dict[str, object]]) -> None:
    batch = services.datasets.max_event_batch
    for start in range(0, len(records), batch):
        try:
            await services.datasets.append_events(user_id, records[start : start + batch])
        except InvalidInput as exc:
            if isinstance(exc, MalformedBody | UnsupportedMediaType):
                raise
            # OTLP has no 422: a batch the ingester refuses is a bad request, not one to retry.
            raise MalformedBody(exc.message, **exc.details) from exc
