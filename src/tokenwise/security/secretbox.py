"""Secrets the server must use again later (connectors' admin keys), encrypted at rest with Fernet.

The Fernet key comes from `TOKENWISE_CONNECTOR_KEY` (several, comma-separated: the first encrypts, every
one decrypts, so a key can be rotated); without it a key is generated once into `data_dir/keys/` in
development, and the box is unavailable in production until one is configured.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from tokenwise.errors import ServiceUnavailable

KEY_FILE = "connector.fernet"


class UndecryptableSecret(Exception):
    """A stored secret was encrypted with a key this server no longer has."""


class SecretBox:
    """Encrypt and decrypt short secrets; `None` keys: every use raises ServiceUnavailable."""

    def __init__(self, keys: list[bytes] | None) -> None:
        self._fernet = MultiFernet([Fernet(key) for key in keys]) if keys else None

    @classmethod
    def configured(cls, setting: str | None, key_dir: Path, *, generate: bool) -> SecretBox:
        """The box of the setting's keys, else of the key file in `key_dir` (written when `generate`)."""
        if setting:
            try:
                return cls([part.strip().encode() for part in setting.split(",") if part.strip()])
            except ValueError as exc:
                raise ValueError(
                    "TOKENWISE_CONNECTOR_KEY: expected Fernet keys (32 url-safe base64-encoded bytes)"
                ) from exc
        path = key_dir / KEY_FILE
        if path.exists():
            return cls([path.read_bytes().strip()])
        if not generate:
            return cls(None)
        key_dir.mkdir(parents=True, exist_ok=True)
        # Several processes may start at once on one data dir: the key is written whole to a file of
        # its own, then linked into place; whoever links first wins, the others read the winner's.
        staged = key_dir / f".{KEY_FILE}.{os.getpid()}.{os.urandom(4).hex()}"
        fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(Fernet.generate_key())
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(staged, path)
        except FileExistsError:
            pass
        finally:
            staged.unlink()
        return cls([path.read_bytes().strip()])

    @property
    def available(self) -> bool:
        return self._fernet is not None

    def require(self) -> None:
        """Raise ServiceUnavailable unless a key is configured."""
        self._box()

    def _box(self) -> MultiFernet:
        if self._fernet is None:
            raise ServiceUnavailable(
                "connectors need TOKENWISE_CONNECTOR_KEY (a Fernet key) to store admin keys encrypted",
                dependency="connector_key",
            )
        return self._fernet

    def encrypt(self, secret: str) -> str:
        return self._box().encrypt(secret.encode()).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._box().decrypt(token.encode("ascii")).decode()
        except InvalidToken as exc:
            raise UndecryptableSecret from exc
