"""Admin keys at rest: Fernet from the setting (rotatable) or a key file generated once in development."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from tokenwise.errors import ServiceUnavailable
from tokenwise.security.secretbox import KEY_FILE, SecretBox, UndecryptableSecret


def test_a_generated_key_is_written_once_and_reused(tmp_path: Path) -> None:
    box = SecretBox.configured(None, tmp_path / "keys", generate=True)
    token = box.encrypt("sk-admin-secret")
    assert "sk-admin-secret" not in token
    assert (tmp_path / "keys" / KEY_FILE).stat().st_mode & 0o777 == 0o600
    again = SecretBox.configured(None, tmp_path / "keys", generate=False)
    assert again.decrypt(token) == "sk-admin-secret"


def test_the_setting_wins_and_rotates(tmp_path: Path) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    token = SecretBox.configured(old, tmp_path, generate=True).encrypt("k1")
    assert not (tmp_path / KEY_FILE).exists()
    rotated = SecretBox.configured(f"{new}, {old}", tmp_path, generate=False)
    assert rotated.decrypt(token) == "k1"
    with pytest.raises(UndecryptableSecret):
        SecretBox.configured(new, tmp_path, generate=False).decrypt(token)
    with pytest.raises(ValueError, match="TOKENWISE_CONNECTOR_KEY"):
        SecretBox.configured("not-a-key", tmp_path, generate=False)


def test_without_a_key_in_production_the_box_refuses(tmp_path: Path) -> None:
    box = SecretBox.configured(None, tmp_path, generate=False)
    assert not box.available
    with pytest.raises(ServiceUnavailable, match="TOKENWISE_CONNECTOR_KEY"):
        box.encrypt("k")
    with pytest.raises(ServiceUnavailable):
        box.require()
