"""Liveness (`healthy`, `degraded`, `unhealthy`), readiness (naming the failing dependency), WebSocket
health and Prometheus metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from tokenwise import __version__
from tokenwise.config import Role
from tokenwise.errors import ServiceUnavailable
from tokenwise.session.events import now_iso
from tokenwise.web.deps import AppServices

router = APIRouter(tags=["health"])


SERVICE = "tokenwise"
_LIVENESS_TIMEOUT_S = 0.5  # under the 1 s that probes (and tests/support/live.py) wait


async def _answers(check: Awaitable[None]) -> bool:
    """Whether a dependency answers within the liveness probe's budget."""
    try:
        await asyncio.wait_for(check, _LIVENESS_TIMEOUT_S)
    except (ServiceUnavailable, TimeoutError):
        return False
    return True


@router.get("/health")
@router.get("/api/health")
async def health(services: AppServices) -> JSONResponse:
    """Liveness: `healthy`, `degraded` (alive, a dependency failing: still 200) or `unhealthy` (503)."""
    if services.stopping:
        status, checks = "unhealthy", {"server": "stopping"}
    else:
        database, bus = await asyncio.gather(_answers(services.db.ping()), _answers(services.bus.ping()))
        checks = {"database": "ok" if database else "failing", "bus": "ok" if bus else "failing"}
        status = "healthy" if database and bus else "degraded"
    body = {
        "status": status,
        "service": SERVICE,
        "version": __version__,
        "timestamp": now_iso(),
        "role": services.settings.role.value,
        "checks": checks,
    }
    return JSONResponse(body, status_code=503 if status == "unhealthy" else 200)


@router.get("/health/ready")
async def ready(services: AppServices) -> JSONResponse:
    """200 when every dependency answers; 503 naming each one that does not."""
    checks: dict[str, dict[str, str]] = {}
    try:
        # SQLite: also that the file is still the one opened, writable, and its disk not full
        await services.db.check_ready(min_free_bytes=services.settings.min_free_disk_bytes)
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
