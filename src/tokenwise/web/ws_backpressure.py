"""Slow consumers: a WebSocket client that stops reading is closed with 4408 `slow_consumer`.

uvicorn's protocol makes the app's next send wait while the transport's buffer is over its high-water
mark, without a deadline: the connection's sender waited for ever on a client that stopped reading, and
even the keepalive timeout's close waited behind the unsent bytes, so the socket and the user's
connection slot stayed taken. Here the high-water mark is `ws_send_buffer_bytes` (beyond what the kernel
holds), and a connection owed more than that for `ws_slow_consumer_s` (or four times it at once) is
closed: the 4408 close frame is queued behind what it is owed, the app is told the client is gone (its
slot is freed at once, its waiting send fails), the socket is closed when the client echoes the close
and dropped after a short grace if it never does. A client that reads again in time sees everything it
was owed and the close frame; any client can resume.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn._types import ASGISendEvent

from tokenwise.config import Settings
from tokenwise.web.lean_protocol import LeanWebSocketProtocol

log = logging.getLogger("tokenwise.websocket")
CLOSE_SLOW_CONSUMER = 4408
HARD_FACTOR = 4  # owed this many times the bound: closed at once, without waiting


class BoundedWebSocketProtocol(LeanWebSocketProtocol):
    """The lean protocol with a bound on what one client may be owed (bytes and time)."""

    max_owed_bytes = 1024 * 1024
    slow_after_s = 10.0
    close_grace_s = 5.0  # after the close frame, time for a client that reads again to get it

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._slow_timer: asyncio.TimerHandle | None = None
        self._drop_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        # the app's sends wait above this; below it, the client is keeping up
        self.transport.set_write_buffer_limits(high=self.max_owed_bytes)

    async def send(self, message: ASGISendEvent) -> None:
        await super().send(message)
        if message["type"] == "websocket.send" and not self.close_sent:
            owed = self.transport.get_write_buffer_size()
            if owed > HARD_FACTOR * self.max_owed_bytes:
                self.close_slow_consumer(owed)
            elif owed > self.max_owed_bytes and self._slow_timer is None:
                self._slow_timer = self.loop.call_later(self.slow_after_s, self._check_owed)

    def _check_owed(self) -> None:
        self._slow_timer = None
        if not self.close_sent and (owed := self.transport.get_write_buffer_size()) > self.max_owed_bytes:
            self.close_slow_consumer(owed)

    def close_slow_consumer(self, owed: int) -> None:
        """Queue the 4408 close, tell the app the client is gone, and drop the socket after the grace."""
        log.info("websocket: client owed %d bytes and not reading; closed with 4408 slow_consumer", owed)
        self.stop_keepalive()
        self.conn.send_close(CLOSE_SLOW_CONSUMER, "slow_consumer")
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        self.queue.put_nowait({"type": "websocket.disconnect", "code": CLOSE_SLOW_CONSUMER})
        self.writable.set()  # a send waiting for the buffer to drain fails now instead
        # Not closed yet: closing a socket with unread input resets it, and the reset discards what the
        # client has not read yet, the close frame included. So its input is read (and discarded) until
        # it echoes the close, which closes the socket (uvicorn's handle_close, through close_timer) ...
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
        self._drop_later()
        self.close_timer = self._drop_timer

    def keepalive_timeout(self) -> None:
        super().keepalive_timeout()  # its close waits for the buffer to drain, for ever if nobody reads
        self._drop_later()

    def _drop_later(self) -> None:
        if self._drop_timer is None:
            self._drop_timer = self.loop.call_later(self.close_grace_s, self.transport.abort)  # or dropped

    def connection_lost(self, exc: Exception | None) -> None:
        for timer in (self._slow_timer, self._drop_timer):
            if timer is not None:
                timer.cancel()
        self._slow_timer = self._drop_timer = None
        super().connection_lost(exc)


def websocket_protocol(settings: Settings) -> type[BoundedWebSocketProtocol]:
    """The protocol class uvicorn builds per WebSocket connection, with this server's bounds."""
    return type(
        "BoundedWebSocketProtocol",
        (BoundedWebSocketProtocol,),
        {
            "max_owed_bytes": settings.ws_send_buffer_bytes,
            "slow_after_s": settings.ws_slow_consumer_s,
            "close_grace_s": settings.ws_close_grace_s,
        },
    )
