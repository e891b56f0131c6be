"""Certificates made in the test with `trustme`: a private CA and a server certificate from it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import trustme


@dataclass(frozen=True)
class Certificates:
    ca: Path  # the CA certificate (PEM): what `tokenwise doctor --ca` trusts
    server: Path  # the server's private key and certificate chain (PEM): uvicorn's `ssl_certfile`


def make_certificates(directory: Path, *names: str, expired: bool = False) -> Certificates:
    """A fresh CA and a certificate for `names` (host names or IP addresses); `expired` ended yesterday."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="Tokenwise test CA")
    now = datetime.now(UTC)
    leaf = ca.issue_cert(
        *names,
        not_before=now - timedelta(days=30) if expired else None,
        not_after=now - timedelta(days=1) if expired else None,
    )
    paths = Certificates(directory / "ca.pem", directory / "server.pem")
    ca.cert_pem.write_to_path(str(paths.ca))
    leaf.private_key_and_cert_chain_pem.write_to_path(str(paths.server))
    return paths
