"""Where the API finds the public keys: the local key ring, or the auth service's JWKS over HTTP."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any, Protocol

import httpx
from jwt import PyJWK

from tokenwise.errors import ServiceUnavailable
from tokenwise.security.keys import KeyConfigurationError, KeyRing

log = logging.getLogger(__name__)
# A burst of tokens with unknown kids must not turn into a burst of JWKS fetches.
_MIN_REFETCH_S = 2.0


class KeySource(Protocol):
    """Public verification keys by kid."""

    async def key_for(self, kid: str) -> Any | None:
        """The public key for `kid`, or None when it is not published."""
        ...

    async def check(self) -> None:
        """Raise ServiceUnavailable unless the keys can be obtained."""
        ...


class LocalKeySource:
    """The auth service and the API in one process: verify against the key ring directly.

    With `reload` (the key directory), an unknown kid re-reads the directory (at most every couple of
    seconds): during a rolling key rotation a replica accepts a token signed with a key another replica
    started using, without a restart.
    """

    def __init__(self, keys: KeyRing, *, reload: Path | None = None) -> None:
        self._keys = self._public(keys)
        self._reload, self._read_at = reload, float("-inf")

    @staticmethod
    def _public(keys: KeyRing) -> dict[str, Any]:
        return {key.kid: key.private_key.public_key() for key in keys.keys}

    async def key_for(self, kid: str) -> Any | None:
        stale = time.monotonic() - self._read_at > _MIN_REFETCH_S
        if kid not in self._keys and self._reload is not None and stale:
            self._read_at = time.monotonic()
            try:
                ring = await asyncio.to_thread(KeyRing.from_directory, self._reload, generate=False)
                self._keys = self._public(ring)
            except (OSError, ValueError, KeyConfigurationError) as exc:
                log.warning("could not re-read the key directory %s: %s", self._reload, exc)
        return self._keys.get(kid)

    async def check(self) -> None:
        return None


class NoKeySource:
    """A process that verifies no tokens (a run worker)."""

    async def key_for(self, kid: str) -> Any | None:
        return None

    async def check(self) -> None:
        return None


class RemoteKeySource:
    """The auth service's JWKS, cached for `ttl_s` and refetched at once for an unknown kid."""

    def __init__(self, jwks_url: str, client: httpx.AsyncClient, *, ttl_s: float) -> None:
        self.jwks_url, self._client, self._ttl_s = jwks_url, client, ttl_s
        self._keys: dict[str, Any] = {}
        self._fetched_at = float("-inf")
        self._fetching = asyncio.Lock()  # concurrent lookups share one fetch instead of each starting one

    async def _fetch(self) -> None:
        try:
            response = await self._client.get(self.jwks_url, timeout=5.0)
            response.raise_for_status()
            document = response.json()
            keys = {jwk["kid"]: PyJWK(jwk).key for jwk in document["keys"] if "kid" in jwk}
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            raise ServiceUnavailable(
                f"cannot fetch the auth service's JWKS from {self.jwks_url}: {exc}", dependency="auth"
            ) from exc
        self._keys, self._fetched_at = keys, time.monotonic()

    def _stale(self, kid: str) -> bool:
        age = time.monotonic() - self._fetched_at
        return age > self._ttl_s or (kid not in self._keys and age > _MIN_REFETCH_S)

    async def key_for(self, kid: str) -> Any | None:
        if self._stale(kid):
            async with self._fetching:
                if self._stale(kid):  # still stale after waiting: no other lookup fetched meanwhile
                    await self._refresh(kid)
        return self._keys.get(kid)

    async def _refresh(self, kid: str) -> None:
        try:
            await self._fetch()
        except ServiceUnavailable:
            if kid not in self._keys:
                raise
            # The auth service is briefly away: keep verifying with the keys it published last, and
            # try again after a pause instead of on every lookup. /health/ready reports the failure.
            log.warning("JWKS refetch from %s failed; using the cached keys", self.jwks_url)
            self._fetched_at = time.monotonic() - self._ttl_s + _MIN_REFETCH_S

    async def check(self) -> None:
        await self._fetch()
