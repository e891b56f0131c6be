"""Errors of the Tokenwise client, one tree, each with a message in plain words:

ClientError
├── Unreachable          the server cannot be reached (refused, unknown host, timeout)
├── RequestFailed        an HTTP request was answered with an error (`status`, `code`)
│   └── SignInFailed     POST /auth/login refused the email and password
├── HandshakeRejected    the WebSocket upgrade was denied (`status`, `code`)
├── ConnectionClosed     the WebSocket closed (`code`, `reason`); 1006 when no close frame came
├── ServerError          an `error` frame answered (`code`, `details`); the connection may stay open
└── ProtocolViolation    the server sent something the protocol does not allow
"""

from __future__ import annotations

import json
from typing import Any


class ClientError(Exception):
    """Root of every error the client raises."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Unreachable(ClientError):
    def __init__(self, url: str, why: str) -> None:
        super().__init__(f"cannot reach {url}: {why}")
        self.url = url


class RequestFailed(ClientError):
    def __init__(self, message: str, *, status: int, code: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code


class SignInFailed(RequestFailed):
    pass


class HandshakeRejected(ClientError):
    def __init__(self, message: str, *, status: int, code: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code


class ConnectionClosed(ClientError):
    def __init__(self, code: int, reason: str) -> None:
        detail = f" ({reason})" if reason else ""
        super().__init__(f"the connection closed with code {code}{detail}")
        self.code, self.reason = code, reason


class ServerError(ClientError):
    def __init__(self, code: str, message: str, details: dict[str, Any]) -> None:
        super().__init__(
            f"the server answered {code}: {message}" if message else f"the server answered {code}"
        )
        self.code, self.details = code, details


class ProtocolViolation(ClientError):
    pass


def error_body(body: bytes | str) -> tuple[str, str]:
    """The (code, message) of a JSON error body `{"error": {"code", "message"}}`, tolerating anything else."""
    try:
        error = json.loads(body)["error"]
        return str(error.get("code", "error")), str(error.get("message", ""))
    except (ValueError, KeyError, TypeError, AttributeError):
        text = body.decode(errors="replace") if isinstance(body, bytes) else body
        return "error", text.strip()[:200]
