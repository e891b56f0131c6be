"""FastAPI dependencies: the app's services, the signed-in user, and callers that may use an API key."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from tokenwise.errors import AuthenticationError, PermissionDenied
from tokenwise.security.apikeys import Scope, is_api_key
from tokenwise.security.tokens import Claims
from tokenwise.services.container import Services


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


AppServices = Annotated[Services, Depends(get_services)]


def bearer(request: Request) -> str:
    """The credential of the request's `Authorization: Bearer` header."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("send 'Authorization: Bearer <access token>'", reason="missing")
    return token.strip()


async def current_claims(request: Request, services: AppServices) -> Claims:
    """The verified claims of the request's `Authorization: Bearer` token (an access token, never a key)."""
    token = bearer(request)
    if is_api_key(token):
        raise PermissionDenied(
            "API keys are accepted only for sending and reading usage data; sign in for this",
            reason="api_key_not_accepted",
        )
    return await services.verifier.verify(token)


CurrentClaims = Annotated[Claims, Depends(current_claims)]


@dataclass(frozen=True)
class Caller:
    """Whom a request speaks for: a signed-in user, or a machine with one of the user's API keys."""

    user_id: str
    api_key_id: str | None = None


async def authenticate(request: Request, services: Services, scope: Scope) -> Caller:
    """An access token, or an API key that has `scope` (PermissionDenied when it lacks it)."""
    if any(is_api_key(value) for value in request.query_params.values()):
        # Refused even when the header is right: the key is now in proxy and access logs; revoke it.
        raise AuthenticationError(
            "API keys are refused in the URL; send 'Authorization: Bearer <key>'", reason="token_in_url"
        )
    token = bearer(request)
    if not is_api_key(token):
        return Caller((await services.verifier.verify(token)).user_id)
    holder = await services.api_keys.authenticate(token)
    if scope not in holder.scopes:
        raise PermissionDenied(
            f"the API key lacks the scope {scope.value!r}", reason="scope", scope=scope.value
        )
    return Caller(holder.user_id, holder.key_id)


def _caller(scope: Scope) -> Callable[[Request, Services], Awaitable[Caller]]:
    async def dependency(request: Request, services: AppServices) -> Caller:
        return await authenticate(request, services, scope)

    return dependency


IngestCaller = Annotated[Caller, Depends(_caller(Scope.INGEST))]
ReadCaller = Annotated[Caller, Depends(_caller(Scope.READ))]
