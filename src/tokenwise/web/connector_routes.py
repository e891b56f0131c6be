"""Connectors over HTTP: a signed-in user stores an admin key, lists, syncs and deletes connectors.

Only an access token manages connectors (`CurrentClaims`): an API key for machines cannot read or use
the admin keys. No response carries the admin key, in any form.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, StringConstraints

from tokenwise.connectors.pulls import Kind
from tokenwise.services.connectors import connector_json
from tokenwise.web.deps import AppServices, CurrentClaims

router = APIRouter(prefix="/api", tags=["connectors"])
ConnectorName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$"),
]
AdminKey = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=8, max_length=500, pattern=r"^[\x21-\x7e]+$")
]
BaseUrl = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class NewConnector(BaseModel):
    kind: Kind
    name: ConnectorName
    admin_key: AdminKey
    base_url: BaseUrl | None = None  # default: the provider's API


@router.post("/connectors", status_code=201)
async def create_connector(
    body: NewConnector, claims: CurrentClaims, services: AppServices, response: Response
) -> dict[str, Any]:
    """A new connector; it syncs on the schedule, or at once with POST /api/connectors/{id}/sync."""
    connectors = services.connectors
    row = await connectors.create(claims.user_id, body.kind, body.name, body.admin_key, body.base_url)
    response.headers["Cache-Control"] = "no-store"
    return connector_json(row, 0)


@router.get("/connectors")
async def list_connectors(claims: CurrentClaims, services: AppServices) -> dict[str, Any]:
    connectors = services.connectors
    rows = await connectors.list(claims.user_id)
    return {"connectors": [connector_json(row, await connectors.rows_imported(row)) for row in rows]}


@router.post("/connectors/{connector_id}/sync")
async def sync_connector(connector_id: str, claims: CurrentClaims, services: AppServices) -> dict[str, Any]:
    """Sync now; 200 with the connector, whose `status` and `last_error` say how it went."""
    connectors = services.connectors
    row = await connectors.sync(claims.user_id, connector_id)
    return connector_json(row, await connectors.rows_imported(row))


@router.delete("/connectors/{connector_id}", status_code=204)
async def delete_connector(connector_id: str, claims: CurrentClaims, services: AppServices) -> Response:
    """Delete the connector, its stored key and its dataset."""
    await services.connectors.delete(claims.user_id, connector_id)
    return Response(status_code=204)
