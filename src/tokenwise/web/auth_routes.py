"""The auth service: register, sign in, refresh, sign out, who am I, and the published keys."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, EmailStr, Field, StringConstraints

from tokenwise.errors import ServiceUnavailable
from tokenwise.services.accounts import Accounts, TokenPair, User
from tokenwise.services.container import Services
from tokenwise.web.deps import AppServices, CurrentClaims

router = APIRouter(prefix="/auth", tags=["auth"])
Password = Annotated[str, StringConstraints(min_length=8, max_length=1024)]


class RegisterBody(BaseModel):
    email: EmailStr
    password: Password
    name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None = None


class LoginBody(BaseModel):
    email: Annotated[str, StringConstraints(max_length=320)]
    password: Annotated[str, StringConstraints(max_length=1024)]


class RefreshBody(BaseModel):
    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=512)] = Field(...)


def user_json(user: User) -> dict[str, Any]:
    return {"id": user.id, "email": user.email, "name": user.name}


def pair_json(pair: TokenPair) -> dict[str, Any]:
    return {
        "access_token": pair.access_token,
        "refresh_token": pair.refresh_token,
        "token_type": "Bearer",
        "expires_in": pair.expires_in,
        "user": user_json(pair.user),
    }


def _accounts(services: Services) -> Accounts:
    if services.accounts is None:
        raise ServiceUnavailable("this process does not run the auth service", dependency="auth")
    return services.accounts


def client_address(request: Request) -> str:
    """The client's address (a trusted proxy's X-Forwarded-For already applied), the throttles' key."""
    return request.client.host if request.client else "unknown"


@router.post("/register", status_code=201)
async def register(body: RegisterBody, request: Request, services: AppServices) -> dict[str, Any]:
    accounts = _accounts(services)
    user = await accounts.register(str(body.email), body.password, body.name, client=client_address(request))
    return {"user": user_json(user)}


@router.post("/login")
async def login(
    body: LoginBody, request: Request, services: AppServices, response: Response
) -> dict[str, Any]:
    response.headers["Cache-Control"] = "no-store"
    accounts = _accounts(services)
    return pair_json(await accounts.login(body.email, body.password, client=client_address(request)))


@router.post("/refresh")
async def refresh(
    body: RefreshBody, request: Request, services: AppServices, response: Response
) -> dict[str, Any]:
    response.headers["Cache-Control"] = "no-store"
    return pair_json(await _accounts(services).refresh(body.refresh_token, client=client_address(request)))


@router.post("/logout", status_code=204)
async def logout(body: RefreshBody, services: AppServices) -> Response:
    await _accounts(services).logout(body.refresh_token)
    return Response(status_code=204)


@router.get("/me")
async def me(claims: CurrentClaims, services: AppServices) -> dict[str, Any]:
    return {"user": user_json(await _accounts(services).get_user(claims.user_id))}


@router.get("/.well-known/jwks.json")
async def jwks(services: AppServices, response: Response) -> dict[str, Any]:
    if services.keyring is None:
        raise ServiceUnavailable("this process does not run the auth service", dependency="auth")
    response.headers["Cache-Control"] = "public, max-age=300"
    return services.keyring.jwks()
