"""Which credential a WebSocket handshake carries. Pure: headers and query in, a Credential out."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from tokenwise.errors import AuthenticationError

SUBPROTOCOL = "jwt-auth"
_TOKEN_PREFIX = "jwt."  # noqa: S105 - a subprotocol prefix, not a secret
# Query parameters that would put a bearer token in URLs, and so in proxy and server logs.
_TOKEN_QUERY_KEYS = ("token", "access_token", "jwt", "auth", "authorization")


class Method(StrEnum):
    HEADER = "header"
    SUBPROTOCOL = "subprotocol"
    TICKET = "ticket"
    FIRST_MESSAGE = "first_message"


@dataclass(frozen=True)
class Credential:
    method: Method
    secret: str  # a JWT, or a ticket; empty for FIRST_MESSAGE


def offered_subprotocols(header: str | None) -> list[str]:
    """The comma-separated Sec-WebSocket-Protocol list, in order, trimmed."""
    return [item.strip() for item in (header or "").split(",") if item.strip()]


def _decode_subprotocol_token(value: str) -> str:
    encoded = value[len(_TOKEN_PREFIX) :]
    try:
        padded = encoded + "=" * (-len(encoded) % 4)
        return base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise AuthenticationError("the jwt.<token> subprotocol is not base64url", reason="malformed") from exc


def read_credential(headers: Mapping[str, str], query: Mapping[str, str]) -> Credential:
    """The handshake's credential; raises AuthenticationError for a token in the URL or a bad offer."""
    if any(key.lower() in _TOKEN_QUERY_KEYS for key in query):
        raise AuthenticationError(
            "tokens are refused in the URL; use the Authorization header, the jwt-auth subprotocol, "
            "a ticket (?ticket=) or a first auth message",
            reason="token_in_url",
        )
    authorization = headers.get("authorization")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationError("the Authorization header must be 'Bearer <token>'", reason="malformed")
        return Credential(Method.HEADER, token.strip())
    offered = offered_subprotocols(headers.get("sec-websocket-protocol"))
    carried = [item for item in offered if item.startswith(_TOKEN_PREFIX)]
    if carried:
        if SUBPROTOCOL not in offered:
            raise AuthenticationError(
                f"offer {SUBPROTOCOL!r} alongside 'jwt.<token>' so the server can select it",
                reason="malformed",
            )
        return Credential(Method.SUBPROTOCOL, _decode_subprotocol_token(carried[0]))
    ticket = query.get("ticket")
    if ticket:
        return Credential(Method.TICKET, ticket)
    return Credential(Method.FIRST_MESSAGE, "")


def encode_subprotocol_token(token: str) -> str:
    """The `jwt.<base64url>` subprotocol value that carries `token` (for clients and tests)."""
    return _TOKEN_PREFIX + base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")
