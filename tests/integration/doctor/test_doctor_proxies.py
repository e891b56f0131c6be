"""nginx in front of the real server: a correct WebSocket proxy, and three broken ones the doctor names."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from support.clients import Account
from support.doctor import credentials, run_doctor
from support.live import LiveServer
from support.nginx import Nginx, Proxy

pytestmark = pytest.mark.slow
StartProxy = Callable[..., Nginx]


def test_a_correct_websocket_proxy_is_healthy(
    server: LiveServer, account: Account, proxy: StartProxy
) -> None:
    nginx = proxy({"/": server.url})

    run = run_doctor(nginx.url, *credentials(account), "--idle", "2")

    assert run.exit_code == 0, run.verdict
    assert run.verdict["status"] == "healthy"
    # The proxy is seen on the way, in the response and in what the application received.
    assert run.check("http", "proxies")["evidence"]["headers"]["server"].startswith("nginx")
    assert "x-forwarded-for" in run.check("transit", "http_echo")["evidence"]["proxy_headers"]
    received = run.check("transit", "websocket_echo")["evidence"]["received"]
    assert received["upgrade"] == "websocket"
    assert received["connection"] == "upgrade"


def test_a_proxy_that_drops_upgrade_and_connection_is_infrastructure(
    server: LiveServer, account: Account, proxy: StartProxy
) -> None:
    nginx = proxy({"/": server.url}, Proxy(upgrade=False))

    run = run_doctor(nginx.url, *credentials(account), "--idle", "2")

    assert run.exit_code == 10, run.verdict
    assert run.verdict["class"] == "infrastructure"
    assert run.verdict["layer_key"] == "transit"
    assert run.verdict["check"] == "websocket_echo"
    assert run.verdict["evidence"]["stripped"] == ["Upgrade", "Connection"]
    assert "Upgrade and Connection" in run.verdict["summary"]
    assert "proxy_http_version 1.1" in run.verdict["fix"]
    # The upgrade fails for every credential method, with the HTTP status of the refusal.
    for method in ("header", "subprotocol", "ticket", "first_message"):
        check = run.check("upgrade", method)
        assert check["status"] == "fail", method
        assert check["evidence"]["status"] == 404, check
    assert run.check("upgrade", "unauthenticated")["status"] == "fail"
    assert run.layer("connection")["status"] == "skip"


def test_a_proxy_that_strips_authorization_is_infrastructure_and_names_the_header(
    server: LiveServer, account: Account, proxy: StartProxy
) -> None:
    nginx = proxy({"/": server.url}, Proxy(strip=("Authorization",)))

    run = run_doctor(nginx.url, *credentials(account), "--idle", "2")

    assert run.exit_code == 10, run.verdict
    assert run.verdict["class"] == "infrastructure"
    assert run.verdict["layer_key"] == "transit"
    assert run.verdict["evidence"]["stripped"] == ["Authorization"]
    assert "Authorization" in run.verdict["summary"]
    # Auth itself is not blamed: the API never saw the header.
    assert run.check("auth", "api_accepts_token")["status"] == "warn"
    # Which credential methods survive this proxy, and why the header method does not.
    header = run.check("upgrade", "header")
    assert header["status"] == "fail"
    assert header["evidence"]["waited_for_first_message_auth"] is True
    assert "Authorization header did not arrive" in header["summary"]
    for method in ("subprotocol", "first_message"):
        assert run.check("upgrade", method)["status"] == "pass", method
    # The rest of the way works over a method that survives.
    assert run.check("connection", "welcome")["evidence"]["method"] == "subprotocol"
    assert run.layer("golden_path")["status"] == "pass"


def test_a_proxy_with_a_short_read_timeout_cuts_idle_connections(
    server: LiveServer, account: Account, proxy: StartProxy
) -> None:
    nginx = proxy({"/": server.url}, Proxy(read_timeout_s=5))

    run = run_doctor(nginx.url, *credentials(account), "--idle", "8")

    assert run.exit_code == 10, run.verdict
    assert run.verdict["class"] == "infrastructure"
    assert run.verdict["layer_key"] == "connection"
    assert run.verdict["check"] == "idle"
    evidence = run.verdict["evidence"]
    assert 4.5 <= evidence["cut_after_s"] <= 6.5, evidence
    assert evidence["close_code"] == 1006  # no close frame: the proxy, not the server
    assert "proxy_read_timeout" in run.verdict["fix"]
