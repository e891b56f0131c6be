"""Liveness, readiness (naming the failing dependency), WebSocket health and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from tokenwise import __version__
from tokenwise.config import Role
from tokenwise.errors import ServiceUnavailable
from tokenwise.web.deps import AppServices

router = APIRouter(tags=["health"])


@router.get("/health")
@router.get("/api/health")
async def health(services: AppServices) -> dict[str, Any]:
    return {"status": "ok", "version": __version__, "role": services.settings.role.value}


@router.get("/health/ready")
async def ready(services: AppServices) -> JSONResponse:
    """200 when every dependency answers; 503 naming each one that does not."""
    checks: dict[str, dict[str, str]] = {}
    try:
        await services.db.ping()
        checks["database"] = {"status": "ok"}
    except ServiceUnavailable as exc:
        checks["database"] = {"status": "failing", "message": exc.message}
    if services.settings.role is not Role.WORKER:
        try:
            await services.keys.check()
            checks["auth"] = {"status": "ok"}
        except ServiceUnavailable as exc:
            checks["auth"] = {
                "status": "failing",
                "message": exc.message,
                "issuer_url": services.settings.auth_url or services.settings.resolved_public_url,
            }
    try:
        await services.bus.ping()
        checks["bus"] = {"status": "ok"}
    except ServiceUnavailable as exc:
        # Live events still arrive from storage within seconds: degraded, not failing.
        checks["bus"] = {"status": "degraded", "message": exc.message}
    if services.worker is not None:
        checks["worker"] = {"status": "ok", "runs": str(services.worker.running())}
    failing = [name for name, check in checks.items() if check["status"] == "failing"]
    degraded = [name for name, check in checks.items() if check["status"] == "degraded"]
    status = "failing" if failing else "degraded" if degraded else "ok"
    body = {"status": status, "failing": failing, "degraded": degraded, "checks": checks}
    return JSONResponse(body, status_code=503 if failing else 200)


@router.get("/ws/health")
async def websocket_health(services: AppServices) -> dict[str, Any]:
    return {
        "status": "ok",
        "service": "websocket",
        "version": __version__,
        "metrics": services.metrics.websocket_summary(),
    }


@router.get("/metrics")
async def metrics(services: AppServices) -> Response:
    return Response(services.metrics.exposition(), media_type="text/plain; version=0.0.4")
