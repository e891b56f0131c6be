"""What a request or a WebSocket handshake carried, as the application received it, with no secret in it.

Pure: method, path, headers and query in, a JSON-ready description out. Served by
`GET /api/diagnostics/echo` and the WebSocket's `diagnostics` frame, read by `tokenwise doctor` to tell
which headers a proxy on the way dropped or rewrote.

Credentials are never echoed: `Authorization` (and `Proxy-Authorization`) become their scheme and length,
cookies their count and length, a `jwt.<token>` subprotocol its length, and the `ticket` (or any
token-like) query parameter its length.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from tokenwise.session.handshake import offered_subprotocols

# Headers whose value is a secret: reported as present, with their scheme (if any) and length only.
SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "x-api-key", "x-auth-token", "x-csrf-token"}
)
# Query parameters that carry a credential (the ticket), or would (a token refused in the URL).
SECRET_QUERY = frozenset({"ticket", "token", "access_token", "jwt", "auth", "authorization"})
# Headers that proxies, load balancers and CDNs add: they reveal what stands between client and app.
PROXY_HEADERS = (
    "via",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-forwarded-prefix",
    "x-real-ip",
    "x-amzn-trace-id",
    "x-azure-ref",
    "x-azure-clientip",
    "x-cloud-trace-context",
    "cf-connecting-ip",
    "cf-ray",
    "true-client-ip",
)
_TOKEN_PREFIX = "jwt."  # noqa: S105 - a subprotocol prefix, not a secret
REDACTED = "[redacted]"


def redact_credential(value: str) -> dict[str, Any]:
    """`Bearer eyJ…` → `{"present": true, "scheme": "Bearer", "length": <length of the credential>}`."""
    scheme, _, rest = value.strip().partition(" ")
    if rest.strip():
        return {"present": True, "scheme": scheme, "length": len(rest.strip())}
    return {"present": True, "scheme": None, "length": len(value.strip())}


def absent() -> dict[str, Any]:
    return {"present": False}


def _merge(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Header pairs by lower-case name; a repeated header's values joined as HTTP would (`;` for cookies)."""
    merged: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower()
        if key in merged:
            merged[key] += ("; " if key == "cookie" else ", ") + value
        else:
            merged[key] = value
    return merged


def _subprotocols(header: str | None) -> tuple[list[str], dict[str, Any]]:
    """The offered subprotocols with `jwt.<token>` items redacted, and what the token item looked like."""
    items, token = [], absent()
    for item in offered_subprotocols(header):
        if item.startswith(_TOKEN_PREFIX):
            token = {"present": True, "length": len(item) - len(_TOKEN_PREFIX)}
            items.append(f"{_TOKEN_PREFIX}{REDACTED}")
        else:
            items.append(item)
    return items, token


def describe(
    *,
    method: str,
    path: str,
    scheme: str,
    http_version: str | None,
    client: str | None,
    headers: Sequence[tuple[str, str]],
    query: Sequence[tuple[str, str]],
) -> dict[str, Any]:
    """The JSON description of one request (see docs/protocol.md, "Diagnostics")."""
    received = _merge(headers)
    shown: dict[str, str] = {}
    for name, value in received.items():
        if name in SECRET_HEADERS:
            shown[name] = REDACTED
        elif name == "sec-websocket-protocol":
            shown[name] = ", ".join(_subprotocols(value)[0])
        else:
            shown[name] = value
    subprotocols, subprotocol_token = _subprotocols(received.get("sec-websocket-protocol"))
    cookie = received.get("cookie")
    ticket = next((value for key, value in query if key.lower() == "ticket"), None)
    return {
        "method": method,
        "path": path,
        "scheme": scheme,
        "http_version": http_version,
        "client": client,
        "headers": shown,
        "query": {key: (REDACTED if key.lower() in SECRET_QUERY else value) for key, value in query},
        "subprotocols": subprotocols,
        "credentials": {
            "authorization": redact_credential(received["authorization"])
            if "authorization" in received
            else absent(),
            "cookie": {"present": True, "count": len(cookie.split(";")), "length": len(cookie)}
            if cookie is not None
            else absent(),
            "subprotocol_token": subprotocol_token,
            "ticket": {"present": True, "length": len(ticket)} if ticket is not None else absent(),
        },
        "proxy_headers": {name: received[name] for name in PROXY_HEADERS if name in received},
    }
