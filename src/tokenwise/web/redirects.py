"""Redirects point at the configured public URL, never at the Host header a client sent.

Starlette builds the Location of its own redirects (a trailing slash, `/static` → `/static/`) from the
request's Host header, so `Host: evil.example` got a redirect to `http://evil.example/…`. A Location
whose host is the request's own Host is rewritten to `settings.resolved_public_url`; a redirect to any
other host (none today) and relative ones are left as they are.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class PublicRedirects:
    """ASGI middleware: absolute redirects to the request's Host go to the public URL instead."""

    def __init__(self, app: ASGIApp, *, public_url: str) -> None:
        self.app = app
        public = urlsplit(public_url)
        self._scheme, self._netloc = public.scheme, public.netloc

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = next((v for k, v in scope["headers"] if k == b"host"), b"").decode("latin-1").lower()

        async def send_public(message: Message) -> None:
            if message["type"] == "http.response.start" and 300 <= message["status"] < 400:
                message = {
                    **message,
                    "headers": [
                        (k, self._public(v, host) if k.lower() == b"location" else v)
                        for k, v in message.get("headers", [])
                    ],
                }
            await send(message)

        await self.app(scope, receive, send_public)

    def _public(self, location: bytes, host: str) -> bytes:
        url = urlsplit(location.decode("latin-1"))
        if not url.netloc or url.netloc.lower() not in (host, self._netloc.lower()):
            return location
        public = urlunsplit((self._scheme, self._netloc, url.path, url.query, url.fragment))
        return public.encode("latin-1")
