"""Which browser origins may open the chat WebSocket."""

from __future__ import annotations

from urllib.parse import urlsplit


def origin_allowed(origin: str | None, host: str | None, allowed: list[str]) -> bool:
    """No Origin (not a browser), the page's own origin, or one listed in `allowed_origins` ("*" for all)."""
    if origin is None:
        return True
    if "*" in allowed or origin.rstrip("/") in (a.rstrip("/") for a in allowed):
        return True
    # Same origin: the page was served by this host. Behind a proxy, list the public origin instead.
    return host is not None and urlsplit(origin).netloc.lower() == host.lower()
