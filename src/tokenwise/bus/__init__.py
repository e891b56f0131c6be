"""Event buses: how stored run events reach every connection of their user, in any process."""

from __future__ import annotations

from urllib.parse import urlsplit

from tokenwise.bus.base import EventBus
from tokenwise.bus.memory import MemoryBus

_REDIS_SCHEMES = ("redis", "rediss", "unix")


def build_bus(url: str, *, queue_size: int = 1024) -> EventBus:
    """The bus `TOKENWISE_BUS_URL` names: memory:// or empty (in-process), redis://, rediss://, unix://."""
    url = url.strip()
    scheme = urlsplit(url).scheme.lower() if "://" in url else ""
    if not url or scheme == "memory":
        return MemoryBus(queue_size=queue_size)
    if scheme in _REDIS_SCHEMES:
        from tokenwise.bus.redis import RedisBus  # redis-py is only imported by processes that use it

        return RedisBus(url, queue_size=queue_size)
    # Name the scheme only: the URL may carry a password.
    given = f"scheme {scheme}://" if scheme else "a value without a scheme"
    raise ValueError(
        f"TOKENWISE_BUS_URL has {given}: use memory:// (or leave it empty) for the in-process bus, "
        "or redis://, rediss:// or unix:// for Redis"
    )
