"""Signing keys: EC P-256 (ES256) private keys in PEM files, published as a JWKS.

Rotation: put a new key file beside the old one. The newest file signs (or `signing_kid`), and every file
is published, so tokens signed by the old key keep verifying until the old file is removed.

A generated key is written to a temporary file beside its final name (which `*.pem` does not match),
synced, then renamed: a full disk or a crash leaves either the whole key or no key file, never an empty
`.pem` that every later start would refuse.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

ALGORITHM = "ES256"


class KeyConfigurationError(RuntimeError):
    """The signing keys are missing or unusable; raised at start, never silently worked around."""


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: ec.EllipticCurvePrivateKey

    def public_jwk(self) -> dict[str, Any]:
        jwk: dict[str, Any] = json.loads(ECAlgorithm.to_jwk(self.private_key.public_key()))
        return {**jwk, "kid": self.kid, "use": "sig", "alg": ALGORITHM}


def _kid_for(key: ec.EllipticCurvePrivateKey) -> str:
    # A thumbprint of the public key: the same key always has the same kid, on every replica.
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()[:16]


def _load(path: Path) -> SigningKey:
    pem = path.read_bytes()
    # An empty or cut-off file is what an interrupted copy (or a key written before writes were atomic)
    # leaves: say so, and what to do, rather than the PEM parser's generic complaint.
    remedy = "restore the key, or remove the file (a new key is generated only in development)"
    if not pem.strip():
        raise KeyConfigurationError(f"{path}: the key file is empty (0 bytes of key); {remedy}")
    if pem.lstrip().startswith(b"-----BEGIN") and b"-----END" not in pem:
        raise KeyConfigurationError(
            f"{path}: the key file is truncated ({len(pem)} bytes, no END line); {remedy}"
        )
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyConfigurationError(f"{path}: not an unencrypted PEM private key ({exc})") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise KeyConfigurationError(f"{path}: expected an EC P-256 private key for ES256")
    return SigningKey(kid=_kid_for(key), private_key=key)


def generate_key_file(directory: Path) -> Path:
    """Write a new P-256 private key into `directory` (mode 0600), atomically, and return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    path = directory / f"signing-{_kid_for(key)}.pem"
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write_atomically(path, pem)
    return path


def _write_atomically(path: Path, data: bytes) -> None:
    # mkstemp creates the file 0600: the key is never readable by others, not even for a moment.
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    # The rename is durable only once the directory is synced too.
    directory_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory_fd)
    finally:
        os.close(directory_fd)


class KeyRing:
    """The live signing keys: one signs, all are published."""

    def __init__(self, keys: list[SigningKey], signing_kid: str | None = None) -> None:
        if not keys:
            raise KeyConfigurationError("no signing keys")
        self.keys = keys
        by_kid = {key.kid: key for key in keys}
        if signing_kid is not None and signing_kid not in by_kid:
            raise KeyConfigurationError(f"signing_kid {signing_kid!r} is not among the keys {sorted(by_kid)}")
        self.signing = by_kid[signing_kid] if signing_kid else keys[-1]

    @classmethod
    def from_directory(cls, directory: Path, *, generate: bool, signing_kid: str | None = None) -> KeyRing:
        """Load `*.pem` from `directory`, oldest first; generate one when allowed and none exist."""
        files = (
            sorted(directory.glob("*.pem"), key=lambda p: (p.stat().st_mtime, p.name))
            if directory.is_dir()
            else []
        )
        if not files:
            if not generate:
                raise KeyConfigurationError(
                    f"no signing keys in {directory}: set TOKENWISE_KEY_DIR to a directory of EC P-256 "
                    "PEM keys (keys are generated automatically only in development)"
                )
            try:
                files = [generate_key_file(directory)]
            except OSError as exc:
                raise KeyConfigurationError(
                    f"cannot write a development signing key into {directory}: {exc.strerror or exc}"
                    f"{f' ({exc.filename})' if exc.filename else ''}; check the path, its permissions and "
                    "the free space"
                ) from exc
        return cls([_load(path) for path in files], signing_kid)

    def jwks(self) -> dict[str, Any]:
        """The public keys as a JSON Web Key Set."""
        return {"keys": [key.public_jwk() for key in self.keys]}
