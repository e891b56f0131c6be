"""Tokenwise over the Model Context Protocol: `/api/mcp`, Streamable HTTP, with the official `mcp` SDK.

The tools are `services.toolbox`; the user's reports are resources (`tokenwise://reports/{id}`, JSON, and
`tokenwise://reports/{id}.md`, the Markdown). Every request carries `Authorization: Bearer` (an access
token, or an API key with the `read` scope), verified here like any other `/api` request before the
SDK sees it; each handler reads the user from its own request, so one user never reaches another's data.

Stateless mode with JSON responses: no session lives in one process, so any API process of a cluster
can answer any request, and nothing server-to-client is needed. The SDK's DNS-rebinding guard (a
Host/Origin allow-list) is off: it protects servers that trust the browser's ambient credentials, and
this one takes a Bearer credential only.
"""

from __future__ import annotations

import json
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import APIRouter
from mcp import types
from mcp.server import Server, ServerRequestContext
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from tokenwise import __version__
from tokenwise.errors import NotFound, TokenwiseError
from tokenwise.security.apikeys import Scope as KeyScope
from tokenwise.services.container import Services
from tokenwise.services.toolbox import TOOLS, Toolbox, report_json, report_summary, tools_json
from tokenwise.web.deps import AppServices, ReadCaller, authenticate
from tokenwise.web.errors import error_response

NAME = "tokenwise"
PATH = "/api/mcp"
TRANSPORT = "streamable-http"
REPORTS = "tokenwise://reports/"
_USER = "tokenwise.user_id"  # the scope key the authenticated user travels in, to each handler
_INSTRUCTIONS = (
    "Tokenwise answers questions about your team's AI/LLM usage and cost from your own usage data. "
    "Use `ask` for questions in plain words; `spend`, `breakdown` and `what_if` for exact queries."
)

router = APIRouter(prefix=PATH, tags=["mcp"])


class McpEndpoint:
    """The MCP server of one app, and the ASGI endpoint at `/api/mcp` in front of its session manager."""

    def __init__(self, services: Services) -> None:
        self.services, self.toolbox = services, Toolbox(services)
        self.server: Server[Any] = Server(
            NAME,
            version=__version__,
            instructions=_INSTRUCTIONS,
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            on_list_resources=self._list_resources,
            on_list_resource_templates=self._list_templates,
            on_read_resource=self._read_resource,
        )
        self.manager = StreamableHTTPSessionManager(
            self.server,
            stateless=True,
            json_response=True,
            security_settings=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )

    def running(self) -> AbstractAsyncContextManager[None]:
        """The session manager's task group: entered by the app's lifespan."""
        return self.manager.run()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            caller = await authenticate(Request(scope), self.services, KeyScope.READ)
        except TokenwiseError as exc:
            await error_response(exc)(scope, receive, send)
            return
        await self.manager.handle_request({**scope, _USER: caller.user_id}, receive, send)

    # ---- handlers ---------------------------------------------------------------------------------
    async def _list_tools(
        self, _ctx: ServerRequestContext[Any], _params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        tools = [
            types.Tool(name=spec.name, description=spec.description, input_schema=spec.input_schema())
            for spec in TOOLS
        ]
        return types.ListToolsResult(tools=tools)

    async def _call_tool(
        self, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        try:
            result = await self.toolbox.call(_user(ctx), params.name, dict(params.arguments or {}))
        except NotFound as exc:
            if exc.details.get("field") == "name":
                raise MCPError(types.INVALID_PARAMS, exc.message) from exc
            return _failed(exc)
        except TokenwiseError as exc:
            return _failed(exc)
        text = json.dumps(result, separators=(",", ":"))
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=text)], structured_content=result
        )

    async def _list_resources(
        self, ctx: ServerRequestContext[Any], _params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        summaries = [report_summary(row) for row in await self.services.chat.reports(_user(ctx), limit=100)]
        resources = [
            types.Resource(
                uri=f"{REPORTS}{summary['report_id']}",
                name=f"report-{summary['report_id']}",
                title=str(summary["title"] or "Report"),
                description=f"A {summary['report_type']} report, {summary['created_at'][:16]} UTC",
                mime_type="application/json",
            )
            for summary in summaries
        ]
        return types.ListResourcesResult(resources=resources)

    async def _list_templates(
        self, _ctx: ServerRequestContext[Any], _params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        templates = [
            types.ResourceTemplate(
                uri_template=REPORTS + "{report_id}",
                name="report",
                description="A report: the structured report and its Markdown, as JSON.",
                mime_type="application/json",
            ),
            types.ResourceTemplate(
                uri_template=REPORTS + "{report_id}.md",
                name="report-markdown",
                description="A report's Markdown.",
                mime_type="text/markdown",
            ),
        ]
        return types.ListResourceTemplatesResult(resource_templates=templates)

    async def _read_resource(
        self, ctx: ServerRequestContext[Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        uri = str(params.uri)
        report_id = uri.removeprefix(REPORTS)
        markdown = report_id.endswith(".md")
        report_id = report_id.removesuffix(".md")
        try:
            if not uri.startswith(REPORTS) or not report_id:
                raise NotFound(f"no resource {uri!r}", field="uri")
            run = await self.toolbox.report_run(_user(ctx), report_id)
        except NotFound as exc:
            raise MCPError(types.INVALID_PARAMS, exc.message, {"uri": uri}) from exc
        if markdown:
            content = types.TextResourceContents(
                uri=uri, text=run.report_markdown or "", mime_type="text/markdown"
            )
        else:
            text = json.dumps(report_json(run), default=str)
            content = types.TextResourceContents(uri=uri, text=text, mime_type="application/json")
        return types.ReadResourceResult(contents=[content])


def _user(ctx: ServerRequestContext[Any]) -> str:
    """The user the request was authenticated as (every request is, before the SDK sees it)."""
    request = ctx.request
    user_id = request.scope.get(_USER) if isinstance(request, Request) else None
    if not isinstance(user_id, str):
        raise MCPError(types.INVALID_REQUEST, "the request is not authenticated")
    return user_id


def _failed(error: TokenwiseError) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=error.message)],
        structured_content=error.body(),
        is_error=True,
    )


def install(app: Any, services: Services) -> McpEndpoint:
    """Serve MCP at `/api/mcp` (exactly: a client posts to the URL it was given, without redirects)."""
    endpoint = McpEndpoint(services)
    app.add_route(PATH, endpoint, methods=["GET", "POST", "DELETE"], include_in_schema=False)
    app.include_router(router)
    return endpoint


@router.get("/servers")
async def servers(_caller: ReadCaller, services: AppServices) -> dict[str, Any]:
    """The MCP servers this deployment offers: one, this one."""
    server = {
        "name": NAME,
        "url": services.settings.resolved_public_url.rstrip("/") + PATH,
        "transport": TRANSPORT,
        "status": "connected",
        "version": __version__,
        "tools": [spec.name for spec in TOOLS],
    }
    return {"servers": [server]}


@router.get("/tools")
async def tools(_caller: ReadCaller) -> dict[str, Any]:
    """The MCP server's tools, each with the JSON schema of its arguments."""
    return {"tools": tools_json()}
