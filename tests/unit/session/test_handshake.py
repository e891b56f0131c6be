"""Which credential a handshake carries, and what is refused outright."""

from __future__ import annotations

import pytest

from tokenwise.errors import AuthenticationError
from tokenwise.session.handshake import Method, encode_subprotocol_token, read_credential

TOKEN = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln"


def test_bearer_header() -> None:
    credential = read_credential({"authorization": f"Bearer {TOKEN}"}, {})
    assert (credential.method, credential.secret) == (Method.HEADER, TOKEN)


@pytest.mark.parametrize("order", ["first", "last"])
def test_subprotocol_in_any_order(order: str) -> None:
    items = ["jwt-auth", encode_subprotocol_token(TOKEN), "other"]
    header = ", ".join(items if order == "first" else items[::-1])
    credential = read_credential({"sec-websocket-protocol": header}, {})
    assert (credential.method, credential.secret) == (Method.SUBPROTOCOL, TOKEN)


def test_ticket_and_first_message() -> None:
    assert read_credential({}, {"ticket": "abc"}).method is Method.TICKET
    assert read_credential({}, {}).method is Method.FIRST_MESSAGE


@pytest.mark.parametrize("key", ["token", "access_token", "jwt"])
def test_a_token_in_the_url_is_refused(key: str) -> None:
    with pytest.raises(AuthenticationError) as caught:
        read_credential({}, {key: TOKEN})
    assert caught.value.details["reason"] == "token_in_url"


@pytest.mark.parametrize(
    "headers",
    [
        {"authorization": "Basic dTpw"},
        {"authorization": "Bearer "},
        {"sec-websocket-protocol": encode_subprotocol_token(TOKEN)},  # without jwt-auth
        {"sec-websocket-protocol": "jwt-auth, jwt.%%%"},
    ],
)
def test_malformed_credentials_are_refused(headers: dict[str, str]) -> None:
    with pytest.raises(AuthenticationError):
        read_credential(headers, {})


@pytest.mark.parametrize("key", ["Token", "ACCESS_TOKEN", "Jwt"])
def test_a_token_in_the_url_is_refused_whatever_the_case(key: str) -> None:
    with pytest.raises(AuthenticationError):
        read_credential({}, {key: TOKEN})
