"""Running the app under uvicorn, with a graceful shutdown that tells WebSocket clients first."""

from __future__ import annotations

import asyncio
import gc
import logging
import re
import signal
import socket
from typing import Any

import uvicorn
from fastapi import FastAPI

from tokenwise.config import Settings
from tokenwise.services.container import Services
from tokenwise.web.http_protocol import http_protocol
from tokenwise.web.lean_protocol import PROTOCOL_LOGGER
from tokenwise.web.websocket import ChatFastPath
from tokenwise.web.ws_backpressure import websocket_protocol

log = logging.getLogger(__name__)


class Server(uvicorn.Server):
    """On SIGTERM: stop accepting, let this process's runs finish, send `server_shutdown` + 1012, exit."""

    def __init__(self, config: uvicorn.Config, services: Services, *, freeze_heap: bool = False) -> None:
        super().__init__(config)
        self.services = services
        self.freeze_heap = freeze_heap

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.freeze_heap and not self.should_exit:
            # What start-up built (about 195,000 objects: the app, its services, DuckDB, the vocabularies)
            # lives as long as the process. Out of the cyclic collector's sight, a full collection walks
            # what came since (a few thousand objects) instead of stopping the loop for 60-110 ms (as
            # measured on the busy 2-core machine) in the middle of everyone's runs. Only for a whole
            # process (`tokenwise serve`): a test serving in its own process would pin earlier tests'
            # garbage.
            gc.freeze()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        services = self.services
        services.stopping = True
        for server in self.servers:
            server.close()
        grace = services.settings.shutdown_grace_s
        try:
            # A worker (role=all or worker) finishes or hands back its runs first; an API process has
            # none: its clients resume on another process while the runs go on.
            await asyncio.wait_for(services.drain(grace * 0.8), timeout=grace * 0.8 + 1)
        except (TimeoutError, Exception):
            log.warning("shutdown: runs did not finish within the grace period")
        await services.connections.shutdown_all()
        await super().shutdown(sockets)
        # uvicorn re-raises a handled SIGTERM once serving ends, so the process would die by the signal
        # (status -15). The shutdown was graceful: exit 0, as process managers expect.
        self._captured_signals = [s for s in self._captured_signals if s != signal.SIGTERM]


class _DenialIsNotAnError(logging.Filter):
    """uvicorn's sans-I/O WebSocket protocol logs an ERROR after every denial response (our 401/403 on a
    refused upgrade), because it never marks a denied handshake complete. Our endpoint always accepts or
    denies, so that line is noise that would drown real errors in operators' alerts."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "ASGI callable returned without completing handshake."


class _RedactCredentials(logging.Filter):
    """No credential reaches a log line, even when a client puts one in a URL (refused with 401, but
    uvicorn logs the request line first): API keys, JWTs, and the values of credential query parameters
    (tokens, tickets, refresh tokens, passwords)."""

    _PATTERNS = (
        (re.compile(r"tw_[A-Za-z0-9_\-]{8,}"), "tw_[redacted]"),
        # a JWT (three base64url parts), wherever it appears
        (re.compile(r"eyJ[A-Za-z0-9_\-]{6,}\.[A-Za-z0-9_\-]{6,}\.[A-Za-z0-9_\-]*"), "[redacted-jwt]"),
        (
            re.compile(
                r"(?i)([?&;](?:access_token|id_token|refresh_token|token|ticket|password|passwd|secret|"
                r"api_key|apikey|key|code|authorization)=)[^&#\s\"']*"
            ),
            r"\1[redacted]",
        ),
        (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/\-]+=*"), r"\1 [redacted]"),
    )

    # What every pattern needs somewhere in the text: most log lines (a connect's access line) have none
    # of it, and one search replaces the four substitutions.
    _CANDIDATE = re.compile(r"tw_|eyJ|=|(?i:bearer)")

    def _redact(self, text: str) -> str:
        if self._CANDIDATE.search(text) is None:
            return text
        for pattern, replacement in self._PATTERNS:
            text = pattern.sub(replacement, text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(self._redact(arg) if isinstance(arg, str) else arg for arg in record.args)
        if isinstance(record.msg, str):
            record.msg = self._redact(record.msg)
        return True


_REDACT_CREDENTIALS = _RedactCredentials()


def make_server(
    app: FastAPI,
    settings: Settings,
    *,
    log_level: str = "info",
    freeze_heap: bool = False,
    **uvicorn_options: Any,
) -> Server:
    """A uvicorn server configured for the chat protocol's limits and heartbeat.

    `uvicorn_options` go to uvicorn.Config as they are (tests use them to serve TLS: `ssl_certfile`).
    """
    config = uvicorn.Config(
        ChatFastPath(app, app.state.services),
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        lifespan="on",
        http=http_protocol(settings),
        ws=websocket_protocol(settings),  # the lean protocol, closing slow consumers (4408)
        h11_max_incomplete_event_size=settings.max_header_bytes,
        timeout_keep_alive=settings.keep_alive_timeout_s,
        ws_max_size=settings.max_message_bytes,
        ws_ping_interval=settings.heartbeat_interval_s,
        ws_ping_timeout=settings.heartbeat_interval_s,
        ws_per_message_deflate=False,
        timeout_graceful_shutdown=max(1, int(settings.shutdown_grace_s)),
        proxy_headers=True,
        server_header=False,
        **uvicorn_options,
    )
    logging.getLogger("uvicorn.error").addFilter(_DenialIsNotAnError())
    logging.getLogger(PROTOCOL_LOGGER).setLevel(logging.WARNING)  # see web/lean_protocol.py
    for name in ("uvicorn.access", "uvicorn.error"):
        logging.getLogger(name).addFilter(_REDACT_CREDENTIALS)  # the same filter once, however many servers
    for name in ("", "uvicorn", "uvicorn.access", "uvicorn.error"):
        for handler in logging.getLogger(name).handlers:  # and every record these handlers write
            handler.addFilter(_REDACT_CREDENTIALS)
    return Server(config, app.state.services, freeze_heap=freeze_heap)
