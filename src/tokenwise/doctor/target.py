"""The deployment under examination: its URL taken apart, and the TLS trust to reach it with."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from tokenwise.client.connection import ws_url_for

_HTTP_SCHEMES = {"http": "http", "https": "https", "ws": "http", "wss": "https"}


class TargetError(ValueError):
    """The URL or the CA file cannot be used (a usage error)."""


@dataclass(frozen=True)
class Target:
    base_url: str  # http(s)://host[:port][/prefix], no trailing slash
    host: str
    port: int
    tls: bool

    @property
    def ws_url(self) -> str:
        return ws_url_for(self.base_url)

    @property
    def origin(self) -> str:
        """The origin a browser page served from this URL would send."""
        parts = urlsplit(self.base_url)
        return urlunsplit((parts.scheme, parts.netloc, "", "", ""))

    @property
    def host_header(self) -> str:
        """The Host header clients send (the port only when it is not the scheme's default)."""
        return urlsplit(self.base_url).netloc.rpartition("@")[2]


def parse_target(url: str) -> Target:
    """An http(s):// or ws(s):// URL of a Tokenwise deployment (a path prefix is kept)."""
    parts = urlsplit(url.strip())
    scheme = _HTTP_SCHEMES.get(parts.scheme.lower())
    if scheme is None or not parts.hostname:
        raise TargetError(f"{url!r} is not an http://, https://, ws:// or wss:// URL")
    if parts.query or parts.fragment:
        raise TargetError(f"{url!r}: give the deployment's base URL, without a query or fragment")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError as exc:
        raise TargetError(f"{url!r} has an invalid port") from exc
    path = parts.path.rstrip("/")
    if path.endswith("/ws"):  # the WebSocket URL itself was given: examine its deployment
        path = path[: -len("/ws")]
    base = urlunsplit((scheme, parts.netloc, path, "", ""))
    return Target(base_url=base, host=parts.hostname, port=port, tls=scheme == "https")


def trust(ca_file: Path | None) -> ssl.SSLContext:
    """The TLS context every layer uses: the system's CAs, or only `ca_file` (a private CA) when given."""
    if ca_file is not None and not ca_file.is_file():
        raise TargetError(f"--ca {ca_file}: no such file")
    try:
        return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except (ssl.SSLError, OSError) as exc:
        raise TargetError(f"--ca {ca_file}: not a PEM file of CA certificates ({exc})") from exc
