"""`create_app(settings)`: the ASGI app for one role, with its services built at startup."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext

from fastapi import FastAPI

from tokenwise import __version__
from tokenwise.config import Settings
from tokenwise.services.container import Services
from tokenwise.web import (
    agent_routes,
    api_routes,
    auth_routes,
    connector_routes,
    dataset_routes,
    diagnostics,
    errors,
    frontend,
    health,
    key_routes,
    mcp_server,
    otlp_routes,
    price_routes,
    report_routes,
    sse,
)
from tokenwise.web.limits import BodyLimit
from tokenwise.web.redirects import PublicRedirects
from tokenwise.web.websocket import CHAT_PATHS, websocket_endpoint


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app. Services are created here, not at import time, and started by the lifespan."""
    settings = settings or Settings()
    services = Services.build(settings)
    mcp: mcp_server.McpEndpoint | None = None  # served with the API: its session manager runs here

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await services.start()
        try:
            running: AbstractAsyncContextManager[None] = nullcontext() if mcp is None else mcp.running()
            async with running:
                yield
        finally:
            await services.stop()

    app = FastAPI(title="Tokenwise", version=__version__, lifespan=lifespan)
    app.state.services = services
    errors.install(app)
    app.add_middleware(BodyLimit, settings=settings)  # request bodies bounded per route, while read
    app.add_middleware(PublicRedirects, public_url=settings.resolved_public_url)  # never to the Host header
    app.include_router(health.router)  # a worker serves only these: /health, /health/ready, /metrics
    if settings.serves_auth:
        app.include_router(auth_routes.router)
    if settings.serves_api:
        app.include_router(api_routes.router)
        app.include_router(agent_routes.router)  # the agents as other platforms' clients call them
        app.include_router(dataset_routes.router)
        app.include_router(connector_routes.router)
        app.include_router(key_routes.router)
        app.include_router(otlp_routes.router)
        app.include_router(price_routes.router)
        app.include_router(report_routes.router)
        app.include_router(diagnostics.router)
        app.include_router(sse.router)
        for path in CHAT_PATHS:
            app.add_api_websocket_route(path, websocket_endpoint)
        mcp = mcp_server.install(app, services)  # /api/mcp, /api/mcp/servers, /api/mcp/tools
        frontend.install(app)  # the web app at /, talking to this process's /auth and /api
    return app
