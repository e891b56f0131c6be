"""Domain errors, and the one place that maps them to HTTP statuses and WebSocket close codes.

    TokenwiseError                      code             HTTP   WebSocket
    ├── AuthenticationError             unauthenticated  401    close 4401
    │   ├── TokenExpired                token_expired    401    close 4401
    │   └── InvalidCredentials          invalid_credentials 401 close 4401
    ├── PermissionDenied                forbidden        403    close 4403
    ├── NotFound                        not_found        404    error frame, stays open
    ├── Conflict                        conflict         409    error frame, stays open
    ├── InvalidInput                    invalid_input    422    error frame (invalid_message), stays open
    │   ├── MalformedBody               malformed_body   400    (HTTP only: an OTLP body that does not parse)
    │   └── UnsupportedMediaType        unsupported_media_type 415 (HTTP only: content type or encoding)
    ├── TooLarge                        too_large        413    (HTTP only: a body over its route's limit)
    ├── RateLimited                     rate_limited     429    error frame, stays open
    │   ├── TooManyRuns                 too_many_runs    429    error frame, stays open
    │   ├── RunRateLimited              rate_limited     429    error frame, stays open (`limit:
    │   │                                                       "runs_per_minute"`; limits/quota.py)
    │   ├── AccountLocked               account_locked   429    (HTTP only: sign-in; limits/throttle.py)
    │   └── ImportQuotaExceeded         import_quota_exceeded 429 (HTTP only; usage/import_quota.py)
    │       └── TooManyImports          too_many_imports 429    (HTTP only; usage/import_quota.py)
    ├── TooManyConnections              too_many_connections 429 close 4429
    └── ServiceUnavailable              service_unavailable 503 error frame, then close 1013

Every RateLimited (429) carries `retry_after_s` and a Retry-After header. `invalid_json` is no class here:
a body that is not JSON or nests deeper than jsonlimits.MAX_DEPTH is 422 `invalid_json` (web/errors.py,
web/limits.py before parsing; `malformed_body` 400 when it cannot be read at all), a frame an
`invalid_json` error frame that leaves the connection open (session/frames.py).

Anything else that escapes a handler is a bug: HTTP 500 / close 1011 with `internal_error:<error_id>`,
and the same error id is logged with the traceback.
"""

from __future__ import annotations

from typing import Any, ClassVar


class TokenwiseError(Exception):
    """Root of every error the application raises on purpose."""

    code: ClassVar[str] = "error"
    http_status: ClassVar[int] = 400
    # None: the connection stays open and the client gets an error frame.
    close_code: ClassVar[int | None] = None

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def body(self) -> dict[str, Any]:
        """The JSON body: `{"error": {"code", "message", ...details}}`."""
        return {"error": {"code": self.code, "message": self.message, **self.details}}


class AuthenticationError(TokenwiseError):
    code = "unauthenticated"
    http_status = 401
    close_code = 4401


class TokenExpired(AuthenticationError):
    code = "token_expired"


class InvalidCredentials(AuthenticationError):
    code = "invalid_credentials"


class PermissionDenied(TokenwiseError):
    code = "forbidden"
    http_status = 403
    close_code = 4403


class NotFound(TokenwiseError):
    code = "not_found"
    http_status = 404


class Conflict(TokenwiseError):
    code = "conflict"
    http_status = 409


class InvalidInput(TokenwiseError):
    """Bad input; `field` names what was wrong."""

    code = "invalid_input"
    http_status = 422

    def __init__(self, message: str, *, field: str | None = None, **details: Any) -> None:
        super().__init__(message, field=field, **details)
        self.field = field


class MalformedBody(InvalidInput):
    """A request body that cannot be decoded at all (OTLP asks for 400, not 422, so it is not retried)."""

    code = "malformed_body"
    http_status = 400


class UnsupportedMediaType(InvalidInput):
    """A Content-Type or Content-Encoding the endpoint does not read."""

    code = "unsupported_media_type"
    http_status = 415


class TooLarge(TokenwiseError):
    """An upload over its size limit; `limit_bytes` says what the limit is."""

    code = "too_large"
    http_status = 413

    def __init__(self, message: str, *, limit_bytes: int) -> None:
        super().__init__(message, limit_bytes=limit_bytes)
        self.limit_bytes = limit_bytes


class RateLimited(TokenwiseError):
    code = "rate_limited"
    http_status = 429

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message, retry_after_s=round(retry_after_s, 3))
        self.retry_after_s = retry_after_s


class TooManyRuns(RateLimited):
    """The user already has the maximum of runs queued or running; nothing was stored."""

    code = "too_many_runs"


class TooManyConnections(TokenwiseError):
    code = "too_many_connections"
    http_status = 429
    close_code = 4429


class ServiceUnavailable(TokenwiseError):
    """A dependency (the database, the auth service) cannot be reached right now."""

    code = "service_unavailable"
    http_status = 503
    close_code = 1013

    def __init__(self, message: str, *, retry_after_s: float = 5.0, dependency: str | None = None) -> None:
        super().__init__(message, retry_after_s=retry_after_s, dependency=dependency)
        self.retry_after_s = retry_after_s


# WebSocket close codes the server sends, with their meaning (docs/protocol.md lists the same table).
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_MESSAGE_TOO_BIG = 1009
CLOSE_INTERNAL_ERROR = 1011
CLOSE_SERVICE_RESTART = 1012
CLOSE_TRY_AGAIN_LATER = 1013
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_TOO_MANY_CONNECTIONS = 4429


def close_reason(error: TokenwiseError) -> str:
    """A close reason that fits the 123-byte limit of a close frame."""
    return fit_reason(f"{error.code}: {error.message}")


def fit_reason(reason: str) -> str:
    """`reason` cut to the 123 bytes (not characters) a close frame allows, never inside a character."""
    encoded = reason.encode()
    return encoded[:123].decode(errors="ignore") if len(encoded) > 123 else reason
