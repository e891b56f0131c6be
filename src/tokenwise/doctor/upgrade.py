"""Layer 6, upgrade: unauthenticated handshakes are refused, and each credential method opens a connection.

Without a credential the protocol accepts the upgrade and waits for a first `auth` frame, so "refused
unauthenticated" means two things here: an invalid ticket is denied with HTTP 401, and a connection that
sends anything but `auth` first is closed with 4401. Then each of the four credential methods (header,
subprotocol, ticket, first message) is tried as its kind of client would: which work, which fail, and how.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx

from tokenwise.client import Method
from tokenwise.doctor.context import Context, why
from tokenwise.doctor.fixes import refused_upgrade, unexpected_answer
from tokenwise.doctor.model import Check, Fault, Layer, failed, passed, skipped, warned
from tokenwise.doctor.probe import Offer, Outcome, handshake, offer_for

# What carries the credential of each method, to name what a proxy dropped.
CARRIERS = {
    Method.HEADER: "the Authorization header",
    Method.SUBPROTOCOL: "the Sec-WebSocket-Protocol header",
    Method.TICKET: "the ?ticket= query parameter",
    Method.FIRST_MESSAGE: "the first auth frame",
}
_INVALID_TICKET = "tokenwise-doctor-not-a-ticket"


async def check(ctx: Context, layer: Layer) -> None:
    layer.add(await _unauthenticated(ctx))
    if ctx.token is None:
        layer.add(skipped("methods", "the four credential methods need a token the API accepts (layer 4)"))
        return
    for method in Method:
        layer.add(await _method(ctx, layer, method, ctx.token))


async def _unauthenticated(ctx: Context) -> Check:
    invalid = await handshake(ctx, "invalid_ticket", Offer(query=f"ticket={_INVALID_TICKET}"))
    if invalid.ok:
        return failed(
            "unauthenticated",
            "the server accepted an upgrade with an invalid ticket",
            Fault.APPLICATION,
            "a server bug: tickets must be checked before the upgrade is accepted",
            **invalid.evidence(),
        )
    if not (invalid.status == 401 and invalid.from_tokenwise):
        diagnosis = refused_upgrade(invalid, ctx.target.origin)
        evidence = invalid.evidence()
        if invalid.status == 404 and invalid.from_tokenwise:
            evidence["stripped"] = ["Upgrade", "Connection"]
        return failed(
            "unauthenticated",
            f"an invalid ticket should be refused with 401: {diagnosis.summary}",
            diagnosis.fault,
            diagnosis.fix,
            **evidence,
        )
    bare = await handshake(ctx, "no_credential", Offer(first_frame={"type": "ping"}))
    evidence = {"invalid_ticket": invalid.evidence(), "no_credential": bare.evidence()}
    if bare.ok:
        return failed(
            "unauthenticated",
            "the server welcomed a connection that never authenticated",
            Fault.APPLICATION,
            "a server bug: without a credential the first frame must be an auth frame",
            **evidence,
        )
    if not (bare.close_code == 4401 and bare.close_reason):
        diagnosis = refused_upgrade(bare, ctx.target.origin)
        return failed(
            "unauthenticated",
            f"without a credential, a non-auth first frame should close with 4401: {diagnosis.summary}",
            diagnosis.fault,
            diagnosis.fix,
            **evidence,
        )
    return passed(
        "unauthenticated",
        f"invalid ticket: {invalid.status} {invalid.reason or invalid.code}; no credential: 101, then "
        f"{bare.close_code} {bare.close_reason!r} on a non-auth first frame",
        **evidence,
    )


async def _method(ctx: Context, layer: Layer, method: Method, token: str) -> Check:
    ticket: str | None = None
    if method is Method.TICKET:
        bought = await _ticket(ctx, token)
        if isinstance(bought, Check):
            return bought
        ticket, warning = bought
        if warning is not None:
            layer.add(warning)  # shown before the ticket method's own line
    outcome = await handshake(ctx, method.value, await offer_for(ctx, method, token, ticket))
    if outcome.ok:
        ctx.methods.append(method)
        welcome = outcome.welcome or {}
        check_ = passed(
            method.value,
            f"welcome in {outcome.elapsed_ms:.0f} ms"
            + (f", subprotocol {outcome.subprotocol}" if outcome.subprotocol else ""),
            **outcome.evidence(),
            protocol_version=welcome.get("protocol_version"),
            heartbeat_interval_s=welcome.get("heartbeat_interval_s"),
        )
        check_.duration_ms = outcome.elapsed_ms
        return check_
    return _method_failed(ctx, method, outcome)


def _method_failed(ctx: Context, method: Method, outcome: Outcome) -> Check:
    evidence = outcome.evidence()
    if outcome.waited_for_auth and method is not Method.FIRST_MESSAGE:
        carrier = CARRIERS[method]
        return failed(
            method.value,
            f"{carrier} did not arrive: the server accepted the upgrade and waited for a first-message auth "
            f"(then closed {outcome.close_code} {outcome.close_reason!r})",
            Fault.INFRASTRUCTURE,
            f"make the proxies on the way pass {carrier} unchanged; meanwhile clients can use the ticket or "
            "first-message method",
            **evidence,
        )
    diagnosis = refused_upgrade(outcome, ctx.target.origin)
    return failed(method.value, diagnosis.summary, diagnosis.fault, diagnosis.fix, **evidence)


async def _ticket(ctx: Context, token: str) -> tuple[str, Check | None] | Check:
    """Buy a ticket, with a warning when its websocket_url is not this deployment's WebSocket URL."""
    try:
        answer = await ctx.request("POST", "/api/ws/ticket", headers={"Authorization": f"Bearer {token}"})
    except httpx.HTTPError as exc:
        return failed(
            Method.TICKET.value,
            f"POST /api/ws/ticket got no answer: {why(exc)}",
            Fault.INFRASTRUCTURE,
            "check the proxy's route for /api/*",
        )
    body = answer.json()
    if answer.status != 200 or not isinstance(body, dict) or "ticket" not in body:
        diagnosis = unexpected_answer(answer, "POST /api/ws/ticket")
        return failed(
            Method.TICKET.value, diagnosis.summary, diagnosis.fault, diagnosis.fix, status=answer.status
        )
    advertised = str(body.get("websocket_url", ""))
    expected = ctx.target.ws_url
    warning = None
    if urlsplit(advertised)[:3] != urlsplit(expected)[:3]:
        warning = warned(
            "ticket_url",
            f"tickets advertise websocket_url {advertised}; clients reach the WebSocket at {expected}",
            fix=f"set TOKENWISE_PUBLIC_URL={ctx.target.base_url} on the API",
            advertised=advertised,
            expected=expected,
        )
    return str(body["ticket"]), warning
