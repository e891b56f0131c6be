"""Request bodies bounded while they are read, per route: an over-size body is answered with 413.

A pure ASGI middleware: a declared Content-Length over the limit is refused before a byte of the body
is read; a chunked (or lying) body is counted as its `http.request` messages arrive and refused the
moment it passes the limit. Nothing over the limit is ever buffered, whatever the route does with it.

A JSON body (a JSON content type, or none: FastAPI then reads JSON too) is read whole first, as the route
would, and refused with 422 `invalid_json` when it nests deeper than jsonlimits.MAX_DEPTH: the parser
behind FastAPI recurses once per level and would otherwise fail only a thousand levels down. Uploads,
OTLP (which inflates and reads its own body) and compressed bodies are passed through unscanned.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tokenwise import jsonlimits
from tokenwise.config import Settings
from tokenwise.errors import TooLarge
from tokenwise.usage.datasets import human_bytes
from tokenwise.web.otlp_routes import MAX_OTLP_BYTES
from tokenwise.web.uploads import ENVELOPE_BYTES

# Multipart uploads stream to disk (web/uploads.py checks the file part's exact size); OTLP bodies are
# decoded in memory and capped by otlp_routes at the same figure.
UPLOAD_PATHS = frozenset({"/api/datasets", "/api/datasets/preview"})
OTLP_PATHS = frozenset({"/v1/traces", "/api/otlp/v1/traces"})
EVENT_PATHS = frozenset({"/api/workload/events"})
# The scan holds the GIL, but off the event loop other requests still get their turn: a 16 MiB event
# batch takes about 0.1 s to scan (1 s if it is nothing but brackets).
_SCAN_IN_THREAD_BYTES = 1024 * 1024


def body_limit(path: str, settings: Settings) -> int:
    """The most bytes a request body to `path` may have."""
    if path in UPLOAD_PATHS:
        return settings.max_upload_bytes + ENVELOPE_BYTES
    if path in OTLP_PATHS:
        return MAX_OTLP_BYTES
    if path in EVENT_PATHS:
        return settings.max_events_body_bytes
    if path.startswith("/auth/"):
        return settings.max_auth_body_bytes
    return settings.max_json_body_bytes


class _OverLimit(Exception):
    """Raised into the app from `receive` once the 413 has been sent."""


class BodyLimit:
    """Refuse request bodies over their route's limit with 413, without reading the rest."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app, self.settings = app, settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit(scope["path"], self.settings)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(send, scope["path"], limit)
            return
        state = {"received": 0, "started": False, "refused": False}

        async def limited_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > limit:
                    if not state["started"]:
                        state["refused"] = True
                        await _refuse(send, scope["path"], limit)
                    raise _OverLimit
            return message

        async def guarded_send(message: Message) -> None:
            if state["refused"]:
                return  # the app's answer to the exception it got from receive: the 413 already went
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        if _scans_json(scope, declared):
            await self._scanned(scope, receive, limited_receive, send)
            return
        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            # ours, or the app's wrapping of it (FastAPI turns an error reading a body into a 400)
            if not state["refused"]:
                raise

    async def _scanned(self, scope: Scope, receive: Receive, limited_receive: Receive, send: Send) -> None:
        """Read the whole (bounded) body, refuse it if too deep, else hand it to the app as read."""
        try:
            body = await _read_all(limited_receive)
        except _OverLimit:
            return  # the 413 went
        if body is None:
            return  # the client left before sending all of it: nobody to answer
        if await _too_deep(body):
            error = jsonlimits.TooDeep(jsonlimits.MAX_DEPTH)
            message = f"the request body is not valid JSON: it is {error}"
            detail = {"code": "invalid_json", "message": message, "field": None, "max_depth": error.limit}
            await _answer(send, 422, {"error": detail})
            return
        await self.app(scope, _replay(body, receive), send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


def _scans_json(scope: Scope, declared: int | None) -> bool:
    """Whether this request has a body FastAPI would parse as JSON, and no reason to leave it unscanned."""
    if scope["path"] in UPLOAD_PATHS or scope["path"] in OTLP_PATHS:
        return False
    headers = dict(scope["headers"])
    if declared == 0 or (declared is None and b"transfer-encoding" not in headers):
        return False  # no body
    if headers.get(b"content-encoding", b"identity").strip().lower() not in (b"", b"identity"):
        return False  # not JSON text as it stands; no route here parses it as JSON anyway
    media = headers.get(b"content-type", b"").split(b";", 1)[0].strip().lower()
    # FastAPI's own test: no content type, or application/json, or application/<anything>+json.
    return media in (b"", b"application/json") or (
        media.startswith(b"application/") and media.endswith(b"+json")
    )


async def _read_all(receive: Receive) -> bytes | None:
    """The whole body (bounded by `receive`, which raises _OverLimit), or None if the client left."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _too_deep(body: bytes) -> bool:
    if len(body) > _SCAN_IN_THREAD_BYTES:
        return await asyncio.to_thread(jsonlimits.too_deep, body)
    return jsonlimits.too_deep(body)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives the body read already as one message, then what the client sends next."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()  # an http.disconnect, for responses that watch for it
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _refuse(send: Send, path: str, limit: int) -> None:
    error = TooLarge(
        f"the request body for {path} is over the limit of {human_bytes(limit)} ({limit} bytes)",
        limit_bytes=limit,
    )
    # the unread rest of the body is not read: close after this
    await _answer(send, 413, error.body(), close=True)


async def _answer(send: Send, status: int, payload: dict[str, Any], *, close: bool = False) -> None:
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
