"""Layer 7, connection: the welcome frame, a ping/pong round trip, a silent idle period to catch proxy idle
timeouts (and measure when the cut comes), then a ping again."""

from __future__ import annotations

import asyncio
import contextlib
import time

import websockets

from tokenwise.client import ClientError, Connection
from tokenwise.doctor.context import Context
from tokenwise.doctor.fixes import bug_fix, error_id_of, refused_upgrade
from tokenwise.doctor.model import Check, Fault, Layer, Status, failed, passed, skipped
from tokenwise.doctor.probe import handshake, offer_for
from tokenwise.session.handshake import Method

_NO_CLOSE_FRAME = (1005, 1006)


async def check(ctx: Context, layer: Layer) -> None:
    if ctx.token is None or not ctx.methods:
        layer.add(skipped("connection", "needs a credential method that opens a connection (layer 6)"))
        return
    method = ctx.methods[0]
    try:
        offer = await offer_for(ctx, method, ctx.token)
    except ClientError as exc:
        layer.add(failed("welcome", exc.message, Fault.INFRASTRUCTURE, "see layer 6"))
        return
    outcome = await handshake(ctx, method.value, offer, keep=True)
    if not outcome.ok:
        diagnosis = refused_upgrade(outcome, ctx.target.origin)
        layer.add(failed("welcome", diagnosis.summary, diagnosis.fault, diagnosis.fix, **outcome.evidence()))
        return
    conn = outcome.connection(read_timeout_s=ctx.options.timeout_s)
    try:
        layer.add(_welcome(outcome.welcome or {}, method, outcome.elapsed_ms))
        if not await _ping(layer, conn, "ping"):
            return
        idle = await _idle(ctx, conn)
        layer.add(idle)
        if idle.status is not Status.FAIL:
            await _ping(layer, conn, "ping_after_idle")
    finally:
        with contextlib.suppress(websockets.WebSocketException, OSError):
            await conn.close()


def _welcome(welcome: dict[str, object], method: Method, elapsed_ms: float) -> Check:
    check = passed(
        "welcome",
        f"connection_established over {method.value}: protocol {welcome.get('protocol_version')}, heartbeat "
        f"every {welcome.get('heartbeat_interval_s')} s",
        method=method.value,
        connection_id=welcome.get("connection_id"),
        protocol_version=welcome.get("protocol_version"),
        heartbeat_interval_s=welcome.get("heartbeat_interval_s"),
        max_message_bytes=welcome.get("max_message_bytes"),
    )
    check.duration_ms = elapsed_ms
    return check


async def _ping(layer: Layer, conn: Connection, name: str) -> bool:
    started = time.perf_counter()
    try:
        await conn.ping()
    except (ClientError, TimeoutError) as exc:
        code = getattr(exc, "code", None)
        reason = getattr(exc, "reason", None)
        if code == 1011 and error_id_of(reason):
            layer.add(
                failed(
                    name, f"closed with 1011 {reason}", Fault.APPLICATION, bug_fix(reason), close_code=code
                )
            )
        else:
            layer.add(
                failed(
                    name,
                    f"no pong: {getattr(exc, 'message', None) or 'timed out'}",
                    Fault.INFRASTRUCTURE if code in (None, *_NO_CLOSE_FRAME) else Fault.APPLICATION,
                    "a proxy on the way drops frames or the connection; check its WebSocket support",
                    close_code=code,
                    close_reason=reason,
                )
            )
        return False
    rtt = (time.perf_counter() - started) * 1000
    check = passed(name, f"pong in {rtt:.1f} ms", rtt_ms=round(rtt, 2))
    check.duration_ms = rtt
    layer.add(check)
    return True


async def _idle(ctx: Context, conn: Connection) -> Check:
    """Say nothing for --idle seconds (the client sends no pings); report when, if, the connection is cut."""
    idle_s = ctx.options.idle_s
    if idle_s <= 0:
        return skipped("idle", "--idle 0: no idle period")
    heartbeat = conn.welcome.heartbeat_interval_s
    started = time.perf_counter()
    while (elapsed := time.perf_counter() - started) < idle_s:
        ctx.progress(f"connection: silent for {elapsed:.0f}/{idle_s:.0f} s, watching for an idle cut")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(conn.ws.wait_closed(), min(1.0, idle_s - elapsed))
            return _cut(conn, time.perf_counter() - started, heartbeat, idle_s)
    return passed(
        "idle",
        f"stayed open through {idle_s:g} s of silence",
        idle_s=idle_s,
        heartbeat_interval_s=heartbeat,
    )


def _cut(conn: Connection, after_s: float, heartbeat: float, idle_s: float) -> Check:
    code, reason = conn.ws.close_code, conn.ws.close_reason or ""
    evidence = {
        "cut_after_s": round(after_s, 2),
        "idle_s": idle_s,
        "close_code": code,
        "close_reason": reason,
        "heartbeat_interval_s": heartbeat,
    }
    if code in _NO_CLOSE_FRAME:
        return failed(
            "idle",
            f"the connection was cut after {after_s:.1f} s of silence, without a close frame: a proxy "
            "or load balancer idle timeout",
            Fault.INFRASTRUCTURE,
            f"raise the idle (read) timeout of every proxy and load balancer on the way above the server's "
            f"{heartbeat:g} s heartbeat (nginx: proxy_read_timeout 75s; AWS ALB: idle timeout), or lower "
            f"TOKENWISE_HEARTBEAT_INTERVAL_S below {after_s:.0f} s",
            **evidence,
        )
    if code == 1011 and error_id_of(reason):
        return failed(
            "idle",
            f"closed during the idle period with 1011 {reason}",
            Fault.APPLICATION,
            bug_fix(reason),
            **evidence,
        )
    if code == 1011:
        return failed(
            "idle",
            f"closed after {after_s:.1f} s with 1011 {reason!r}: the server's pings got no pong back",
            Fault.INFRASTRUCTURE,
            "a proxy on the way swallows WebSocket ping/pong control frames; check its WebSocket support",
            **evidence,
        )
    return failed(
        "idle",
        f"the server closed the idle connection after {after_s:.1f} s: {code} {reason!r}",
        Fault.APPLICATION,
        "see docs/protocol.md (close codes) for this code; an idle authenticated connection should stay open",
        **evidence,
    )
