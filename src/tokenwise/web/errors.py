"""Exception handlers: every error leaves as `{"error": {"code", "message", ...}}` with its status."""

from __future__ import annotations

import logging
import uuid

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from tokenwise.errors import RateLimited, ServiceUnavailable, TokenwiseError
from tokenwise.jsonlimits import TooDeep

log = logging.getLogger("tokenwise.errors")


def error_headers(error: TokenwiseError) -> dict[str, str]:
    """Retry-After / WWW-Authenticate where they apply to `error`."""
    headers: dict[str, str] = {}
    if isinstance(error, ServiceUnavailable | RateLimited):
        headers["Retry-After"] = str(max(1, round(error.retry_after_s)))
    if error.http_status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return headers


def error_response(error: TokenwiseError) -> JSONResponse:
    """The JSON response for a domain error, with Retry-After / WWW-Authenticate where they apply."""
    return JSONResponse(error.body(), status_code=error.http_status, headers=error_headers(error))


async def _domain(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, TokenwiseError)
    return error_response(exc)


async def _validation(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0]
    if first.get("type") == "json_invalid":
        return JSONResponse(
            {
                "error": {
                    "code": "invalid_json",
                    "message": "the request body is not valid JSON",
                    "field": None,
                }
            },
            status_code=422,
        )
    location = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path")]
    field = ".".join(location) or None
    message = f"{field}: {first.get('msg')}" if field else str(first.get("msg"))
    return JSONResponse(
        {"error": {"code": "invalid_input", "message": message, "field": field}}, status_code=422
    )


# FastAPI's answer to any failure of reading a body other than a JSONDecodeError (the cause is kept).
_UNPARSABLE = "There was an error parsing the body"


def _unparsable(cause: BaseException | None) -> JSONResponse:
    """A body FastAPI could not decode, named: too deeply nested JSON, not UTF-8, or another reason."""
    if isinstance(cause, RecursionError | TooDeep):
        message = "the request body is not valid JSON: it nests arrays or objects too deeply to be read"
    elif isinstance(cause, UnicodeDecodeError):
        message = f"the request body is not valid JSON: it is not UTF-8 (byte {cause.start})"
    elif isinstance(cause, ValueError):
        message = f"the request body is not valid JSON: {cause}"
    else:
        words = str(cause).strip().splitlines() if cause is not None else []
        reason = words[0] if words else type(cause).__name__
        return JSONResponse(
            {"error": {"code": "malformed_body", "message": f"the request body cannot be read: {reason}"}},
            status_code=400,
        )
    return JSONResponse(
        {"error": {"code": "invalid_json", "message": message, "field": None}}, status_code=422
    )


async def _http(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 400 and exc.detail == _UNPARSABLE:
        return _unparsable(exc.__cause__)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return JSONResponse(
        {"error": {"code": code, "message": str(exc.detail)}},
        status_code=exc.status_code,
        headers=exc.headers,
    )


async def _bug(request: Request, exc: Exception) -> JSONResponse:
    error_id = uuid.uuid4().hex[:12]
    log.error(
        "unhandled error on %s %s [error_id=%s]", request.method, request.url.path, error_id, exc_info=exc
    )
    return JSONResponse(
        {"error": {"code": "internal_error", "message": "internal error", "error_id": error_id}},
        status_code=500,
    )


def install(app: FastAPI) -> None:
    """Register the handlers on `app`."""
    app.add_exception_handler(TokenwiseError, _domain)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(Exception, _bug)
