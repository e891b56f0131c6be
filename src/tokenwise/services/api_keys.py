"""API keys for machines: create (the secret is returned once), list, revoke, and authenticate a request.

Only a key's SHA-256 is stored. `last_used_at` is written at most once a minute per key, so a busy
exporter does not turn every request into a database write.
"""

from __future__ import annotations

import builtins
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update

from tokenwise.db.database import Database
from tokenwise.db.tables import ApiKeyRow, utcnow
from tokenwise.errors import AuthenticationError, Conflict, InvalidInput, NotFound
from tokenwise.security.apikeys import Scope, matches, new_secret, secret_hash, shown_prefix

log = logging.getLogger(__name__)
_LAST_USED_RESOLUTION = timedelta(minutes=1)
MAX_KEYS_PER_USER = 100


@dataclass(frozen=True)
class KeyHolder:
    """Who a valid API key speaks for, and what it may do."""

    key_id: str
    user_id: str
    scopes: frozenset[str]


def key_json(row: ApiKeyRow) -> dict[str, Any]:
    """A key as `GET /api/keys` shows it: never the secret, nor its hash."""
    return {
        "id": row.id,
        "name": row.name,
        "prefix": row.prefix,
        "scopes": list(row.scopes),
        "created_at": row.created_at.isoformat(),
        "last_used_at": row.last_used_at.isoformat() if row.last_used_at else None,
    }


def _scopes(scopes: Sequence[str]) -> list[str]:
    known = {scope.value for scope in Scope}
    unknown = sorted(set(scopes) - known)
    if unknown:
        raise InvalidInput(f"scopes: unknown scope(s) {unknown}; use {sorted(known)}", field="scopes")
    if not scopes:
        raise InvalidInput(f"scopes: name at least one of {sorted(known)}", field="scopes")
    return sorted(set(scopes))


class ApiKeys:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, user_id: str, name: str, scopes: Sequence[str]) -> tuple[ApiKeyRow, str]:
        """A new key of `user_id` and its secret (the only time the secret exists outside the caller)."""
        granted = _scopes(scopes)
        secret = new_secret()
        row = ApiKeyRow(
            id=str(uuid.uuid4()),
            user_id=user_id,
            name=name,
            prefix=shown_prefix(secret),
            secret_hash=secret_hash(secret),
            scopes=granted,
            created_at=utcnow(),
        )
        async with self._db.session() as session:
            active = await session.scalar(
                select(func.count())
                .select_from(ApiKeyRow)
                .where(ApiKeyRow.user_id == user_id, ApiKeyRow.revoked_at.is_(None))
            )
            if (active or 0) >= MAX_KEYS_PER_USER:
                raise Conflict(f"at most {MAX_KEYS_PER_USER} active API keys per user; revoke one first")
            session.add(row)
        log.info("api key %s created for user %s with scopes %s", row.id, user_id, granted)
        return row, secret

    async def list(self, user_id: str) -> builtins.list[ApiKeyRow]:
        """The user's keys that are not revoked, oldest first."""
        async with self._db.session() as session:
            rows = await session.scalars(
                select(ApiKeyRow)
                .where(ApiKeyRow.user_id == user_id, ApiKeyRow.revoked_at.is_(None))
                .order_by(ApiKeyRow.created_at)
            )
            return list(rows)

    async def revoke(self, user_id: str, key_id: str) -> None:
        """Revoke one of the user's keys; NotFound for an unknown, revoked or someone else's key."""
        async with self._db.session() as session:
            revoked = await session.execute(
                update(ApiKeyRow)
                .where(ApiKeyRow.id == key_id, ApiKeyRow.user_id == user_id, ApiKeyRow.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
        if getattr(revoked, "rowcount", 0) != 1:
            raise NotFound(f"no API key {key_id}", field="key_id")
        log.info("api key %s revoked by user %s", key_id, user_id)

    async def authenticate(self, secret: str) -> KeyHolder:
        """The holder of `secret`; AuthenticationError (`api_key_invalid` / `api_key_revoked`) otherwise."""
        stored = secret_hash(secret)
        async with self._db.session() as session:
            row = await session.scalar(select(ApiKeyRow).where(ApiKeyRow.secret_hash == stored))
            # The lookup is by hash; compare again in constant time so that no code path depends on a
            # byte-by-byte comparison of secret material.
            if row is None or not matches(secret, row.secret_hash):
                raise AuthenticationError("the API key is not valid", reason="api_key_invalid")
            if row.revoked_at is not None:
                raise AuthenticationError("the API key has been revoked", reason="api_key_revoked")
            now = utcnow()
            if row.last_used_at is None or now - row.last_used_at >= _LAST_USED_RESOLUTION:
                row.last_used_at = now
            return KeyHolder(row.id, row.user_id, frozenset(row.scopes))
