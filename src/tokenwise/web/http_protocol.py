"""uvicorn's h11 HTTP protocol with the header limits answered and a deadline on the request headers.

uvicorn answers a header block over h11's limit with a 400 and, worse, never times out a connection whose
request headers do not finish (slowloris: one byte every few seconds holds a socket for ever). Here a
request's headers must arrive within `header_timeout_s` of the connection's (or the request's) first byte,
and an over-size block is a 431 followed by the close.
"""

from __future__ import annotations

import asyncio
from http import HTTPStatus
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from tokenwise.config import Settings


class LeanHttpProtocol(H11Protocol):
    """H11Protocol with a header deadline and 431 for over-size header blocks."""

    header_timeout_s = 10.0
    max_header_bytes = 16 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
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

    def _headers_over_limit(self, data: bytes) -> bool:
        pending = self.conn.trailing_data[0] + data
        end = pending.find(b"\r\n\r\n")
        return (end if end >= 0 else len(pending)) > self.max_header_bytes

    def _send_error(self, status: int, msg: str) -> None:
        # Written as bytes: h11 has no response to send while the request's headers are unread.
        body = msg.encode("ascii")
        head = (
            f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\ncontent-type: text/plain; charset=utf-8\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
        )
        self.transport.write(head.encode("ascii") + body)
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
        {"header_timeout_s": settings.header_timeout_s, "max_header_bytes": settings.max_header_bytes},
    )
