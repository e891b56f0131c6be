"""Layer 5, header transit: compare what was sent with what the application says it received.

Two probes, because proxies treat the two kinds of request differently:

- a plain `GET /api/diagnostics/echo` with `Authorization` and `Origin`;
- a real WebSocket handshake (Authorization, the jwt-auth subprotocol pair, Origin, and a first `auth`
  frame as a fallback so it authenticates whatever was stripped) followed by a `diagnostics` frame, which
  answers with the handshake as received. `Upgrade` and `Connection` are judged only here: on a plain GET a
  correct proxy may consume them (they are hop-by-hop), on an upgrade it must pass them on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import httpx
import websockets

from tokenwise.doctor.auth import ECHO_PATH
from tokenwise.doctor.context import Context, why
from tokenwise.doctor.fixes import refused_upgrade, unexpected_answer
from tokenwise.doctor.model import Check, Fault, Layer, failed, passed, skipped, warned
from tokenwise.doctor.probe import Offer, Outcome, handshake
from tokenwise.session.handshake import SUBPROTOCOL, encode_subprotocol_token

STRIPPED_FIX = (
    "make every proxy and load balancer on the way pass {headers} unchanged (nginx passes them by default: "
    'look for `proxy_set_header {first} ""`, `proxy_pass_request_headers off` or a header allow-list); '
    "until then clients can use a ticket (?ticket=) or the first-message auth, which need no header"
)


async def check(ctx: Context, layer: Layer) -> None:
    if ctx.token is None:
        layer.add(skipped("transit", "needs a token the API accepts (layer 4)"))
        return
    host_seen = await _http_echo(ctx, layer, ctx.token)
    await _websocket_echo(ctx, layer, ctx.token, host_seen)


def _bearer(token: str) -> str:
    return f"Bearer ({len(token)} chars)"


def _authorization(received: dict[str, Any]) -> str:
    if not received.get("present"):
        return "(absent)"
    return f"{received.get('scheme')} ({received.get('length')} chars)"


async def _http_echo(ctx: Context, layer: Layer, token: str) -> str | None:
    """GET the echo; returns the Host the application saw."""
    origin = ctx.target.origin
    try:
        answer = await ctx.get(ECHO_PATH, {"Authorization": f"Bearer {token}", "Origin": origin})
    except httpx.HTTPError as exc:
        layer.add(
            failed(
                "http_echo",
                f"GET {ECHO_PATH} got no answer: {why(exc)}",
                Fault.INFRASTRUCTURE,
                "check the proxy's route and timeouts for /api/*",
            )
        )
        return None
    if answer.status == 401 and answer.error.get("reason") == "missing":
        layer.add(
            failed(
                "http_echo",
                "Authorization was stripped on the way: sent on GET /api/diagnostics/echo, the API received "
                "none (401 missing)",
                Fault.INFRASTRUCTURE,
                STRIPPED_FIX.format(headers="Authorization", first="Authorization"),
                stripped=["Authorization"],
                sent={"authorization": _bearer(token)},
                received={"authorization": "(absent)"},
            )
        )
        return None
    echo = answer.json()
    if answer.status != 200 or not isinstance(echo, dict):
        diagnosis = unexpected_answer(answer, f"GET {ECHO_PATH}")
        layer.add(
            failed("http_echo", diagnosis.summary, diagnosis.fault, diagnosis.fix, status=answer.status)
        )
        return None
    headers = echo.get("headers", {})
    sent = {"authorization": _bearer(token), "origin": origin, "host": ctx.target.host_header}
    received = {
        "authorization": _authorization(echo.get("credentials", {}).get("authorization", {})),
        "origin": headers.get("origin", "(absent)"),
        "host": headers.get("host", "(absent)"),
    }
    proxies = echo.get("proxy_headers", {})
    evidence: dict[str, Any] = {"sent": sent, "received": received, "proxy_headers": proxies}
    stripped, changed = _compare(sent, received, judged=("authorization", "origin"))
    if stripped or changed:
        layer.add(_transit_failure("http_echo", "GET /api/diagnostics/echo", stripped, changed, evidence))
    else:
        via = f"; forwarding headers received: {', '.join(proxies)}" if proxies else ""
        layer.add(passed("http_echo", f"Authorization and Origin arrive unchanged{via}", **evidence))
    if received["host"] != sent["host"]:
        layer.add(
            warned(
                "host",
                f"the proxy rewrites Host: sent {sent['host']}, the application sees {received['host']}",
                fix="forward Host as sent (nginx: `proxy_set_header Host $http_host;`), or browsers get "
                f"403 on the upgrade unless TOKENWISE_ALLOWED_ORIGINS lists {origin}",
            )
        )
    return str(received["host"])


async def _websocket_echo(ctx: Context, layer: Layer, token: str, host_seen: str | None) -> None:
    origin = ctx.target.origin
    subprotocol_token = encode_subprotocol_token(token)
    offer = Offer(
        headers={"Authorization": f"Bearer {token}", "Origin": origin},
        subprotocols=[SUBPROTOCOL, subprotocol_token],
        first_frame={"type": "auth", "token": token},
    )
    outcome = await handshake(ctx, "diagnostics", offer, keep=True)
    if not outcome.ok:
        layer.add(_upgrade_failed(outcome, origin, host_seen))
        return
    try:
        reply = await _diagnostics(ctx, outcome)
    except websockets.ConnectionClosed as exc:
        outcome.close_code = exc.rcvd.code if exc.rcvd else 1006
        outcome.close_reason = exc.rcvd.reason if exc.rcvd else "no close frame received"
        layer.add(_upgrade_failed(outcome, origin, host_seen))
        return
    except (TimeoutError, ValueError) as exc:
        layer.add(
            failed(
                "websocket_echo",
                f"no diagnostics reply: {'timed out' if isinstance(exc, TimeoutError) else exc}",
                Fault.APPLICATION,
                "see the server log",
                **outcome.evidence(),
            )
        )
        return
    finally:
        if outcome.ws is not None:
            with contextlib.suppress(websockets.WebSocketException, OSError):
                await outcome.ws.close()
    if reply is None:
        layer.add(
            skipped("websocket_echo", "the server does not know the diagnostics frame (an older version)")
        )
        return
    echo = reply.get("handshake", {})
    headers, credentials = echo.get("headers", {}), echo.get("credentials", {})
    token_item = credentials.get("subprotocol_token", {})
    sent = {
        "authorization": _bearer(token),
        "sec-websocket-protocol": f"{SUBPROTOCOL}, jwt.({len(subprotocol_token) - 4} chars)",
        "origin": origin,
        "upgrade": "websocket",
        "connection": "upgrade",
    }
    offered = echo.get("subprotocols", [])
    received = {
        "authorization": _authorization(credentials.get("authorization", {})),
        "sec-websocket-protocol": (
            f"{SUBPROTOCOL}, jwt.({token_item.get('length')} chars)"
            if SUBPROTOCOL in offered and token_item.get("present")
            else ", ".join(offered) or "(absent)"
        ),
        "origin": headers.get("origin", "(absent)"),
        "upgrade": str(headers.get("upgrade", "(absent)")).lower(),
        # Proxies rebuild Connection (it is hop-by-hop): only its `upgrade` token must survive.
        "connection": "upgrade"
        if "upgrade" in [item.strip().lower() for item in str(headers.get("connection", "")).split(",")]
        else str(headers.get("connection", "(absent)")),
    }
    evidence = {"sent": sent, "received": received, "authenticated_by": reply.get("credential_method")}
    stripped, changed = _compare(sent, received, judged=tuple(sent))
    if stripped or changed:
        layer.add(_transit_failure("websocket_echo", "the WebSocket handshake", stripped, changed, evidence))
    else:
        layer.add(
            passed(
                "websocket_echo",
                "Authorization, Sec-WebSocket-Protocol, Origin, Upgrade and Connection arrive on the upgrade",
                **evidence,
            )
        )


async def _diagnostics(ctx: Context, outcome: Outcome) -> dict[str, Any] | None:
    assert outcome.ws is not None
    await outcome.ws.send(json.dumps({"type": "diagnostics"}))
    while True:
        frame = json.loads(await asyncio.wait_for(outcome.ws.recv(), ctx.options.timeout_s))
        if frame.get("type") == "diagnostics":
            return dict(frame)
        if frame.get("type") == "error" and frame.get("code") == "unknown_type":
            return None


_NAMES = {
    "authorization": "Authorization",
    "origin": "Origin",
    "host": "Host",
    "sec-websocket-protocol": "Sec-WebSocket-Protocol",
    "upgrade": "Upgrade",
    "connection": "Connection",
}


def _compare(
    sent: dict[str, str], received: dict[str, str], judged: tuple[str, ...]
) -> tuple[list[str], list[str]]:
    stripped = [_NAMES[name] for name in judged if received.get(name) == "(absent)"]
    changed = [_NAMES[name] for name in judged if received.get(name) not in ("(absent)", sent[name])]
    return stripped, changed


def _transit_failure(
    name: str, where: str, stripped: list[str], changed: list[str], evidence: dict[str, Any]
) -> Check:
    parts = []
    if stripped:
        parts.append(f"{', '.join(stripped)} stripped")
    if changed:
        parts.append(f"{', '.join(changed)} rewritten")
    headers = stripped + changed
    return failed(
        name,
        f"{' and '.join(parts)} on the way: sent on {where}, not received as sent by the application",
        Fault.INFRASTRUCTURE,
        STRIPPED_FIX.format(headers=", ".join(headers), first=headers[0]),
        stripped=stripped,
        rewritten=changed,
        **evidence,
    )


def _upgrade_failed(outcome: Outcome, origin: str, host_seen: str | None) -> Check:
    """The diagnostics handshake did not open: say which header or setting is at fault."""
    diagnosis = refused_upgrade(outcome, origin, host_seen)
    evidence = outcome.evidence()
    if outcome.status == 404 and outcome.from_tokenwise:
        evidence["stripped"] = ["Upgrade", "Connection"]
    return failed("websocket_echo", diagnosis.summary, diagnosis.fault, diagnosis.fix, **evidence)
