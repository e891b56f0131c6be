"""API keys over HTTP: a signed-in user creates, lists and revokes the keys their machines send data with.

Only an access token manages keys (`CurrentClaims` refuses an API key with 403), so a leaked key cannot
mint more keys or revoke the others.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field, StringConstraints

from tokenwise.security.apikeys import Scope
from tokenwise.services.api_keys import key_json
from tokenwise.web.deps import AppServices, CurrentClaims

router = APIRouter(prefix="/api", tags=["api keys"])
KeyName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$"),
]


class NewKey(BaseModel):
    name: KeyName
    scopes: list[Scope] = Field(min_length=1, max_length=len(Scope))


@router.post("/keys", status_code=201)
async def create_key(
    body: NewKey, claims: CurrentClaims, services: AppServices, response: Response
) -> dict[str, Any]:
    """A new key; `secret` is in this response only, never again."""
    row, secret = await services.api_keys.create(claims.user_id, body.name, [s.value for s in body.scopes])
    response.headers["Cache-Control"] = "no-store"
    return {**key_json(row), "secret": secret}


@router.get("/keys")
async def list_keys(claims: CurrentClaims, services: AppServices) -> dict[str, Any]:
    return {"keys": [key_json(row) for row in await services.api_keys.list(claims.user_id)]}


@router.delete("/keys/{key_id}", status_code=204)
async def revoke_key(key_id: str, claims: CurrentClaims, services: AppServices) -> Response:
    """Revoke a key at once: the next request with it gets 401 (`reason: "api_key_revoked"`)."""
    await services.api_keys.revoke(claims.user_id, key_id)
    return Response(status_code=204)
