"""FastAPI dependencies: the app's services and the signed-in user."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from tokenwise.errors import AuthenticationError
from tokenwise.security.tokens import Claims
from tokenwise.services.container import Services


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


AppServices = Annotated[Services, Depends(get_services)]


async def current_claims(request: Request, services: AppServices) -> Claims:
    """The verified claims of the request's `Authorization: Bearer` token."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("send 'Authorization: Bearer <access token>'", reason="missing")
    return await services.verifier.verify(token.strip())


CurrentClaims = Annotated[Claims, Depends(current_claims)]
