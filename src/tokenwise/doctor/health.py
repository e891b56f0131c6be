"""Layer 3, HTTP: /health and /health/ready answer, and which proxies the response headers reveal."""

from __future__ import annotations

import httpx

from tokenwise.doctor.context import Context, why
from tokenwise.doctor.fixes import dependency_down, unexpected_answer
from tokenwise.doctor.model import Check, Fault, Layer, failed, passed, warned

ALIVE = ("healthy", "degraded", "ok")
# Response headers that proxies, load balancers and CDNs add (uvicorn itself sends no Server header).
REVEALING = (
    "server",
    "via",
    "x-cache",
    "x-served-by",
    "cf-ray",
    "x-amz-cf-id",
    "x-amzn-trace-id",
    "x-azure-ref",
    "x-envoy-upstream-service-time",
    "x-goog-backend",
)


async def check(ctx: Context, layer: Layer) -> None:
    try:
        answer = await ctx.get("/health")
    except httpx.HTTPError as exc:
        layer.add(
            failed(
                "health",
                f"GET /health got no answer: {why(exc)}",
                Fault.INFRASTRUCTURE,
                "the TCP port is open but no HTTP answer comes: check that it speaks HTTP(S) and that "
                "the proxy reaches the application",
            )
        )
        ctx.halted = "no HTTP answer"
        return
    body = answer.json()
    # "healthy" or "degraded" (a dependency failing: /health/ready below names it); "ok" before issue 12.
    if answer.status == 200 and isinstance(body, dict) and body.get("status") in ALIVE:
        role = str(body.get("role", "?"))
        check_ = layer.add(
            passed(
                "health",
                f"GET /health: 200, Tokenwise {body.get('version', '?')}, role {role}",
                version=body.get("version"),
                role=role,
            )
        )
        check_.duration_ms = answer.elapsed_ms
        if role == "auth":
            layer.add(
                warned(
                    "role",
                    "this URL's /health is served by an auth-only process (--role auth)",
                    fix="route /api/*, /ws and /health to an API process (--role api or all)",
                )
            )
    else:
        diagnosis = unexpected_answer(answer, "GET /health")
        layer.add(failed("health", diagnosis.summary, diagnosis.fault, diagnosis.fix, status=answer.status))
        ctx.halted = "the application does not answer /health"
        return
    layer.add(_proxies(answer.headers))
    await _ready(ctx, layer)


async def _ready(ctx: Context, layer: Layer) -> None:
    try:
        answer = await ctx.get("/health/ready")
    except httpx.HTTPError as exc:
        layer.add(
            failed(
                "ready",
                f"GET /health/ready got no answer: {why(exc)}",
                Fault.INFRASTRUCTURE,
                "check the proxy's timeouts",
            )
        )
        return
    body = answer.json()
    if answer.status == 200:
        layer.add(
            passed("ready", "GET /health/ready: 200, database and auth keys available")
        ).duration_ms = answer.elapsed_ms
        return
    if answer.status == 503 and isinstance(body, dict) and "failing" in body:
        failing = [str(name) for name in body.get("failing", [])]
        checks = body.get("checks", {})
        first = "database" if "database" in failing else (failing[0] if failing else "?")
        detail = checks.get(first, {}) if isinstance(checks, dict) else {}
        diagnosis = dependency_down(
            first,
            f"GET /health/ready: 503, failing: {', '.join(failing)} ({detail.get('message', '')})",
        )
        layer.add(
            failed("ready", diagnosis.summary, diagnosis.fault, diagnosis.fix, failing=failing, checks=checks)
        )
        return
    diagnosis = unexpected_answer(answer, "GET /health/ready")
    layer.add(failed("ready", diagnosis.summary, diagnosis.fault, diagnosis.fix, status=answer.status))


def _proxies(headers: httpx.Headers) -> Check:
    seen = {name: headers[name] for name in REVEALING if name in headers}
    if not seen:
        return passed("proxies", "no response header reveals a proxy", headers={})
    listed = "; ".join(f"{name.title()}: {value}" for name, value in seen.items())
    return passed("proxies", f"on the way: {listed}", headers=seen)
