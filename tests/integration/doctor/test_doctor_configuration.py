"""The auth role and the API role disagree (issuer, keys): the doctor says configuration and names it.

Real processes, as deployed: `--role auth` and `--role api` sharing a database, behind nginx routing
`/auth/` to the auth service and everything else to the API, so one URL serves both.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from support.clients import signup
from support.doctor import credentials, diagnose_now, run_doctor
from support.live import ServerProcess, spawn, wait_healthy
from support.nginx import Nginx

pytestmark = pytest.mark.slow


def test_an_issuer_mismatch_between_auth_and_api_is_configuration(
    tmp_path: Path, processes: list[ServerProcess], proxy: Callable[..., Nginx]
) -> None:
    auth = spawn(processes, tmp_path, "auth", TOKENWISE_JWT_ISSUER="https://auth.example")
    api = spawn(
        processes, tmp_path, "api", TOKENWISE_AUTH_URL=auth.url, TOKENWISE_JWT_ISSUER="https://api.example"
    )
    for process in (auth, api):
        wait_healthy(process.url)
    nginx = proxy({"/auth/": auth.url, "/": api.url})
    account = asyncio.run(signup(nginx.url))

    run = run_doctor(nginx.url, *credentials(account), "--idle", "1")

    assert run.exit_code == 20, run.verdict
    assert run.verdict["class"] == "configuration"
    assert run.verdict["layer_key"] == "auth"
    assert run.verdict["check"] == "api_accepts_token"
    assert run.verdict["evidence"]["reason"] == "issuer_mismatch"
    assert run.verdict["evidence"]["iss"] == "https://auth.example"
    assert "issuer_mismatch" in run.verdict["summary"]
    assert "TOKENWISE_JWT_ISSUER" in run.verdict["fix"]
    assert run.check("auth", "sign_in")["status"] == "pass"
    assert run.check("auth", "jwks")["status"] == "pass"


def test_an_api_verifying_against_another_auth_service_keys_is_configuration(
    tmp_path: Path, processes: list[ServerProcess], proxy: Callable[..., Nginx]
) -> None:
    # Two auth processes with their own keys; clients sign in at one, the API trusts the other.
    signing = spawn(processes, tmp_path, "auth", TOKENWISE_KEY_DIR=str(tmp_path / "keys-a"))
    other = spawn(processes, tmp_path, "auth", TOKENWISE_KEY_DIR=str(tmp_path / "keys-b"))
    api = spawn(processes, tmp_path, "api", TOKENWISE_AUTH_URL=other.url)
    for process in (signing, other, api):
        wait_healthy(process.url)
    nginx = proxy({"/auth/": signing.url, "/": api.url})
    account = asyncio.run(signup(nginx.url))

    report = diagnose_now(nginx.url, account, idle_s=1)

    assert report.verdict.exit_code == 20
    assert report.verdict.layer is not None
    assert report.verdict.layer.key == "auth"
    assert report.verdict.check is not None
    assert report.verdict.check.evidence["reason"] == "unknown_key"
    assert "unknown_key" in report.verdict.summary
    assert "TOKENWISE_AUTH_URL" in (report.verdict.fix or "")
