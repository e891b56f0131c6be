"""One chat WebSocket: open it with a credential, send messages, read a run's events, resume a run.

Frames are read on demand, by whichever call is waiting: events of a run nobody is reading yet are kept,
per run, until someone asks for that run, so one connection can carry several runs at once.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import deque
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.typing import Subprotocol

from tokenwise.client.errors import (
    ConnectionClosed,
    HandshakeRejected,
    ProtocolViolation,
    ServerError,
    Unreachable,
    error_body,
)
from tokenwise.client.types import Ack, Event, Welcome
from tokenwise.session.handshake import SUBPROTOCOL, Method, encode_subprotocol_token

ABNORMAL_CLOSURE = 1006


def ws_url_for(base_url: str) -> str:
    """The chat WebSocket URL of a server's base URL: http(s)://host → ws(s)://host/ws."""
    parts = urlsplit(base_url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + "/ws", "", ""))


class Connection:
    """An authenticated chat connection; its `welcome` is the server's connection_established frame."""

    def __init__(
        self, ws: ClientConnection, welcome: Welcome, *, read_timeout_s: float | None = 60.0
    ) -> None:
        self.ws, self.welcome = ws, welcome
        # How long any read waits for the next frame before giving up (TimeoutError); None: forever.
        self.read_timeout_s = read_timeout_s
        # Runs this connection follows (acked here, or resumed), each with its events not yet read.
        # All of a user's connections receive all of that user's runs; events of other runs are dropped.
        self._runs: dict[str, deque[Event]] = {}
        self._acks: deque[Ack] = deque()
        self.ignored_events = 0

    async def __aenter__(self) -> Connection:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self.ws.close(code, reason)

    @property
    def close_code(self) -> int | None:
        """The close code once the connection has closed (1006 when no close frame came), else None."""
        return self.ws.close_code

    # ---- frames ------------------------------------------------------------------------------------
    async def send_frame(self, frame: dict[str, Any]) -> None:
        try:
            await self.ws.send(json.dumps(frame, separators=(",", ":")))
        except websockets.ConnectionClosed as exc:
            raise _closed(exc) from exc

    async def recv_frame(self) -> dict[str, Any]:
        """The next frame, whatever it is; `error` frames are returned, not raised."""
        try:
            text = await asyncio.wait_for(self.ws.recv(), self.read_timeout_s)
        except websockets.ConnectionClosed as exc:
            raise _closed(exc) from exc
        try:
            frame = json.loads(text)
        except ValueError as exc:
            raise ProtocolViolation(f"the server sent a frame that is not JSON: {str(text)[:80]!r}") from exc
        if not isinstance(frame, dict) or "type" not in frame:
            raise ProtocolViolation(f"the server sent a frame without a type: {str(text)[:80]!r}")
        return frame

    async def _next(self) -> dict[str, Any]:
        """The next frame, after queueing it if it is a run event or an ack; raises on `error`."""
        frame = await self.recv_frame()
        kind = frame["type"]
        if kind == "error":
            details = {k: v for k, v in frame.items() if k not in ("type", "code", "message")}
            raise ServerError(str(frame.get("code", "error")), str(frame.get("message", "")), details)
        if kind == "ack":
            ack = Ack.from_frame(frame)
            self._acks.append(ack)
            self._runs.setdefault(ack.run_id, deque())  # the server sends the ack before any event
        elif "seq" in frame and "run_id" in frame:
            queue = self._runs.get(frame["run_id"])
            if queue is None:
                self.ignored_events += 1
            else:
                queue.append(Event.from_frame(frame))
        return frame

    # ---- requests ----------------------------------------------------------------------------------
    async def send_message(
        self,
        content: str,
        *,
        thread_id: str | None = None,
        client_message_id: str | None = None,
    ) -> Ack:
        """Send a user message and wait for its ack (a new run, or the same ack for a repeated id)."""
        client_message_id = client_message_id or uuid.uuid4().hex
        frame: dict[str, Any] = {"type": "user_message", "content": content}
        frame["client_message_id"] = client_message_id
        if thread_id is not None:
            frame["thread_id"] = thread_id
        await self.send_frame(frame)
        while True:
            for ack in self._acks:
                if ack.client_message_id == client_message_id:
                    self._acks.remove(ack)
                    return ack
            await self._next()

    async def events(self, run_id: str) -> AsyncIterator[Event]:
        """The run's events as they arrive, up to and including the final one.

        Exactly what the server sent: a duplicate or a gap is left for the caller to see (and count).
        The run is followed from the moment of this call if it was not already (acked or resumed here).
        """
        queue = self._runs.setdefault(run_id, deque())
        try:
            while True:
                while not queue:
                    await self._next()
                event = queue.popleft()
                yield event
                if event.final:
                    return
        finally:
            if not queue:
                self._runs.pop(run_id, None)

    async def resume(self, run_id: str, after_seq: int) -> AsyncIterator[Event]:
        """Ask for the run's events after `after_seq` (stored, then live); iterate them to the final one."""
        self._runs.setdefault(run_id, deque())
        await self.send_frame({"type": "resume", "run_id": run_id, "after_seq": after_seq})
        async for event in self.events(run_id):
            yield event

    async def ping(self) -> dict[str, Any]:
        """An application-level ping; returns the pong frame."""
        await self.send_frame({"type": "ping"})
        while (frame := await self._next())["type"] != "pong":
            pass
        return frame


