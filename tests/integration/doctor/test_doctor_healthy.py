"""A healthy deployment: every layer passes and the doctor exits 0; without credentials it says so."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from support.clients import Account
from support.doctor import credentials, diagnose_now, layer_of, run_doctor
from support.live import LiveServer, ServerProcess
from support.servers import free_port
from tokenwise.cli import DEMO_EMAIL, DEMO_PASSWORD, app
from tokenwise.doctor import SCHEMA, Status

LAYER_KEYS = ["network", "tls", "http", "auth", "transit", "upgrade", "connection", "golden_path"]


def test_a_healthy_live_server_passes_every_layer(server: LiveServer, account: Account) -> None:
    report = diagnose_now(server.url, account)

    assert report.verdict.status == "healthy", report.verdict.summary
    assert report.verdict.exit_code == 0
    assert [layer.key for layer in report.layers] == LAYER_KEYS
    for layer in report.layers:
        expected = Status.SKIP if layer.key == "tls" else Status.PASS  # plain HTTP on loopback
        assert layer.status is expected, (layer.key, [c.to_json() for c in layer.checks])
    upgrade = {check.name: check for check in layer_of(report, "upgrade").checks}
    assert all(upgrade[m].status is Status.PASS for m in ("header", "subprotocol", "ticket", "first_message"))
    golden = {check.name: check for check in layer_of(report, "golden_path").checks}
    assert "identical to the stored run" in golden["resume"].summary
    assert golden["first_event"].evidence["ms"] > 0


@pytest.mark.slow
def test_the_cli_against_a_make_run_server_with_the_demo_user_is_healthy(tmp_path: Path) -> None:
    # `make run` = `tokenwise serve --demo-user`: a real process, the demo user, the doctor as a user runs it.
    process = ServerProcess(tmp_path, TOKENWISE_DEMO_USER="true").start()
    try:
        run = run_doctor(process.url, "--email", DEMO_EMAIL, "--password", DEMO_PASSWORD, "--idle", "2")
    finally:
        process.stop()

    assert run.exit_code == 0, run.report["verdict"]
    assert run.report["schema"] == SCHEMA
    assert run.verdict["status"] == "healthy"
    assert run.verdict["class"] is None
    assert [layer["key"] for layer in run.report["layers"]] == LAYER_KEYS
    assert all(layer["status"] in ("pass", "skip") for layer in run.report["layers"])
    assert run.check("connection", "idle")["evidence"]["idle_s"] == 2


def test_without_credentials_the_doctor_checks_what_it_can_and_says_incomplete(server: LiveServer) -> None:
    run = run_doctor(server.url, "--idle", "1")

    assert run.exit_code == 3
    assert run.verdict["status"] == "incomplete"
    assert run.check("upgrade", "unauthenticated")["status"] == "pass"
    assert run.layer("http")["status"] == "pass"
    for key in ("auth", "transit", "connection", "golden_path"):
        assert run.layer(key)["status"] == "skip", key
    assert "--email" in run.check("auth", "sign_in")["summary"]


def test_a_wrong_password_is_a_usage_error(server: LiveServer, account: Account) -> None:
    report = diagnose_now(server.url, email=account.email, password="not-the-password")

    assert report.verdict.fault is not None
    assert report.verdict.fault.value == "usage"
    assert report.verdict.exit_code == 2
    assert report.verdict.layer is not None
    assert report.verdict.layer.key == "auth"


def test_a_token_instead_of_a_password(server: LiveServer, account: Account) -> None:
    report = diagnose_now(server.url, token=account.access_token, idle_s=0)

    assert report.verdict.status == "healthy", report.verdict.summary
    assert layer_of(report, "auth").checks[0].summary == "--token given: not signing in"


def test_the_human_report_shows_every_layer_and_the_verdict(server: LiveServer, account: Account) -> None:
    result = CliRunner().invoke(_app(), ["doctor", server.url, *credentials(account), "--idle", "1"])

    assert result.exit_code == 0, result.output
    for title in (
        "DNS and TCP",
        "TLS",
        "HTTP",
        "Auth",
        "Header transit",
        "Upgrade",
        "Connection",
        "Golden path",
    ):
        assert title in result.output
    assert "✓" in result.output
    assert "HEALTHY" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--email", "a@example.com"], "--email and --password go together"),
        (["--token", "t", "--email", "a@example.com", "--password", "p"], "not both"),
        (["--ca", "/nonexistent/ca.pem"], "no such file"),
    ],
)
def test_usage_errors_exit_2(server: LiveServer, args: list[str], message: str) -> None:
    result = CliRunner().invoke(_app(), ["doctor", server.url, *args])

    assert result.exit_code == 2, result.output
    assert message in result.output


def test_a_url_that_is_not_http_is_a_usage_error() -> None:
    result = CliRunner().invoke(_app(), ["doctor", "ftp://example.com"])

    assert result.exit_code == 2
    assert "not an http" in result.output


def test_an_unreachable_port_is_infrastructure_at_layer_1() -> None:
    report = diagnose_now(f"http://127.0.0.1:{free_port()}", timeout_s=2)

    assert report.verdict.exit_code == 10
    assert report.verdict.layer is not None
    assert report.verdict.check is not None
    assert (report.verdict.layer.key, report.verdict.check.name) == ("network", "tcp")
    assert "connection refused" in report.verdict.summary


def _app() -> typer.Typer:
    import tokenwise.cli.doctor  # noqa: F401 - registers the command, as `tokenwise` does at start

    return app
