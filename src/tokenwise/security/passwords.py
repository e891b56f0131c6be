"""Argon2id password hashing (OWASP parameters), off the event loop."""

from __future__ import annotations

import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# OWASP's minimum for argon2id: 19 MiB, 2 iterations, 1 lane. argon2-cffi releases the GIL while hashing.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Verified against when the email is unknown, so that timing does not reveal which emails are registered.
_DUMMY_HASH = _HASHER.hash("tokenwise-dummy-password")


async def hash_password(password: str) -> str:
    """An argon2id hash of `password`."""
    return await anyio.to_thread.run_sync(_HASHER.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether `password` matches; with no hash, spends the same time and says no."""
    target = password_hash or _DUMMY_HASH

    def check() -> bool:
        try:
            return _HASHER.verify(target, password)
        except (VerificationError, InvalidHashError):
            return False

    matched = await anyio.to_thread.run_sync(check)
    return matched and password_hash is not None


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with older parameters and should be replaced at the next login."""
    return _HASHER.check_needs_rehash(password_hash)
