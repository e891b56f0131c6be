"""The chat WebSocket (`/ws`): authenticate, welcome, then serve frames and deliver run events.

Every way out has a documented close code (docs/protocol.md); 1011 is reserved for genuine bugs and
carries an error id that is logged with the traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from datetime import UTC, datetime
from typing import Any, NoReturn

from fastapi import WebSocket
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocketDisconnect, WebSocketState

from tokenwise import errors
from tokenwise.errors import AuthenticationError, PermissionDenied, ServiceUnavailable, TokenwiseError
from tokenwise.services.container import Services
from tokenwise.services.feed import Feed
from tokenwise.session import frames
from tokenwise.session.events import CRITICAL_TYPES, RunEvent, now_iso
from tokenwise.session.handshake import SUBPROTOCOL, Credential, Method, offered_subprotocols, read_credential
from tokenwise.session.ratelimit import TokenBucket
from tokenwise.web.errors import error_response
from tokenwise.web.origins import origin_allowed

log = logging.getLogger("tokenwise.websocket")
PROTOCOL_VERSION = 1


class _Closed(Exception):
    """Leave the connection: the close frame has been sent, or the peer is gone."""

    def __init__(self, code: int) -> None:
        self.code = code


class ChatConnection:
    """One authenticated chat connection."""

    def __init__(self, websocket: WebSocket, services: Services) -> None:
        self.ws, self.services, self.settings = websocket, services, services.settings
        self.id = uuid.uuid4().hex
        self.user_id = ""
        self.method: Method | None = None  # how the connection authenticated (the diagnostics frame says)
        self.expires_at = datetime.max.replace(tzinfo=UTC)
        self._send_lock = asyncio.Lock()
        self._feed: Feed | None = None
        self._close_code: int | None = None
        self._expiry: asyncio.TimerHandle | None = None
        self._pumping: asyncio.Task[None] | None = None  # delivering what the feed received, while it does
        self._handshake_headers = b""  # name:value lines (HTTP forbids ':' in names and newlines in values)
        self._background: asyncio.Task[None] | None = None  # the closing at expiry, kept from the GC
        self.loop = asyncio.get_running_loop()
        self._bucket = TokenBucket(
            self.settings.messages_per_second, self.settings.message_burst, self.loop.time()
        )

    # ---- sending -----------------------------------------------------------------------------------
    async def send(self, frame: dict[str, Any]) -> None:
        """Send a frame the server composes; each carries `timestamp` (run events have theirs already)."""
        if "timestamp" not in frame:
            frame = {**frame, "timestamp": now_iso()}
        await self.send_text(json.dumps(frame, separators=(",", ":")))

    async def send_text(self, text: str) -> None:
        async with self._send_lock:
            if self.ws.application_state is not WebSocketState.CONNECTED:
                raise _Closed(errors.CLOSE_GOING_AWAY)
            try:
                await self.ws.send_text(text)
            except (WebSocketDisconnect, RuntimeError, OSError) as exc:
                raise _Closed(errors.CLOSE_GOING_AWAY) from exc

    async def send_event(self, event: RunEvent) -> None:
        await self.send_text(event.body)
        self.services.metrics.event_sent(event.type)

    async def close(self, code: int, reason: str) -> NoReturn:
        async with self._send_lock:
            if self.ws.application_state is WebSocketState.CONNECTED:
                self._close_code = code
                with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
                    await self.ws.close(code, errors.fit_reason(reason))
        raise _Closed(code)

    async def fail(self, error: TokenwiseError) -> None:
        """Send the error frame, and close when the error calls for it."""
        self.services.metrics.error(error.code)
        await self.send({"type": "error", "code": error.code, "message": error.message, **error.details})
        if error.close_code is not None:
            await self.close(error.close_code, errors.close_reason(error))

    async def shutdown(self) -> None:
        """Server shutdown: send what is already due, tell the client, close with 1012 (it resumes)."""
        if self._feed is not None:
            await self._feed.drain(timeout_s=1.0)
        with contextlib.suppress(_Closed):
            await self.send(
                {
                    "type": "server_shutdown",
                    "server_time": now_iso(),
                    "message": "the server is restarting; reconnect and resume",
                }
            )
            await self.close(errors.CLOSE_SERVICE_RESTART, "server_shutdown")

    # ---- handshake ---------------------------------------------------------------------------------
    async def _deny(self, error: TokenwiseError) -> NoReturn:
        self.services.metrics.rejected(error.http_status)
        await self.ws.send_denial_response(error_response(error))
        raise _Closed(error.http_status)

    async def _authenticate(self, credential: Credential) -> None:
        if credential.method is Method.TICKET:
            self.user_id, self.expires_at = await self.services.tickets.redeem_ticket(credential.secret)
        else:
            claims = await self.services.verifier.verify(credential.secret)
            self.user_id, self.expires_at = claims.user_id, claims.expires_at
        self.method = credential.method
        self.services.metrics.auth(True, credential.method.value)

    async def _handshake(self) -> None:
        headers, services = self.ws.headers, self.services
        if not origin_allowed(headers.get("origin"), headers.get("host"), self.settings.allowed_origins):
            await self._deny(
                PermissionDenied(f"origin {headers.get('origin')!r} is not allowed", reason="origin")
            )
        try:
            credential = read_credential(headers, self.ws.query_params)
            if credential.method is not Method.FIRST_MESSAGE:
                await self._authenticate(credential)
        except AuthenticationError as exc:
            services.metrics.auth(False, str(exc.details.get("reason", exc.code)))
            await self._deny(exc)
        except ServiceUnavailable as exc:
            await self._deny(exc)
        offered = offered_subprotocols(headers.get("sec-websocket-protocol"))
        await self.ws.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
        # An idle socket would keep the handshake's headers for its whole life, as a list of pairs of
        # bytes (about 1.4 KiB): one bytes object holds them for the diagnostics frame instead.
        raw: list[tuple[bytes, bytes]] = self.ws.scope["headers"]
        self._handshake_headers = b"\n".join(name + b":" + value for name, value in raw)
        raw.clear()
        if credential.method is Method.FIRST_MESSAGE:
            await self._first_message_auth()

    async def _first_message_auth(self) -> None:
        try:
            message = await asyncio.wait_for(self.ws.receive(), self.settings.auth_timeout_s)
        except TimeoutError:
            self.services.metrics.auth(False, "auth_timeout")
            await self.close(
                errors.CLOSE_UNAUTHENTICATED,
                f'auth_timeout: send {{"type": "auth"}} within {self.settings.auth_timeout_s:g}s',
            )
        if message["type"] == "websocket.disconnect":
            raise _Closed(message.get("code", errors.CLOSE_GOING_AWAY))
        try:
            frame = frames.parse_frame(message.get("text") or "")
        except frames.ProtocolError as exc:
            frame = None
            reason = exc.message
        if not isinstance(frame, frames.Auth):
            self.services.metrics.auth(False, "first_message")
            detail = reason if frame is None else f"expected an auth frame, got {frame.type!r}"
            await self.close(errors.CLOSE_UNAUTHENTICATED, f"unauthenticated: {detail}")
        try:
            await self._authenticate(Credential(Method.FIRST_MESSAGE, frame.token))
        except AuthenticationError as exc:
            self.services.metrics.auth(False, str(exc.details.get("reason", exc.code)))
            await self.close(errors.CLOSE_UNAUTHENTICATED, errors.close_reason(exc))

    # ---- the connection's life ---------------------------------------------------------------------
    async def serve(self) -> int:
        """Run the connection to its end and return the close code."""
        try:
            self.services.connections.hold(self)  # a shutdown during the handshake closes it with a reason
            try:
                await self._handshake()
            finally:
                self.services.connections.release(self)
            return await self._serve_authenticated()
        except _Closed as closed:
            return closed.code
        except ServiceUnavailable as exc:
            with contextlib.suppress(_Closed):
                await self.fail(exc)
            return errors.CLOSE_TRY_AGAIN_LATER
        except Exception:
            error_id = uuid.uuid4().hex[:12]
            log.exception("websocket %s failed [error_id=%s]", self.id, error_id)
            with contextlib.suppress(_Closed):
                await self.close(errors.CLOSE_INTERNAL_ERROR, f"internal_error:{error_id}")
            return errors.CLOSE_INTERNAL_ERROR

    async def _serve_authenticated(self) -> int:
        services = self.services
        try:
            await services.connections.add(self.user_id, self)
        except TokenwiseError as exc:
            services.metrics.rejected(errors.CLOSE_TOO_MANY_CONNECTIONS)
            await self.fail(exc)
        services.metrics.connection_opened()
        code = errors.CLOSE_GOING_AWAY
        try:
            # Subscribe before the welcome: a message sent the instant it arrives loses no event.
            self._feed = await Feed.open(services.bus, self.user_id, services.event_log, self.send_event)
            await self.send(
                {
                    "type": "connection_established",
                    "connection_id": self.id,
                    "user_id": self.user_id,
                    "server_time": now_iso(),
                    "protocol_version": PROTOCOL_VERSION,
                    "heartbeat_interval_s": self.settings.heartbeat_interval_s,
                    "max_message_bytes": self.settings.max_message_bytes,
                    # The same, as clients of the platform Tokenwise replaces read them.
                    "connection_ready": True,
                    "golden_path_events": list(CRITICAL_TYPES),
                    "config": {
                        "heartbeat_interval": self.settings.heartbeat_interval_s,
                        "max_message_size": self.settings.max_message_bytes,
                    },
                }
            )
            # An idle connection costs this task (the reader) and one timer (expiry): it is what 10,000 of
            # them are made of. Events are sent by a task that lives only while there are some (_pump).
            self._feed.when_ready(self._wake_pump)
            self._schedule_expiry()
            code = await self._read_forever()
        except _Closed as closed:
            code = closed.code
        finally:
            if self._pumping is not None:
                self._pumping.cancel()
            if self._expiry is not None:
                self._expiry.cancel()
            if self._feed is not None:
                await self._feed.close()
            await services.connections.remove(self.user_id, self)
            services.metrics.connection_closed(code)
        return code

    async def _read_forever(self) -> int:
        from tokenwise.web.commands import handle  # the frame handlers, one per client frame type

        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                return self._close_code or int(message.get("code") or errors.CLOSE_GOING_AWAY)
            if self._close_code is not None:
                continue  # closing (the pump failed, or the token expired): drain until the disconnect
            self.services.metrics.message()
            if (wait := self._bucket.take(self.loop.time())) > 0:
                await self.fail(errors.RateLimited("too many messages; slow down", retry_after_s=wait))
                continue
            text = message.get("text")
            if text is None:
                await self._protocol_error(
                    frames.ProtocolError(
                        "invalid_message", "binary frames are not supported; send JSON text", field="frame"
                    )
                )
                continue
            try:
                frame = frames.parse_frame(text)
            except frames.ProtocolError as exc:
                await self._protocol_error(exc)
                continue
            await self._require_account()
            try:
                if isinstance(frame, frames.UserMessage) and not self.services.stopping:
                    await self._admit_run(frame)
                await handle(self, frame)
            except (
                errors.NotFound,
                errors.InvalidInput,
                errors.Conflict,
                errors.RateLimited,
                AuthenticationError,
            ) as exc:
                await self.fail_open(exc)

    async def _admit_run(self, frame: frames.UserMessage) -> None:
        """The user's runs a minute (limits/quota.py), before anything is stored: `rate_limited`."""
        try:
            await self.services.run_rate.admit(self.user_id)
        except errors.RateLimited as exc:
            exc.details["client_message_id"] = frame.client_message_id  # which message was not taken
            raise

    async def _require_account(self) -> None:
        """A connection whose account was deleted is closed at its next frame (4401), never 1011."""
        users = self.services.verifier.users
        if users is None:
            return
        try:
            await users.require(self.user_id)
        except AuthenticationError as exc:
            await self.fail_open(exc)
            await self.close(errors.CLOSE_UNAUTHENTICATED, errors.close_reason(exc))

    async def fail_open(self, error: TokenwiseError) -> None:
        """An error frame for a client mistake; the connection stays open whatever the error's class."""
        self.services.metrics.error(error.code)
        await self.send({"type": "error", "code": error.code, "message": error.message, **error.details})

    async def _protocol_error(self, error: frames.ProtocolError) -> None:
        self.services.metrics.error(error.code)
        await self.send(error.frame())

    def handshake_headers(self) -> list[tuple[bytes, bytes]]:
        """The handshake request's headers as the server received them (for the diagnostics frame)."""
        pairs = (line.partition(b":") for line in self._handshake_headers.split(b"\n") if line)
        return [(name, value) for name, _, value in pairs]

    def _wake_pump(self) -> None:
        if self._feed is not None and self._close_code is None:
            self._pumping = asyncio.create_task(self._pump(self._feed))

    async def _pump(self, feed: Feed) -> None:
        """Deliver what the feed has received, then wait for more without a task (`when_ready`); a failure
        closes the connection with its documented code (the reader then sees the disconnect)."""
        try:
            await feed.deliver_ready()
            # Nothing was awaited since the feed said it had nothing more: no event can slip in between.
            self._pumping = None
            feed.when_ready(self._wake_pump)
        except _Closed:
            pass
        except ServiceUnavailable as exc:
            with contextlib.suppress(_Closed):
                await self.fail(exc)
        except Exception:
            error_id = uuid.uuid4().hex[:12]
            log.exception("websocket %s: delivery failed [error_id=%s]", self.id, error_id)
            with contextlib.suppress(_Closed):
                await self.close(errors.CLOSE_INTERNAL_ERROR, f"internal_error:{error_id}")

    def _schedule_expiry(self) -> None:
        remaining = (self.expires_at - datetime.now(UTC)).total_seconds()
        self._expiry = self.loop.call_later(max(0.0, min(remaining, 3600.0)), self._on_expiry_timer)

    def _on_expiry_timer(self) -> None:
        if self.expires_at > datetime.now(UTC):
            self._schedule_expiry()  # refreshed meanwhile (auth_refresh), or further than the timer's cap
        else:
            self._background = asyncio.ensure_future(self._expire())

    async def _expire(self) -> None:
        self.services.metrics.error("token_expired")
        with contextlib.suppress(_Closed):
            await self.send(
                {
                    "type": "error",
                    "code": "token_expired",
                    "message": "the access token expired; reconnect with a fresh one",
                }
            )
            await self.close(errors.CLOSE_UNAUTHENTICATED, "token_expired")

    @property
    def feed(self) -> Feed:
        assert self._feed is not None
        return self._feed


CHAT_PATHS = ("/ws", "/api/v1/websocket")


async def websocket_endpoint(websocket: WebSocket) -> None:
    services: Services = websocket.app.state.services
    await ChatConnection(websocket, services).serve()


class ChatFastPath:
    """ASGI front door: chat WebSockets go straight to their endpoint, everything else to the app.

    An idle connection lives for hours; routed through the app, the frames of every middleware layer and
    its exit stacks stay alive with it (about a quarter of its memory). The app's own /ws routes remain
    for servers that run the app without this wrapper.
    """

    def __init__(self, app: ASGIApp, services: Services) -> None:
        self.app, self.services = app, services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"] in CHAT_PATHS and self.services.settings.serves_api:
            scope["app"] = self.app
            await ChatConnection(WebSocket(scope, receive, send), self.services).serve()
        else:
            await self.app(scope, receive, send)
