"""Request bodies bounded while they are read, per route: an over-size body is answered with 413.

A pure ASGI middleware: a declared Content-Length over the limit is refused before a byte of the body
is read; a chunked (or lying) body is counted as its `http.request` messages arrive and refused the
moment it passes the limit. Nothing over the limit is ever buffered, whatever the route does with it.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

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

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            # ours, or the app's wrapping of it (FastAPI turns an error reading a body into a 400)
            if not state["refused"]:
                raise


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


async def _refuse(send: Send, path: str, limit: int) -> None:
    error = TooLarge(
        f"the request body for {path} is over the limit of {human_bytes(limit)} ({limit} bytes)",
        limit_bytes=limit,
    )
    body = json.dumps(error.body(), separators=(",", ":")).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),  # the unread rest of the body is not read: close after this
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
