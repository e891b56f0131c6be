"""Layer 4, auth: sign in, the JWKS is published, and the API accepts the auth service's token.

A key, issuer or audience mismatch between the auth service and the API is named from the `reason` of the
API's 401 (docs/protocol.md, "Token verification"), with the token's own claims as evidence.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt

from tokenwise.client import Tokens
from tokenwise.doctor.context import Answer, Context, why
from tokenwise.doctor.fixes import AUTH_REASONS, CONFIGURATION_REASONS, dependency_down, unexpected_answer
from tokenwise.doctor.model import Check, Fault, Layer, failed, passed, skipped, warned

NO_CREDENTIALS = (
    "no credentials: pass --email and --password (or --token) to check auth, header transit, the credential "
    "methods, the connection and a real run"
)
JWKS_PATH = "/auth/.well-known/jwks.json"
ECHO_PATH = "/api/diagnostics/echo"


async def check(ctx: Context, layer: Layer) -> None:
    if not ctx.options.has_credentials:
        layer.add(skipped("sign_in", NO_CREDENTIALS))
        return
    token = await _token(ctx, layer)
    if token is None:
        return
    claims = unverified_claims(token)
    kids = await _jwks(ctx, layer, claims)
    await _verify_at_api(ctx, layer, token, claims, kids)


async def _token(ctx: Context, layer: Layer) -> str | None:
    if ctx.options.token:
        token = ctx.options.token
        expires = unverified_claims(token).get("exp")
        if isinstance(expires, int) and expires <= time.time():
            layer.add(
                failed(
                    "token",
                    f"the --token expired at {datetime.fromtimestamp(expires, UTC).isoformat()}",
                    Fault.USAGE,
                    "pass a fresh access token (POST /auth/login), or --email and --password",
                )
            )
            return None
        layer.add(skipped("sign_in", "--token given: not signing in"))
        return token
    try:
        answer = await ctx.request(
            "POST", "/auth/login", body={"email": ctx.options.email, "password": ctx.options.password}
        )
    except httpx.HTTPError as exc:
        layer.add(
            failed(
                "sign_in",
                f"POST /auth/login got no answer: {why(exc)}",
                Fault.INFRASTRUCTURE,
                "check the proxy's route and timeouts for /auth/*",
            )
        )
        return None
    body = answer.json()
    tokens = _tokens(body) if answer.status == 200 else None
    if tokens is not None:
        layer.add(
            passed("sign_in", f"signed in as {tokens.user.email}", user_id=tokens.user.id)
        ).duration_ms = answer.elapsed_ms
        ctx.token = tokens.access_token
        return tokens.access_token
    if answer.status == 401 and answer.error.get("code") == "invalid_credentials":
        layer.add(
            failed(
                "sign_in",
                "the auth service refused the email and password",
                Fault.USAGE,
                "check --email and --password (the doctor never registers users); or pass --token",
            )
        )
    elif answer.status == 404 and answer.error:
        layer.add(
            failed(
                "sign_in",
                "POST /auth/login: 404 from Tokenwise: the process behind this URL does not serve the auth "
                "service (--role api)",
                Fault.CONFIGURATION,
                "route /auth/* to the auth service (--role auth or all) at the proxy",
            )
        )
    else:
        diagnosis = unexpected_answer(answer, "POST /auth/login")
        layer.add(failed("sign_in", diagnosis.summary, diagnosis.fault, diagnosis.fix, status=answer.status))
    return None


async def _jwks(ctx: Context, layer: Layer, claims: dict[str, Any]) -> list[str] | None:
    try:
        answer = await ctx.get(JWKS_PATH)
    except httpx.HTTPError as exc:
        layer.add(warned("jwks", f"GET {JWKS_PATH} got no answer: {why(exc)}"))
        return None
    body = answer.json()
    keys = body.get("keys") if isinstance(body, dict) else None
    if answer.status != 200 or not isinstance(keys, list):
        layer.add(
            warned(
                "jwks",
                f"GET {JWKS_PATH}: {answer.status}, not a key set (the API fetches the keys from "
                "TOKENWISE_AUTH_URL, so this alone breaks nothing)",
                status=answer.status,
            )
        )
        return None
    kids = [str(key.get("kid")) for key in keys if isinstance(key, dict)]
    kid = claims.get("kid")
    check_ = layer.add(passed("jwks", f"{len(kids)} key(s) published: {', '.join(kids)}", kids=kids))
    check_.duration_ms = answer.elapsed_ms
    if kid not in kids:
        layer.add(
            warned(
                "token_key",
                f"the token's key {kid!r} is not among the published keys",
                fix="auth processes behind one URL must share their key files",
                kid=kid,
                kids=kids,
            )
        )
    return kids


async def _verify_at_api(
    ctx: Context, layer: Layer, token: str, claims: dict[str, Any], kids: list[str] | None
) -> None:
    evidence = {key: claims.get(key) for key in ("kid", "iss", "aud")}
    try:
        answer = await ctx.get(ECHO_PATH, {"Authorization": f"Bearer {token}"})
        if answer.status == 404 and not answer.error.get("field"):  # an older server: no echo endpoint
            answer = await ctx.get("/api/threads", {"Authorization": f"Bearer {token}"})
    except httpx.HTTPError as exc:
        layer.add(
            failed(
                "api_accepts_token",
                f"the authenticated API call got no answer: {why(exc)}",
                Fault.INFRASTRUCTURE,
                "check the proxy's route and timeouts for /api/*",
            )
        )
        return
    ctx.token = token
    if answer.status == 200:
        ctx.token_verified = True
        check_ = passed("api_accepts_token", "the API accepts the token the auth service issued", **evidence)
        check_.duration_ms = answer.elapsed_ms
        layer.add(check_)
        return
    layer.add(_refused(answer, evidence, kids))


def _refused(answer: Answer, evidence: dict[str, Any], kids: list[str] | None) -> Check:
    error = answer.error
    reason = str(error.get("reason") or "")
    message = str(error.get("message", ""))
    evidence = {**evidence, "status": answer.status, "code": error.get("code"), "reason": reason}
    if answer.status == 401 and reason == "missing":
        return warned(
            "api_accepts_token",
            "inconclusive: the API says no Authorization header arrived, although one was sent (see header "
            "transit)",
            **evidence,
        )
    if answer.status == 401 and reason in CONFIGURATION_REASONS:
        if kids is not None:
            evidence["published_kids"] = kids
        return failed(
            "api_accepts_token",
            f"the API refuses the auth service's token: {reason} ({message})",
            Fault.CONFIGURATION,
            AUTH_REASONS[reason],
            **evidence,
        )
    if answer.status == 401 and reason == "malformed":
        return failed(
            "api_accepts_token",
            f"the API received the token damaged: {message}",
            Fault.INFRASTRUCTURE,
            AUTH_REASONS["malformed"],
            **evidence,
        )
    if answer.status == 503:
        diagnosis = dependency_down(str(error.get("dependency") or ""), f"the API answered 503: {message}")
        return failed("api_accepts_token", diagnosis.summary, diagnosis.fault, diagnosis.fix, **evidence)
    diagnosis = unexpected_answer(answer, "the authenticated API call")
    return failed("api_accepts_token", diagnosis.summary, diagnosis.fault, diagnosis.fix, **evidence)


def _tokens(body: Any) -> Tokens | None:
    try:
        return Tokens.from_json(body)
    except (KeyError, TypeError, ValueError):
        return None


def unverified_claims(token: str) -> dict[str, Any]:
    """The token's header and claims, read without verification (evidence only, never trusted)."""
    try:
        header = jwt.get_unverified_header(token)
        claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        return {}
    return {**claims, "kid": header.get("kid")}