async def connect(
    ws_url: str,
    token: str,
    method: Method | str = Method.HEADER,
    *,
    ticket: str | None = None,
    open_timeout: float = 10.0,
    read_timeout_s: float | None = 60.0,
    ping_interval: float | None = 20.0,
    **options: Any,
) -> Connection:
    """Open `ws_url` with one credential method and read the welcome frame.

    For `ticket`, pass the ticket (see `Client.connect`, which fetches one); `token` is then unused.
    """
    method = Method(method)
    url, headers, subprotocols = ws_url, dict(options.pop("additional_headers", {})), None
    if method is Method.HEADER:
        headers["Authorization"] = f"Bearer {token}"
    elif method is Method.SUBPROTOCOL:
        subprotocols = [Subprotocol(SUBPROTOCOL), Subprotocol(encode_subprotocol_token(token))]
    elif method is Method.TICKET:
        if not ticket:
            raise ValueError("the ticket method needs a ticket")
        url = f"{ws_url}?ticket={ticket}"
    options.setdefault("proxy", None)
    options.setdefault("compression", None)
    try:
        ws = await websockets.connect(
            url,
            additional_headers=headers,
            subprotocols=subprotocols,
            open_timeout=open_timeout,
            ping_interval=ping_interval,
            **options,
        )
    except websockets.InvalidStatus as exc:
        code, message = error_body(bytes(exc.response.body))
        status = exc.response.status_code
        raise HandshakeRejected(
            f"the server refused the WebSocket connection (HTTP {status} {code}): {message}",
            status=status,
            code=code,
        ) from exc
    except (OSError, TimeoutError, websockets.InvalidHandshake) as exc:
        raise Unreachable(ws_url, _why(exc)) from exc
    try:
        if method is Method.FIRST_MESSAGE:
            await ws.send(json.dumps({"type": "auth", "token": token}))
        text = await asyncio.wait_for(ws.recv(), open_timeout)
    except websockets.ConnectionClosed as exc:
        raise _closed(exc) from exc
    except BaseException:
        await ws.close()
        raise
    try:
        return Connection(ws, Welcome.from_frame(_expect_welcome(text)), read_timeout_s=read_timeout_s)
    except ProtocolViolation:
        await ws.close()
        raise


def _expect_welcome(text: str | bytes) -> dict[str, Any]:
    try:
        frame = json.loads(text)
    except ValueError as exc:
        raise ProtocolViolation("the first frame is not JSON") from exc
    if not isinstance(frame, dict) or frame.get("type") != "connection_established":
        kind = frame.get("type") if isinstance(frame, dict) else type(frame).__name__
        raise ProtocolViolation(f"expected connection_established first, got {kind!r}")
    if "connection_id" not in frame or "user_id" not in frame:
        raise ProtocolViolation("the connection_established frame lacks connection_id or user_id")
    return frame


def _closed(exc: websockets.ConnectionClosed) -> ConnectionClosed:
    if exc.rcvd is None:
        return ConnectionClosed(ABNORMAL_CLOSURE, "no close frame received")
    return ConnectionClosed(exc.rcvd.code, exc.rcvd.reason)


def _why(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the server running?)"
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__
