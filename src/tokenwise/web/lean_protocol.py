"""uvicorn's sans-I/O WebSocket protocol, trimmed for many long-lived idle connections.

An idle chat connection is mostly bookkeeping that waits: uvicorn's receive queue (three deques), its
write-readiness event (one deque), and the handshake request and response it keeps after the 101.
Here they are replaced by equivalents that allocate only while something is actually waiting.

Two gaps of uvicorn's protocol are closed here too: a handshake that the websockets library refuses while
parsing it (a header line over 8 KiB, too many headers) got its 431 prepared but never sent, and the
socket was held open for ever; and a text frame that is not UTF-8 closed with 1007, no reason and a
logged traceback.

A connection upgraded from HTTP brings its slot of the per-address connection cap (web/http_protocol.py)
as `release_on_close`, called when the socket closes.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from uvicorn._types import ASGISendEvent
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

T = TypeVar("T")
log = logging.getLogger("tokenwise.websocket")
# The websockets library's own per-connection lines ("connection open", "connection closed") go here,
# not to uvicorn.error: they repeat uvicorn's access line for each socket (two log records per connect,
# about a tenth of a connect storm's CPU); make_server keeps this logger at WARNING.
PROTOCOL_LOGGER = "tokenwise.websocket.protocol"
CLOSE_INVALID_DATA = 1007


class Mailbox(Generic[T]):
    """The part of asyncio.Queue that uvicorn uses, for one consumer (the app's receive)."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: deque[T] | None = None
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: T) -> None:
        if self._items is None:
            self._items = deque()
        self._items.append(item)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def get(self) -> T:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        item = self._items.popleft()
        if not self._items:
            self._items = None
        return item

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items) if self._items else 0


class Flag:
    """The part of asyncio.Event that uvicorn uses (set, clear, wait), with waiters only when waiting."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = False
        self._waiters: list[asyncio.Future[None]] | None = None

    def set(self) -> None:
        self._set = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> bool:
        if self._set:
            return True
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if self._waiters is not None and waiter in self._waiters:
                self._waiters.remove(waiter)
        return True


class LeanWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's protocol with the lighter mailbox and flag, and no handshake objects after the 101."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.conn.logger = logging.getLogger(PROTOCOL_LOGGER)
        self.conn.debug = self.conn.logger.isEnabledFor(logging.DEBUG)
        self.queue = Mailbox()  # type: ignore[assignment]
        self.writable = Flag()  # type: ignore[assignment]
        self.writable.set()
        self.release_on_close: Callable[[], None] | None = None

    def connection_lost(self, exc: Exception | None) -> None:
        try:
            super().connection_lost(exc)
        finally:
            if self.release_on_close is not None:
                self.release_on_close()

    async def send(self, message: ASGISendEvent) -> None:
        await super().send(message)
        if message["type"] == "websocket.accept":
            if self.request is not None:
                # websockets' parser keeps the parsed request for the connection's life (a local of
                # its suspended generator): emptied, its headers no longer cost 2.8 KiB per socket.
                self.request.headers.clear()
            self.request = self.response = None  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if not self.handshake_initiated and self.conn.handshake_exc is not None:
            # websockets refused the request while parsing it (431, 414) or found no HTTP request in it:
            # send what it prepared (nothing for garbage) and close.
            self.handshake_complete = self.close_sent = True
            output = self.conn.data_to_send()
            self.transport.write(b"".join(output))
            self.transport.close()

    def send_receive_event_to_app(self) -> None:
        if self.curr_msg_data_type == "text" and not self.close_sent:
            try:
                b"".join(self.frames).decode()
            except UnicodeDecodeError as exc:
                log.info("websocket: a text frame is not UTF-8 (%s); closed with 1007", exc.reason)
                self.frames = []
                self.conn.send_close(CLOSE_INVALID_DATA, "invalid_utf8: text frames must be UTF-8")
                self.handle_parser_exception()
                return
        super().send_receive_event_to_app()
