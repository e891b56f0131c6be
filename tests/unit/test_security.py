"""Signing keys, access tokens, the key sources the API verifies against, and password hashing.

Real crypto throughout; the remote key source fetches a JWKS over real HTTP from a tiny local server.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from argon2 import PasswordHasher
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tokenwise.errors import AuthenticationError, ServiceUnavailable, TokenExpired
from tokenwise.security.keys import KeyConfigurationError, KeyRing, generate_key_file
from tokenwise.security.keysource import LocalKeySource, RemoteKeySource
from tokenwise.security.passwords import hash_password, needs_rehash, verify_password
from tokenwise.security.tokens import TokenIssuer, TokenVerifier

ISSUER, AUDIENCE = "tokenwise", "tokenwise-api"


def _ring(directory: Path) -> KeyRing:
    return KeyRing.from_directory(directory, generate=False)


def _issuer(ring: KeyRing, ttl_s: int = 60) -> TokenIssuer:
    return TokenIssuer(ring, issuer=ISSUER, audience=AUDIENCE, ttl_s=ttl_s)


def _verifier(ring: KeyRing) -> TokenVerifier:
    return TokenVerifier(LocalKeySource(ring), issuer=ISSUER, audience=AUDIENCE)


def _two_key_dir(directory: Path) -> tuple[Path, Path]:
    """An older and a newer key file; mtimes set explicitly so the order never depends on clock grain."""
    old, new = generate_key_file(directory), generate_key_file(directory)
    os.utime(old, (1_000_000, 1_000_000))
    os.utime(new, (2_000_000, 2_000_000))
    return old, new


def _write_pem(path: Path, key: Any) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )


# ---- keys ------------------------------------------------------------------------------------------


def test_generated_key_file_is_private_p256_pem(tmp_path: Path) -> None:
    path = generate_key_file(tmp_path / "keys")
    assert path.parent == tmp_path / "keys"
    assert path.stat().st_mode & 0o777 == 0o600
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.curve.name == "secp256r1"


def test_empty_directory_is_an_error_unless_generation_is_allowed(tmp_path: Path) -> None:
    with pytest.raises(KeyConfigurationError, match="TOKENWISE_KEY_DIR"):
        KeyRing.from_directory(tmp_path / "missing", generate=False)
    assert not (tmp_path / "missing").exists()

    ring = KeyRing.from_directory(tmp_path / "dev", generate=True)
    assert len(ring.keys) == 1
    assert [p.name for p in (tmp_path / "dev").glob("*.pem")] == [f"signing-{ring.signing.kid}.pem"]


def test_kid_is_a_stable_thumbprint_across_loads(tmp_path: Path) -> None:
    generate_key_file(tmp_path)
    first, second = _ring(tmp_path), _ring(tmp_path)
    assert first.signing.kid == second.signing.kid
    assert len(first.signing.kid) == 16


def test_newest_key_signs_and_every_key_is_published(tmp_path: Path) -> None:
    old, new = _two_key_dir(tmp_path)
    ring = _ring(tmp_path)
    kids = [key.kid for key in ring.keys]
    assert len(set(kids)) == 2
    assert new.name == f"signing-{ring.signing.kid}.pem"
    assert old.name == f"signing-{kids[0]}.pem"
    assert [jwk["kid"] for jwk in ring.jwks()["keys"]] == kids


def test_signing_kid_selects_the_signing_key(tmp_path: Path) -> None:
    old, _new = _two_key_dir(tmp_path)
    old_kid = old.stem.removeprefix("signing-")
    ring = KeyRing.from_directory(tmp_path, generate=False, signing_kid=old_kid)
    assert ring.signing.kid == old_kid
    with pytest.raises(KeyConfigurationError, match="not among the keys"):
        KeyRing.from_directory(tmp_path, generate=False, signing_kid="0123456789abcdef")


def test_jwks_publishes_public_es256_keys_only(tmp_path: Path) -> None:
    generate_key_file(tmp_path)
    (jwk,) = _ring(tmp_path).jwks()["keys"]
    assert jwk["kty"] == "EC"
    assert jwk["crv"] == "P-256"
    assert jwk["alg"] == "ES256"
    assert jwk["use"] == "sig"
    assert {"x", "y", "kid"} <= jwk.keys()
    assert "d" not in jwk  # the private scalar never leaves the auth service


@pytest.mark.parametrize(
    "contents",
    [
        pytest.param(b"not a key at all", id="garbage"),
        pytest.param(rsa.generate_private_key(public_exponent=65537, key_size=2048), id="rsa"),
        pytest.param(ec.generate_private_key(ec.SECP384R1()), id="p384"),
    ],
)
def test_unusable_key_file_is_a_configuration_error(tmp_path: Path, contents: Any) -> None:
    path = tmp_path / "bad.pem"
    if isinstance(contents, bytes):
        path.write_bytes(contents)
    else:
        _write_pem(path, contents)
    with pytest.raises(KeyConfigurationError, match=r"bad\.pem"):
        _ring(tmp_path)


# ---- tokens ----------------------------------------------------------------------------------------


async def test_issued_token_carries_kid_and_required_claims_and_verifies(tmp_path: Path) -> None:
    generate_key_file(tmp_path)
    ring = _ring(tmp_path)
    token, expires = _issuer(ring, ttl_s=120).issue("user-1")

    header = jwt.get_unverified_header(token)
    assert header["alg"] == "ES256"
    assert header["kid"] == ring.signing.kid
    claims = jwt.decode(token, options={"verify_signature": False})
    assert {"iss", "aud", "sub", "exp", "iat", "jti"} <= claims.keys()
    assert (claims["iss"], claims["aud"], claims["sub"]) == (ISSUER, AUDIENCE, "user-1")
    assert claims["exp"] - claims["iat"] == 120

    verified = await _verifier(ring).verify(token)
    assert verified.user_id == "user-1"
    assert verified.expires_at == expires
    assert verified.jti == claims["jti"]


async def test_every_token_has_its_own_jti(tmp_path: Path) -> None:
    generate_key_file(tmp_path)
    issuer = _issuer(_ring(tmp_path))
    jtis = {jwt.decode(issuer.issue("u")[0], options={"verify_signature": False})["jti"] for _ in range(5)}
    assert len(jtis) == 5


async def test_token_signed_by_the_older_key_verifies_after_rotation(tmp_path: Path) -> None:
    generate_key_file(tmp_path)
    before = _ring(tmp_path)
    old_token, _ = _issuer(before).issue("user-1")
    later = generate_key_file(tmp_path)
    os.utime(later, (datetime.now().timestamp() + 10,) * 2)
    after = _ring(tmp_path)
    assert after.signing.kid != before.signing.kid

    verifier = _verifier(after)
    assert (await verifier.verify(old_token)).user_id == "user-1"
    new_token, _ = _issuer(after).issue("user-2")
    assert jwt.get_unverified_header(new_token)["kid"] == after.signing.kid
    assert (await verifier.verify(new_token)).user_id == "user-2"


async def _reason(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(AuthenticationError) as caught:
        await verifier.verify(token)
    return str(caught.value.details["reason"])


async def test_expired_token_is_token_expired(tmp_path: Path) -> None:
    generate_key_file(tmp_path)
    ring = _ring(tmp_path)
    token, _ = _issuer(ring).issue("user-1", ttl_s=-5)
    with pytest.raises(TokenExpired) as caught:
        await _verifier(ring).verify(token)
    assert caught.value.code == "token_expired"
    assert caught.value.details["reason"] == "expired"


async def test_token_from_an_unpublished_key_is_unknown_key(tmp_path: Path) -> None:
    generate_key_file(tmp_path / "ours")
    generate_key_file(tmp_path / "theirs")
    foreign, _ = _issuer(_ring(tmp_path / "theirs")).issue("user-1")
    assert await _reason(_verifier(_ring(tmp_path / "ours")), foreign) == "unknown_key"


def _signed(ring: KeyRing, **overrides: Any) -> str:
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-1",
        "iat": now,
        "exp": now + timedelta(minutes=5),
        "jti": "j-1",
    }
    claims.update(overrides)
    claims = {name: value for name, value in claims.items() if value is not None}
    key = ring.signing
    return jwt.encode(claims, key.private_key, algorithm="ES256", headers={"kid": key.kid})


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        pytest.param({"aud": "someone-else"}, "audience_mismatch", id="audience"),
        pytest.param({"iss": "evil"}, "issuer_mismatch", id="issuer"),
        pytest.param({"jti": None}, "invalid", id="no-jti"),
        pytest.param({"sub": None}, "invalid", id="no-sub"),
    ],
)
async def test_claims_are_checked(tmp_path: Path, overrides: dict[str, Any], reason: str) -> None:
    generate_key_file(tmp_path)
    ring = _ring(tmp_path)
    assert await _reason(_verifier(ring), _signed(ring, **overrides)) == reason


async def test_tampered_payload_fails_the_signature(tmp_path: Path) -> None:
    generate_key_file(tmp_path)
    ring = _ring(tmp_path)
    token, _ = _issuer(ring).issue("user-1")
    header, _payload, signature = token.split(".")
    forged_payload = jwt.utils.base64url_encode(
        json.dumps({**jwt.decode(token, options={"verify_signature": False}), "sub": "admin"}).encode()
    ).decode()
    assert await _reason(_verifier(ring), f"{header}.{forged_payload}.{signature}") == "signature"


async def test_symmetric_and_unsigned_tokens_are_refused(tmp_path: Path) -> None:
    generate_key_file(tmp_path)
    ring = _ring(tmp_path)
    kid = ring.signing.kid
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "u", "exp": 4_000_000_000, "iat": 1, "jti": "j"}
    # HS256 keyed with the public key: the classic algorithm-confusion forgery.
    public_pem = ring.signing.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = b".".join(
        jwt.utils.base64url_encode(json.dumps(part).encode())
        for part in ({"alg": "HS256", "typ": "JWT", "kid": kid}, claims)
    )
    mac = hmac.new(public_pem, signing_input, hashlib.sha256).digest()
    hs256 = (signing_input + b"." + jwt.utils.base64url_encode(mac)).decode()
    unsigned = jwt.encode(claims, "", algorithm="none", headers={"kid": kid})
    verifier = _verifier(ring)
    assert await _reason(verifier, hs256) == "algorithm"
    assert await _reason(verifier, unsigned) == "algorithm"


async def test_garbage_is_malformed(tmp_path: Path) -> None:
    generate_key_file(tmp_path)
    assert await _reason(_verifier(_ring(tmp_path)), "not-a-jwt") == "malformed"


# ---- remote key source -----------------------------------------------------------------------------


class JwksServer:
    """A tiny real HTTP server publishing a JWKS that the test can change; counts the fetches."""

    def __init__(self) -> None:
        self.document: dict[str, Any] = {"keys": []}
        self.status = 200
        self.fetches = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.fetches += 1
                body = json.dumps(owner.document).encode()
                self.send_response(owner.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                return None

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._http.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}/auth/.well-known/jwks.json"

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def jwks_server() -> Iterator[JwksServer]:
    server = JwksServer()
    yield server
    server.close()


async def test_remote_source_verifies_tokens_against_the_fetched_jwks(
    tmp_path: Path, jwks_server: JwksServer
) -> None:
    generate_key_file(tmp_path)
    ring = _ring(tmp_path)
    jwks_server.document = ring.jwks()
    token, _ = _issuer(ring).issue("user-1")
    async with httpx.AsyncClient() as client:
        source = RemoteKeySource(jwks_server.url, client, ttl_s=300)
        verifier = TokenVerifier(source, issuer=ISSUER, audience=AUDIENCE)
        for _ in range(3):
            assert (await verifier.verify(token)).user_id == "user-1"
    assert jwks_server.fetches == 1  # cached, not fetched per token


async def test_remote_source_refetches_for_an_unknown_kid_but_not_in_a_burst(
    tmp_path: Path, jwks_server: JwksServer
) -> None:
    generate_key_file(tmp_path / "first")
    generate_key_file(tmp_path / "second")
    first, second = _ring(tmp_path / "first"), _ring(tmp_path / "second")
    jwks_server.document = first.jwks()
    async with httpx.AsyncClient() as client:
        source = RemoteKeySource(jwks_server.url, client, ttl_s=300)
        await source.check()
        assert await source.key_for(first.signing.kid) is not None
        # The auth service rotates: the new kid is published after our fetch.
        jwks_server.document = {"keys": first.jwks()["keys"] + second.jwks()["keys"]}
        for _ in range(5):  # a burst of unknown kids right after a fetch costs no extra fetches
            assert await source.key_for(second.signing.kid) is None
        assert jwks_server.fetches == 1
        await asyncio.sleep(2.1)
        assert await source.key_for(second.signing.kid) is not None
        assert jwks_server.fetches == 2
        assert await source.key_for(first.signing.kid) is not None
        assert jwks_server.fetches == 2


async def test_remote_source_refetches_after_its_ttl(tmp_path: Path, jwks_server: JwksServer) -> None:
    generate_key_file(tmp_path)
    ring = _ring(tmp_path)
    jwks_server.document = ring.jwks()
    async with httpx.AsyncClient() as client:
        source = RemoteKeySource(jwks_server.url, client, ttl_s=1)
        assert await source.key_for(ring.signing.kid) is not None
        jwks_server.document = {"keys": []}  # the key was retired
        await asyncio.sleep(1.1)
        assert await source.key_for(ring.signing.kid) is None
    assert jwks_server.fetches == 2


async def test_remote_source_check_names_the_unreachable_jwks(jwks_server: JwksServer) -> None:
    jwks_server.status = 500
    async with httpx.AsyncClient() as client:
        source = RemoteKeySource(jwks_server.url, client, ttl_s=300)
        with pytest.raises(ServiceUnavailable) as caught:
            await source.check()
        assert jwks_server.url in caught.value.message
        assert caught.value.details["dependency"] == "auth"

        jwks_server.document = {"unexpected": True}
        jwks_server.status = 200
        with pytest.raises(ServiceUnavailable):
            await source.check()

        jwks_server.close()
        with pytest.raises(ServiceUnavailable):
            await source.key_for("any")


async def test_remote_source_concurrent_lookups_share_one_fetch(
    tmp_path: Path, jwks_server: JwksServer
) -> None:
    generate_key_file(tmp_path)
    ring = _ring(tmp_path)
    jwks_server.document = ring.jwks()
    async with httpx.AsyncClient() as client:
        source = RemoteKeySource(jwks_server.url, client, ttl_s=300)
        keys = await asyncio.gather(*(source.key_for(ring.signing.kid) for _ in range(20)))
    assert all(key is not None for key in keys)
    assert jwks_server.fetches == 1


# ---- passwords -------------------------------------------------------------------------------------


async def test_password_hash_is_argon2id_and_verifies() -> None:
    hashed = await hash_password("correct-horse-1")
    assert hashed.startswith("$argon2id$")
    assert "m=19456,t=2,p=1" in hashed
    assert await verify_password(hashed, "correct-horse-1")
    assert not await verify_password(hashed, "correct-horse-2")
    assert await hash_password("correct-horse-1") != hashed  # salted


async def test_unknown_user_never_verifies() -> None:
    assert not await verify_password(None, "tokenwise-dummy-password")
    assert not await verify_password(None, "anything")


async def test_corrupt_stored_hash_does_not_verify() -> None:
    assert not await verify_password("not-an-argon2-hash", "correct-horse-1")


async def test_hashes_with_older_parameters_need_rehash() -> None:
    weaker = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash("correct-horse-1")
    assert needs_rehash(weaker)
    assert await verify_password(weaker, "correct-horse-1")
    assert not needs_rehash(await hash_password("correct-horse-1"))


async def test_remote_source_keeps_verifying_with_cached_keys_while_the_auth_service_is_down(
    tmp_path: Path, jwks_server: JwksServer
) -> None:
    generate_key_file(tmp_path)
    ring = _ring(tmp_path)
    jwks_server.document = ring.jwks()
    token, _ = _issuer(ring).issue("user-1")
    async with httpx.AsyncClient() as client:
        source = RemoteKeySource(jwks_server.url, client, ttl_s=1)
        verifier = TokenVerifier(source, issuer=ISSUER, audience=AUDIENCE)
        assert (await verifier.verify(token)).user_id == "user-1"
        jwks_server.status = 503
        await asyncio.sleep(1.1)
        for _ in range(5):  # past the TTL, the refetch fails once, then waits before trying again
            assert (await verifier.verify(token)).user_id == "user-1"
        assert jwks_server.fetches == 2
        with pytest.raises(ServiceUnavailable):
            await source.check()  # readiness still reports the outage
