"""TLS with certificates made in the test (trustme), served by uvicorn: valid, wrong name, expired."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.clients import signup
from support.doctor import diagnose_now, layer_of, run_doctor
from support.live import LiveServer, test_settings
from support.servers import free_port
from support.tls import Certificates, make_certificates
from tokenwise.doctor import Status


def _serve(tmp_path: Path, *names: str, expired: bool = False) -> tuple[LiveServer, Certificates]:
    """uvicorn serving https with a fresh certificate for `names`; its public URL is the https one."""
    certs = make_certificates(tmp_path / "certs", *names, expired=expired)
    port = free_port()
    settings = test_settings(tmp_path / "server", port=port, public_url=f"https://127.0.0.1:{port}")
    return LiveServer(settings, ssl_certfile=certs.server).start(), certs


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[LiveServer, Certificates]]:
    live, certs = _serve(tmp_path, "127.0.0.1", "localhost")
    yield live, certs
    live.stop()


def test_a_valid_certificate_from_a_private_ca_passes_with_ca(
    tls_server: tuple[LiveServer, Certificates],
) -> None:
    live, certs = tls_server
    assert live.url.startswith("https://")
    account = asyncio.run(signup(live.url, ca=certs.ca))

    report = diagnose_now(live.url, account, ca_file=certs.ca)

    assert report.verdict.status == "healthy", report.verdict.summary
    tls = {check.name: check for check in layer_of(report, "tls").checks}
    assert tls["certificate"].status is Status.PASS
    assert tls["protocol"].evidence["protocol"] in ("TLSv1.2", "TLSv1.3")
    assert tls["expiry"].status is Status.PASS
    # wss:// all the way: every credential method and the golden path over TLS.
    assert layer_of(report, "upgrade").status is Status.PASS
    assert layer_of(report, "golden_path").status is Status.PASS


def test_the_same_certificate_without_ca_is_an_untrusted_chain(
    tls_server: tuple[LiveServer, Certificates],
) -> None:
    live, _certs = tls_server

    report = diagnose_now(live.url)

    assert report.verdict.exit_code == 10
    assert report.verdict.layer is not None
    assert report.verdict.layer.key == "tls"
    assert report.verdict.check is not None
    assert report.verdict.check.name == "chain"
    assert "--ca" in (report.verdict.fix or "")


def test_a_certificate_for_another_name_is_infrastructure_at_the_tls_layer(tmp_path: Path) -> None:
    live, certs = _serve(tmp_path, "tokenwise.example")
    try:
        run = run_doctor(live.url, "--ca", str(certs.ca), "--idle", "1")
    finally:
        live.stop()

    assert run.exit_code == 10, run.verdict
    assert run.verdict["class"] == "infrastructure"
    assert run.verdict["layer_key"] == "tls"
    assert run.verdict["check"] == "hostname"
    assert run.verdict["evidence"]["names"] == ["tokenwise.example"]
    assert "127.0.0.1" in run.verdict["summary"]
    assert all(layer["status"] == "skip" for layer in run.report["layers"][2:])


def test_an_expired_certificate_is_infrastructure_at_the_tls_layer(tmp_path: Path) -> None:
    live, certs = _serve(tmp_path, "127.0.0.1", expired=True)
    try:
        report = diagnose_now(live.url, ca_file=certs.ca)
    finally:
        live.stop()

    assert report.verdict.exit_code == 10
    assert report.verdict.layer is not None
    assert report.verdict.layer.key == "tls"
    assert report.verdict.check is not None
    assert report.verdict.check.name == "expiry"
    assert "expired" in report.verdict.summary
    assert report.verdict.check.evidence["verify_message"] == "certificate has expired"
