"""Accounts: registration, sign-in, rotating refresh tokens, and single-use WebSocket tickets."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from tokenwise.db.database import Database
from tokenwise.db.tables import RefreshTokenRow, UserRow, utcnow
from tokenwise.errors import AuthenticationError, Conflict, InvalidCredentials, NotFound
from tokenwise.limits.throttle import Throttle
from tokenwise.security.passwords import hash_password, needs_rehash, verify_password
from tokenwise.security.tokens import TokenIssuer


@dataclass(frozen=True)
class User:
    id: str
    email: str
    name: str | None


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    user: User


def digest(secret: str) -> str:
    # Refresh tokens and tickets are stored as hashes: a database leak does not leak live credentials.
    return hashlib.sha256(secret.encode()).hexdigest()


def _user(row: UserRow) -> User:
    return User(id=row.id, email=row.email, name=row.name)


class Accounts:
    def __init__(
        self, db: Database, issuer: TokenIssuer, *, refresh_ttl_s: int, throttle: Throttle | None = None
    ) -> None:
        self._db, self._issuer = db, issuer
        self._refresh_ttl = timedelta(seconds=refresh_ttl_s)
        self.throttle = throttle

    async def register(
        self, email: str, password: str, name: str | None = None, *, client: str | None = None
    ) -> User:
        """Create a user; a taken email is a Conflict. `client` (an address) is rate-limited."""
        if client is not None and self.throttle is not None:
            await self.throttle.register(client)
        row = UserRow(
            id=str(uuid.uuid4()),
            email=email.strip().lower(),
            name=name,
            password_hash=await hash_password(password),
        )
        try:
            async with self._db.session() as session:
                session.add(row)
        except IntegrityError as exc:
            raise Conflict("an account with this email already exists", field="email") from exc
        return _user(row)

    async def ensure_user(self, email: str, password: str, name: str | None = None) -> User:
        """The user with this email, created when missing (the demo user of `make run`)."""
        try:
            return await self.register(email, password, name)
        except Conflict:
            async with self._db.session() as session:
                row = await session.scalar(select(UserRow).where(UserRow.email == email.strip().lower()))
            assert row is not None
            return _user(row)

    async def login(self, email: str, password: str, *, client: str | None = None) -> TokenPair:
        """A token pair; an unknown email and a wrong password fail alike, in the same time.

        With `client` (an address), throttled per account and per address (limits/throttle.py).
        """
        account, address = email.strip().lower(), client or ""
        throttle = self.throttle if client is not None else None
        if throttle is not None:
            await throttle.begin_login(account, address)
        try:
            async with self._db.session() as session:
                row = await session.scalar(select(UserRow).where(UserRow.email == account))
            matched = await verify_password(row.password_hash if row else None, password)
        except BaseException:
            if throttle is not None:
                await throttle.login_abandoned(account)  # no answer about the password: its token back
            raise
        if not matched or row is None:
            if throttle is not None:
                await throttle.login_failed(account, address)
            raise InvalidCredentials("the email or password is incorrect")
        if throttle is not None:
            await throttle.login_succeeded(account)
        if needs_rehash(row.password_hash):
            new_hash = await hash_password(password)
            async with self._db.session() as session:
                await session.execute(
                    update(UserRow).where(UserRow.id == row.id).values(password_hash=new_hash)
                )
        return await self._pair(_user(row), family_id=str(uuid.uuid4()))

    async def _pair(self, user: User, family_id: str) -> TokenPair:
        access, _expires = self._issuer.issue(user.id)
        refresh = secrets.token_urlsafe(32)
        async with self._db.session() as session:
            session.add(
                RefreshTokenRow(
                    token_hash=digest(refresh),
                    user_id=user.id,
                    family_id=family_id,
                    expires_at=utcnow() + self._refresh_ttl,
                )
            )
        return TokenPair(access, refresh, self._issuer.ttl_s, user)

    async def refresh(self, refresh_token: str, *, client: str | None = None) -> TokenPair:
        """Rotate a refresh token. Presenting an already-rotated one revokes its whole family."""
        if client is not None and self.throttle is not None:
            await self.throttle.refresh(client)
        now = utcnow()
        async with self._db.session() as session:
            row = await session.get(RefreshTokenRow, digest(refresh_token))
            if row is None or row.revoked_at is not None or row.expires_at <= now:
                raise AuthenticationError("the refresh token is invalid or expired", reason="refresh_invalid")
            claimed = await session.execute(
                update(RefreshTokenRow)
                .where(RefreshTokenRow.token_hash == row.token_hash, RefreshTokenRow.used_at.is_(None))
                .values(used_at=now)
            )
            reused = claimed.rowcount == 0  # type: ignore[attr-defined]
            if reused:
                await session.execute(
                    update(RefreshTokenRow)
                    .where(RefreshTokenRow.family_id == row.family_id, RefreshTokenRow.revoked_at.is_(None))
                    .values(revoked_at=now)
                )
            user = await session.get(UserRow, row.user_id)
        if reused or user is None:
            raise AuthenticationError(
                "this refresh token was already used; the session is revoked, sign in again",
                reason="refresh_reused",
            )
        return await self._pair(_user(user), family_id=row.family_id)

    async def logout(self, refresh_token: str) -> None:
        """Revoke the refresh token's family (every token rotated from the same sign-in)."""
        async with self._db.session() as session:
            row = await session.get(RefreshTokenRow, digest(refresh_token))
            if row is not None:
                await session.execute(
                    update(RefreshTokenRow)
                    .where(RefreshTokenRow.family_id == row.family_id, RefreshTokenRow.revoked_at.is_(None))
                    .values(revoked_at=utcnow())
                )

    async def get_user(self, user_id: str) -> User:
        async with self._db.session() as session:
            row = await session.get(UserRow, user_id)
        if row is None:
            raise NotFound("no such user")
        return _user(row)
