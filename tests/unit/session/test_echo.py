"""The echo of a request: everything the application received, credentials reduced to scheme and length."""

from __future__ import annotations

from tokenwise.session.echo import describe


def _echo(headers: list[tuple[str, str]], query: list[tuple[str, str]] | None = None) -> dict[str, object]:
    return describe(
        method="GET",
        path="/ws",
        scheme="ws",
        http_version="1.1",
        client="10.0.0.1:5000",
        headers=headers,
        query=query or [],
    )


def test_credentials_are_reported_by_scheme_and_length_only() -> None:
    echo = _echo(
        [
            ("Authorization", "Bearer abc.def.ghi"),
            ("Proxy-Authorization", "Basic dXNlcjpwYXNz"),
            ("Cookie", "a=1"),
            ("Cookie", "b=2"),
            ("Sec-WebSocket-Protocol", "jwt-auth, jwt.c2VjcmV0"),
        ],
        [("ticket", "tkt"), ("Token", "leaked"), ("page", "1")],
    )
    text = repr(echo)
    for secret in ("abc.def.ghi", "dXNlcjpwYXNz", "a=1", "c2VjcmV0", "tkt", "leaked"):
        assert secret not in text
    assert echo["credentials"] == {
        "authorization": {"present": True, "scheme": "Bearer", "length": 11},
        "cookie": {"present": True, "count": 2, "length": len("a=1; b=2")},
        "subprotocol_token": {"present": True, "length": 8},
        "ticket": {"present": True, "length": 3},
    }
    assert echo["subprotocols"] == ["jwt-auth", "jwt.[redacted]"]
    assert echo["headers"] == {
        "authorization": "[redacted]",
        "proxy-authorization": "[redacted]",
        "cookie": "[redacted]",
        "sec-websocket-protocol": "jwt-auth, jwt.[redacted]",
    }
    assert echo["query"] == {"ticket": "[redacted]", "Token": "[redacted]", "page": "1"}


def test_absent_credentials_and_proxy_headers() -> None:
    echo = _echo(
        [("Host", "a.example"), ("Via", "1.1 lb"), ("X-Forwarded-Proto", "https"), ("Upgrade", "websocket")]
    )
    assert echo["credentials"] == {
        "authorization": {"present": False},
        "cookie": {"present": False},
        "subprotocol_token": {"present": False},
        "ticket": {"present": False},
    }
    assert echo["proxy_headers"] == {"via": "1.1 lb", "x-forwarded-proto": "https"}
    assert echo["headers"]["upgrade"] == "websocket"  # type: ignore[index]
    assert echo["subprotocols"] == []


def test_a_credential_without_a_scheme_has_no_scheme() -> None:
    echo = _echo([("Authorization", "justatoken")])
    assert echo["credentials"]["authorization"] == {  # type: ignore[index]
        "present": True,
        "scheme": None,
        "length": len("justatoken"),
    }
