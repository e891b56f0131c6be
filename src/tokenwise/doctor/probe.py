"""One WebSocket handshake, observed closely: the HTTP status of a refusal, the close code and reason,
the welcome frame, and whether the server sat waiting for a first-message auth (the credential sent in the
handshake never arrived)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.typing import Subprotocol

from tokenwise.client import ClientError, Connection, Method, Welcome
from tokenwise.doctor.context import Context
from tokenwise.session.handshake import SUBPROTOCOL, encode_subprotocol_token

# The welcome frame follows the 101 at once when the handshake carried a credential. When it does not
# come within this, the doctor sends a ping: a server waiting for a first-message auth closes with 4401.
_WELCOME_WAIT_S = 1.0
AUTH_WAIT_MARK = "expected an auth frame"


@dataclass
class Outcome:
    """What one handshake came to."""

    method: str
    elapsed_ms: float = 0.0
    status: int | None = None  # 101, or the HTTP status of a refused upgrade
    code: str | None = None  # `error.code` of a refusal's JSON body
    reason: str | None = None  # `error.reason` of that body
    message: str = ""
    from_tokenwise: bool = False  # the refusal's body is a Tokenwise error body
    server: str | None = None  # the refusal's Server header
    close_code: int | None = None
    close_reason: str | None = None
    waited_for_auth: bool = False
    subprotocol: str | None = None
    welcome: dict[str, Any] | None = None
    unreachable: str | None = None
    ws: ClientConnection | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.welcome is not None

    def evidence(self) -> dict[str, Any]:
        keys = ("status", "code", "reason", "message", "server", "close_code", "close_reason", "subprotocol")
        found = {key: getattr(self, key) for key in keys if getattr(self, key) not in (None, "")}
        if self.waited_for_auth:
            found["waited_for_first_message_auth"] = True
        if self.unreachable:
            found["unreachable"] = self.unreachable
        found["elapsed_ms"] = round(self.elapsed_ms, 1)
        return found

    def connection(self, read_timeout_s: float | None = 60.0) -> Connection:
        """The open connection as a client-library Connection (for a kept, successful outcome)."""
        assert self.ws is not None
        assert self.welcome is not None
        return Connection(self.ws, Welcome.from_frame(self.welcome), read_timeout_s=read_timeout_s)


@dataclass
class Offer:
    """What a handshake carries: headers, subprotocols, query, and a first frame to send after it."""

    headers: dict[str, str] = field(default_factory=dict)
    subprotocols: list[str] = field(default_factory=list)
    query: str = ""
    first_frame: dict[str, Any] | None = None


async def offer_for(ctx: Context, method: Method, token: str, ticket: str | None = None) -> Offer:
    """The handshake of one credential method, as a client of that kind sends it.

    Browsers (subprotocol, ticket, first message) always send an Origin: the page's, here the URL's own.
    For the ticket method without `ticket`, one is bought (ClientError when that fails).
    """
    origin = {"Origin": ctx.target.origin}
    if method is Method.HEADER:
        return Offer(headers={"Authorization": f"Bearer {token}"})
    if method is Method.SUBPROTOCOL:
        return Offer(headers=origin, subprotocols=[SUBPROTOCOL, encode_subprotocol_token(token)])
    if method is Method.TICKET:
        return Offer(headers=origin, query=f"ticket={ticket or await ctx.client.ticket(token)}")
    return Offer(headers=origin, first_frame={"type": "auth", "token": token})


async def handshake(ctx: Context, method: str, offer: Offer, *, keep: bool = False) -> Outcome:
    """Open the chat WebSocket with `offer` and wait for the welcome; close it unless `keep` (and ok)."""
    outcome = Outcome(method)
    url = ctx.target.ws_url + (f"?{offer.query}" if offer.query else "")
    started = time.perf_counter()
    try:
        ws = await websockets.connect(
            url,
            additional_headers=offer.headers,
            subprotocols=[Subprotocol(item) for item in offer.subprotocols] or None,
            open_timeout=ctx.options.timeout_s,
            ping_interval=None,  # silent: the idle check must measure the proxy, not our own pings
            ssl=ctx.ws_ssl,
            proxy=None,
            compression=None,
        )
    except websockets.InvalidStatus as exc:
        _refused(
            outcome, exc.response.status_code, bytes(exc.response.body), exc.response.headers.get("server")
        )
        outcome.elapsed_ms = (time.perf_counter() - started) * 1000
        return outcome
    except (OSError, TimeoutError, websockets.InvalidHandshake) as exc:
        outcome.unreachable = str(exc) or type(exc).__name__
        outcome.elapsed_ms = (time.perf_counter() - started) * 1000
        return outcome
    outcome.status, outcome.subprotocol = 101, ws.subprotocol
    try:
        if offer.first_frame is not None:
            await ws.send(json.dumps(offer.first_frame))
        outcome.welcome = await _welcome(ctx, ws, outcome)
    except websockets.ConnectionClosed as exc:
        outcome.close_code = exc.rcvd.code if exc.rcvd else 1006
        outcome.close_reason = exc.rcvd.reason if exc.rcvd else "no close frame received"
        outcome.waited_for_auth = AUTH_WAIT_MARK in (outcome.close_reason or "")
    except TimeoutError:
        outcome.message = "no welcome frame in time"
    except ClientError as exc:
        outcome.message = exc.message
    outcome.elapsed_ms = (time.perf_counter() - started) * 1000
    if keep and outcome.ok:
        outcome.ws = ws
    else:
        with contextlib.suppress(websockets.WebSocketException, OSError):
            await ws.close()
    return outcome


async def _welcome(ctx: Context, ws: ClientConnection, outcome: Outcome) -> dict[str, Any]:
    try:
        frame = await _frame(ws, _WELCOME_WAIT_S)
    except TimeoutError:
        # Authenticated connections are welcomed at once; a server waiting for an auth frame answers a
        # ping by closing with 4401 "unauthenticated: expected an auth frame, got 'ping'".
        await ws.send(json.dumps({"type": "ping"}))
        frame = await _frame(ws, ctx.options.timeout_s)
        if frame.get("type") == "connection_established":
            while (await _frame(ws, ctx.options.timeout_s)).get("type") != "pong":
                pass
    if frame.get("type") != "connection_established":
        outcome.message = f"the first frame is {frame.get('type')!r}, not connection_established"
        raise ClientError(outcome.message)
    return frame


async def _frame(ws: ClientConnection, timeout: float) -> dict[str, Any]:
    text = await asyncio.wait_for(ws.recv(), timeout)
    try:
        frame = json.loads(text)
    except ValueError as exc:
        raise ClientError(f"the server sent a frame that is not JSON: {str(text)[:80]!r}") from exc
    if not isinstance(frame, dict):
        raise ClientError("the server sent a frame that is not a JSON object")
    return frame


def _refused(outcome: Outcome, status: int, body: bytes, server: str | None) -> None:
    outcome.status, outcome.server = status, server
    try:
        error = json.loads(body)["error"]
        outcome.code, outcome.message = str(error["code"]), str(error.get("message", ""))
        outcome.reason = str(error["reason"]) if error.get("reason") else None
        outcome.from_tokenwise = True
    except (ValueError, KeyError, TypeError):
        outcome.message = body.decode(errors="replace").strip()[:160]
