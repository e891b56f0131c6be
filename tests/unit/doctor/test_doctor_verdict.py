"""The verdict: the first failing check of the first failing layer, its class and exit code."""

from __future__ import annotations

import pytest

from tokenwise.doctor.model import Fault, Layer, failed, passed, skipped, warned
from tokenwise.doctor.target import TargetError, parse_target
from tokenwise.doctor.verdict import judge


def _layers() -> list[Layer]:
    return [
        Layer(1, "network", "DNS and TCP", [passed("dns", "ok")]),
        Layer(2, "tls", "TLS", [skipped("tls", "-")]),
    ]


def test_healthy_exits_0_even_with_warnings() -> None:
    layers = _layers()
    layers[0].add(warned("tcp", "slow", fix="faster"))
    verdict = judge(layers, credentials=True)
    assert (verdict.status, verdict.exit_code) == ("healthy", 0)
    assert verdict.warnings == ["1. DNS and TCP / tcp: slow"]


@pytest.mark.parametrize(
    ("fault", "code"),
    [(Fault.INFRASTRUCTURE, 10), (Fault.CONFIGURATION, 20), (Fault.APPLICATION, 30), (Fault.USAGE, 2)],
)
def test_the_first_failure_decides_the_class_and_exit_code(fault: Fault, code: int) -> None:
    layers = _layers()
    layers[1].add(failed("first", "the first failure", fault, "fix it"))
    layers.append(Layer(3, "http", "HTTP", [failed("later", "x", Fault.APPLICATION, "y")]))
    verdict = judge(layers, credentials=True)
    assert verdict.status == "failed"
    assert verdict.fault is fault
    assert verdict.exit_code == code
    assert verdict.layer is layers[1]
    assert verdict.check is not None
    assert verdict.check.name == "first"
    assert verdict.to_json()["layer_key"] == "tls"
    assert verdict.to_json()["fix"] == "fix it"


def test_without_credentials_and_no_failure_it_is_incomplete() -> None:
    verdict = judge(_layers(), credentials=False)
    assert (verdict.status, verdict.exit_code, verdict.fault) == ("incomplete", 3, None)


def test_layer_status_rolls_up_its_checks() -> None:
    layer = Layer(6, "upgrade", "Upgrade", [passed("a", ""), skipped("b", "")])
    assert layer.status.value == "pass"
    layer.add(warned("c", ""))
    assert layer.status.value == "warn"
    layer.add(failed("d", "", Fault.APPLICATION, ""))
    assert layer.status.value == "fail"
    assert Layer(7, "connection", "Connection", [skipped("x", "")]).status.value == "skip"


@pytest.mark.parametrize(
    ("url", "base", "port", "tls"),
    [
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000", 8000, False),
        ("https://tokenwise.example.com/", "https://tokenwise.example.com", 443, True),
        ("wss://tokenwise.example.com/ws", "https://tokenwise.example.com", 443, True),
        ("ws://host:9000/prefix/ws", "http://host:9000/prefix", 9000, False),
    ],
)
def test_urls(url: str, base: str, port: int, tls: bool) -> None:
    target = parse_target(url)
    assert (target.base_url, target.port, target.tls) == (base, port, tls)
    assert target.ws_url == base.replace("http", "ws", 1) + "/ws"


@pytest.mark.parametrize("url", ["ftp://x", "127.0.0.1:8000", "http://host/?q=1", "http://host:99999"])
def test_unusable_urls(url: str) -> None:
    with pytest.raises(TargetError):
        parse_target(url)
