"""The web app: `index.html` at `/` and at the app's own routes, its assets under `/static`.

Every response carries a strict Content-Security-Policy: scripts and styles only from this origin,
nothing inline, no frames. Caching: the page and the app's own modules are revalidated on every load
(their names carry no version; the ETag makes an unchanged file a cheap 304), while vendored files live
in directories named after their version and are cached for a year.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI
from starlette.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        # 'self' covers ws:/wss: to this same host and port (CSP level 3).
        "connect-src 'self'",
        "manifest-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
REVALIDATE = "no-cache"
IMMUTABLE = "public, max-age=31536000, immutable"


class Assets(StaticFiles):
    """StaticFiles with the cache policy above and the security headers on every file."""

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        versioned = self.get_path(scope).split(os.sep, 1)[0] == "vendor"
        response.headers["Cache-Control"] = IMMUTABLE if versioned else REVALIDATE
        response.headers.update(SECURITY_HEADERS)
        return response


async def index() -> Response:
    """The single page; the app reads the path (e.g. `/threads/<id>`) itself."""
    return FileResponse(
        STATIC_DIR / "index.html",
        media_type="text/html; charset=utf-8",
        headers={"Cache-Control": REVALIDATE, **SECURITY_HEADERS},
    )


def install(app: FastAPI) -> None:
    """Serve the web app on `app`: `/`, `/threads/{id}` and `/static/...`."""
    for path in ("/", "/threads/{thread_id}"):
        app.add_api_route(path, index, methods=["GET", "HEAD"], include_in_schema=False)
    app.mount("/static", Assets(directory=STATIC_DIR), name="static")
