"""The price book over HTTP: the user's effective prices, and their own overrides of them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from tokenwise.services.price_overrides import MAX_MODELS
from tokenwise.web.deps import AppServices, CurrentClaims

router = APIRouter(prefix="/api", tags=["prices"])

# $ per 1M tokens: finite, never negative; the cap keeps token x price far from float overflow.
Price = Annotated[float, Field(ge=0, le=1_000_000, allow_inf_nan=False)]
ModelKey = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]


class PriceEntry(BaseModel):
    """One model's price, the fields of a prices.json model entry; one left out keeps the book's."""

    model_config = ConfigDict(extra="forbid")

    input: Price
    output: Price
    cached_input: Price | None = None
    cache_write: Price | None = None  # 5-minute (or unspecified lifetime) prompt-cache writes
    cache_write_1h: Price | None = None
    batch_discount: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] | None = None
    provider: Annotated[str, StringConstraints(strip_whitespace=True, max_length=50)] | None = None
    source: Text | None = None


class PriceChange(BaseModel):
    """`{"models": {"name": {...}}}`: the models to set the user's own price of."""

    model_config = ConfigDict(extra="forbid")

    models: dict[ModelKey, PriceEntry] = Field(min_length=1, max_length=MAX_MODELS)


async def _effective(services: AppServices, user_id: str) -> dict[str, Any]:
    return (await services.price_overrides.book_for(user_id)).to_json()


@router.get("/prices")
async def prices(claims: CurrentClaims, services: AppServices) -> dict[str, Any]:
    """The user's price book: $ per 1M tokens per model, their overrides marked `"origin": "user"`."""
    return await _effective(services, claims.user_id)


@router.put("/prices")
async def set_prices(body: PriceChange, claims: CurrentClaims, services: AppServices) -> dict[str, Any]:
    """Set (or replace) the user's own price of each model given; their next question uses it."""
    models = {name: entry.model_dump(exclude_none=True) for name, entry in body.models.items()}
    await services.price_overrides.set(claims.user_id, models)
    return await _effective(services, claims.user_id)


@router.delete("/prices/{model:path}", status_code=204)
async def unset_price(model: str, claims: CurrentClaims, services: AppServices) -> Response:
    """Remove the user's own price of `model`: the server's book prices it again."""
    await services.price_overrides.unset(claims.user_id, model)
    return Response(status_code=204)
