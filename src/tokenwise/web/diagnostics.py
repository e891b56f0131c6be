"""`GET /api/diagnostics/echo`: what the application actually received, secrets redacted (for the doctor)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.requests import HTTPConnection

from tokenwise.session import echo
from tokenwise.web.deps import CurrentClaims

router = APIRouter(prefix="/api/diagnostics", tags=["diagnostics"])


def received(conn: HTTPConnection, raw_headers: list[tuple[bytes, bytes]] | None = None) -> dict[str, Any]:
    """The echo of an HTTP request or a WebSocket handshake (`session.echo.describe`); `raw_headers`
    when the scope no longer holds them (a WebSocket keeps its own copy after the handshake)."""
    scope = conn.scope
    client = f"{conn.client.host}:{conn.client.port}" if conn.client is not None else None
    return echo.describe(
        method=str(scope.get("method", "GET")),
        path=str(scope.get("path", "")),
        scheme=str(scope.get("scheme", "")),
        http_version=scope.get("http_version"),
        client=client,
        headers=[
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in (conn.headers.raw if raw_headers is None else raw_headers)
        ],
        query=conn.query_params.multi_items(),
    )


@router.get("/echo")
async def echo_request(request: Request, _claims: CurrentClaims) -> dict[str, Any]:
    return received(request)
