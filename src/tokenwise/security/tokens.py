"""Access tokens: ES256 JWTs with kid, iss, aud, sub, exp, iat and jti."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import jwt

from tokenwise.errors import AuthenticationError, TokenExpired
from tokenwise.security.keys import ALGORITHM, KeyRing
from tokenwise.security.keysource import KeySource

_REQUIRED = ["exp", "iat", "sub", "jti", "iss", "aud"]


@dataclass(frozen=True)
class Claims:
    """The verified claims the application uses."""

    user_id: str
    expires_at: datetime
    jti: str


class TokenIssuer:
    """Signs access tokens with the key ring's signing key."""

    def __init__(self, keys: KeyRing, *, issuer: str, audience: str, ttl_s: int) -> None:
        self.keys, self.issuer, self.audience, self.ttl_s = keys, issuer, audience, ttl_s

    def issue(self, user_id: str, *, ttl_s: int | None = None) -> tuple[str, datetime]:
        """A fresh access token for `user_id`, and when it expires."""
        now = datetime.now(UTC).replace(microsecond=0)
        expires = now + timedelta(seconds=self.ttl_s if ttl_s is None else ttl_s)
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": user_id,
            "iat": now,
            "exp": expires,
            "jti": uuid.uuid4().hex,
        }
        key = self.keys.signing
        token = jwt.encode(claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid})
        return token, expires


class UserCheck(Protocol):
    """Refuses (AuthenticationError) a user id whose account no longer exists."""

    async def require(self, user_id: str) -> None: ...


class TokenVerifier:
    """Verifies access tokens against published keys; a mismatch is named, never guessed around."""

    def __init__(
        self, keys: KeySource, *, issuer: str, audience: str, users: UserCheck | None = None
    ) -> None:
        self.keys, self.issuer, self.audience = keys, issuer, audience
        self.users = users  # a deleted account's tokens verify as signed: this refuses them

    async def verify(self, token: str) -> Claims:
        """The token's claims, or AuthenticationError with a `reason` saying what failed."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise AuthenticationError("the access token is malformed", reason="malformed") from exc
        if header.get("alg") != ALGORITHM:
            raise AuthenticationError(f"tokens must be signed with {ALGORITHM}", reason="algorithm")
        kid = header.get("kid")
        key = await self.keys.key_for(kid) if isinstance(kid, str) else None
        if key is None:
            raise AuthenticationError(
                f"the token's signing key {kid!r} is not published by the auth service", reason="unknown_key"
            )
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": _REQUIRED},
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenExpired("the access token has expired", reason="expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise AuthenticationError(
                f"the token's audience is not {self.audience!r}", reason="audience_mismatch"
            ) from exc
        except jwt.InvalidIssuerError as exc:
            raise AuthenticationError(
                f"the token's issuer is not {self.issuer!r}", reason="issuer_mismatch"
            ) from exc
        except jwt.InvalidSignatureError as exc:
            raise AuthenticationError("the token's signature does not verify", reason="signature") from exc
        except jwt.InvalidTokenError as exc:
            raise AuthenticationError(f"the access token is invalid: {exc}", reason="invalid") from exc
        verified = Claims(
            user_id=str(claims["sub"]),
            expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
            jti=str(claims["jti"]),
        )
        if self.users is not None:
            await self.users.require(verified.user_id)
        return verified
