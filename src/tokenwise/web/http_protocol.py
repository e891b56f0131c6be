"""uvicorn's h11 HTTP protocol with the header limits answered and a deadline on the request headers.

uvicorn answers a header block over h11's limit with a 400 and, worse, never times out a connection whose
request headers do not finish (slowloris: one byte every few seconds holds a socket for ever). Here a
request's headers must arrive within `header_timeout_s` of the connection's (or the request's) first byte,
and an over-size block is a 431 followed by the close.

A TCP peer address may hold at most `max_connections_per_address` open connections (0: no cap): the one
over it gets a 503 before any of its request is read, and is closed. A connection upgraded to a
WebSocket hands its slot to the WebSocket protocol, which frees it when the socket closes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from tokenwise.config import Settings
from tokenwise.web.lean_protocol import LeanWebSocketProtocol

log = logging.getLogger("tokenwise.http")
# A refused client's request is read and dropped (this long, this much at most) rather than left unread:
# closing a socket with unread bytes resets the connection, and the reset can destroy the 503 in flight.
_REFUSED_LINGER_S = 1.0
_REFUSED_MAX_BYTES = 64 * 1024


class AddressSlots:
    """The open connections of one server, counted per TCP peer address."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._open: dict[str, int] = {}
        self._refused = 0
        self._logged_at = -60.0

    def take(self, address: str) -> Callable[[], None] | None:
        """A slot for a connection from `address` (its release, safe to call twice); None when full."""
        held = self._open.get(address, 0)
        if self.cap and held >= self.cap:
            return None
        self._open[address] = held + 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                if (left := self._open[address] - 1) > 0:
                    self._open[address] = left
                else:
                    del self._open[address]

        return release

    def held(self, address: str) -> int:
        return self._open.get(address, 0)

    def refused(self, address: str) -> None:
        """Log a refusal: the first, then a count once a minute at most (a flood must not flood the log)."""
        self._refused += 1
        now = time.monotonic()
        if now - self._logged_at >= 60:
            log.warning(
                "refused %d connection(s) over the cap of %d per address (the latest from %s)",
                self._refused,
                self.cap,
                address,
            )
            self._refused, self._logged_at = 0, now


class LeanHttpProtocol(H11Protocol):
    """H11Protocol with a header deadline, 431 for over-size header blocks and a cap per address."""

    header_timeout_s = 10.0
    max_header_bytes = 16 * 1024
    slots = AddressSlots(0)  # each server's class has its own (http_protocol)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_deadline: asyncio.TimerHandle | None = None
        self._release_slot: Callable[[], None] | None = None
        self._refused_bytes: int | None = None  # counted once refused, while its request is dropped

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and peer:  # TCP; a Unix socket's peers are not told apart
            self._release_slot = self.slots.take(str(peer[0]))
            if self._release_slot is None:
                self._refuse(str(peer[0]))
                return
        self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_deadline()
        if self._release_slot is not None:
            self._release_slot()
        super().connection_lost(exc)

    def eof_received(self) -> None:
        if self._refused_bytes is not None:
            self.transport.close()  # the refused client has sent all it will: it has our answer
        else:
            super().eof_received()

    def _refuse(self, address: str) -> None:
        # Answered before anything is read; the request is then dropped until the client closes, or the
        # linger ends (see _REFUSED_LINGER_S).
        self._refused_bytes = 0
        self.slots.refused(address)
        message = f"Too many connections from this address (at most {self.slots.cap})"
        self._send_error(503, message, close=False)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(_REFUSED_LINGER_S, self.transport.close)

    def data_received(self, data: bytes) -> None:
        if self._refused_bytes is not None:
            self._refused_bytes += len(data)
            if self._refused_bytes > _REFUSED_MAX_BYTES:
                self.transport.close()
            return
        if self.conn.their_state is h11.IDLE and self._headers_over_limit(data):
            # h11 limits only an unfinished block: one that arrives whole in a packet passes it.
            self._unset_keepalive_if_required()
            self._cancel_header_deadline()
            self._send_error(431, f"Request header fields too large: over {self.max_header_bytes} bytes")
            return
        super().data_received(data)
        if self.transport.is_closing():
            self._cancel_header_deadline()
        elif self.conn.their_state is h11.IDLE:
            self._arm_header_deadline()  # a new request's headers began (or the first is still coming)
        else:
            self._cancel_header_deadline()  # headers complete: the app has the request

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        self._cancel_header_deadline()
        super().handle_websocket_upgrade(event)
        # The transport now calls the WebSocket protocol's connection_lost, not ours: the slot goes along.
        release, self._release_slot = self._release_slot, None
        if release is not None:
            websocket = self.transport.get_protocol()
            if isinstance(websocket, LeanWebSocketProtocol):
                websocket.release_on_close = release
            else:
                release()

    def _headers_over_limit(self, data: bytes) -> bool:
        pending = self.conn.trailing_data[0] + data
        end = pending.find(b"\r\n\r\n")
        return (end if end >= 0 else len(pending)) > self.max_header_bytes

    def _send_error(self, status: int, msg: str, *, close: bool = True) -> None:
        # Written as bytes: h11 has no response to send while the request's headers are unread.
        body = msg.encode("ascii")
        head = (
            f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\ncontent-type: text/plain; charset=utf-8\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
        )
        self.transport.write(head.encode("ascii") + body)
        if close:
            self.transport.close()

    def _arm_header_deadline(self) -> None:
        if self._header_deadline is None:
            self._header_deadline = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _cancel_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        pending, _ = self.conn.trailing_data
        if not pending and self.timeout_keep_alive_task is not None:
            return  # an idle keep-alive connection: uvicorn's own keep-alive timeout closes it
        if pending:
            self._send_error(408, "Request headers not received in time")
        else:
            self.transport.close()


def http_protocol(settings: Settings) -> type[LeanHttpProtocol]:
    """The protocol class for one server, with its settings' limits."""
    return type(
        "LeanHttpProtocol",
        (LeanHttpProtocol,),
        {
            "header_timeout_s": settings.header_timeout_s,
            "max_header_bytes": settings.max_header_bytes,
            "slots": AddressSlots(settings.max_connections_per_address),
        },
    )
