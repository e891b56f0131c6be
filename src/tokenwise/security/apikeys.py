"""API key secrets: `tw_` + 32 random bytes (base64url), stored only as their SHA-256.

A fast hash is enough here, unlike passwords: the secret has 256 bits of entropy, so there is nothing to
guess from a leaked hash, and the lookup stays one indexed query per request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from enum import StrEnum

SECRET_PREFIX = "tw_"  # noqa: S105 - a marker, not a secret
_SECRET_BYTES = 32
# What `GET /api/keys` shows of a secret: enough to tell keys apart, far too little to use.
SHOWN_CHARS = 8


class Scope(StrEnum):
    """What a key may do: send usage data, or read the datasets."""

    INGEST = "ingest"
    READ = "read"


def new_secret() -> str:
    """A fresh secret, shown to its owner once."""
    return SECRET_PREFIX + secrets.token_urlsafe(_SECRET_BYTES)


def is_api_key(credential: str) -> bool:
    """Whether a Bearer credential is an API key (access tokens are JWTs, which never start so)."""
    return credential.startswith(SECRET_PREFIX)


def secret_hash(secret: str) -> str:
    """The stored form of a secret: its SHA-256, hex."""
    return hashlib.sha256(secret.encode()).hexdigest()


def matches(secret: str, stored_hash: str) -> bool:
    """Whether `secret` hashes to `stored_hash`, compared in constant time."""
    return hmac.compare_digest(secret_hash(secret), stored_hash)


def shown_prefix(secret: str) -> str:
    return secret[:SHOWN_CHARS]
