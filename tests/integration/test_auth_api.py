"""The auth service over real HTTP: register, sign in, rotating refresh, sign out, JWKS, key rotation."""

from __future__ import annotations

import os
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from support.clients import signup
from support.live import LiveServer, test_settings
from tokenwise.app import create_app
from tokenwise.security.keys import KeyConfigurationError, generate_key_file
from tokenwise.services.container import Services


def _email() -> str:
    return f"auth-{uuid.uuid4().hex[:10]}@example.com"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    return error


@pytest.fixture
async def http(server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        yield client


# ---- register --------------------------------------------------------------------------------------


async def test_register_returns_the_new_user(http: httpx.AsyncClient) -> None:
    email = _email()
    response = await http.post(
        "/auth/register", json={"email": email, "password": "long-enough", "name": "Ada"}
    )
    assert response.status_code == 201, response.text
    user = response.json()["user"]
    assert set(user) == {"id", "email", "name"}
    assert user["email"] == email
    assert user["name"] == "Ada"
    assert user["id"]
    assert "password" not in response.text


async def test_register_twice_with_the_same_email_conflicts(http: httpx.AsyncClient) -> None:
    email = _email()
    assert (
        await http.post("/auth/register", json={"email": email, "password": "long-enough"})
    ).status_code == 201
    again = await http.post("/auth/register", json={"email": email.upper(), "password": "other-password"})
    assert _error(again, 409, "conflict")["field"] == "email"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"email": "weak@example.com", "password": "1234567"}, "password", id="short-password"),
        pytest.param({"email": "not-an-email", "password": "long-enough"}, "email", id="invalid-email"),
        pytest.param({"password": "long-enough"}, "email", id="missing-email"),
    ],
)
async def test_register_rejects_bad_input_naming_the_field(
    http: httpx.AsyncClient, body: dict[str, str], field: str
) -> None:
    response = await http.post("/auth/register", json=body)
    assert _error(response, 422, "invalid_input")["field"] == field


# ---- login -----------------------------------------------------------------------------------------


async def test_login_returns_a_bearer_token_pair(http: httpx.AsyncClient, server: LiveServer) -> None:
    email = _email()
    created = (await http.post("/auth/register", json={"email": email, "password": "long-enough"})).json()
    response = await http.post("/auth/login", json={"email": email, "password": "long-enough"})
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == server.settings.access_token_ttl_s
    assert body["user"] == created["user"]
    assert body["access_token"].count(".") == 2
    assert body["refresh_token"]
    assert body["refresh_token"] != body["access_token"]


async def test_unknown_email_and_wrong_password_fail_alike(http: httpx.AsyncClient) -> None:
    account = await signup(str(http.base_url))

    async def attempt(email: str) -> tuple[int, Any, float]:
        started = time.perf_counter()
        response = await http.post("/auth/login", json={"email": email, "password": "wrong-password"})
        return response.status_code, response.json(), time.perf_counter() - started

    unknown = [await attempt(_email()) for _ in range(5)]
    wrong = [await attempt(account.email) for _ in range(5)]
    bodies = {(status, str(body)) for status, body, _ in unknown + wrong}
    assert len(bodies) == 1, bodies
    status, body, _ = unknown[0]
    assert status == 401
    assert body["error"]["code"] == "invalid_credentials"
    # Same work either way (a dummy hash is verified for unknown emails): loosely the same time.
    unknown_median = statistics.median(t for *_, t in unknown)
    wrong_median = statistics.median(t for *_, t in wrong)
    assert 1 / 3 < unknown_median / wrong_median < 3, (unknown_median, wrong_median)


async def test_login_email_is_case_insensitive(http: httpx.AsyncClient) -> None:
    account = await signup(str(http.base_url))
    response = await http.post(
        "/auth/login", json={"email": account.email.upper(), "password": account.password}
    )
    assert response.status_code == 200, response.text
    assert response.json()["user"]["id"] == account.user_id


# ---- me --------------------------------------------------------------------------------------------


async def test_me_with_a_bearer_token_returns_the_user(http: httpx.AsyncClient) -> None:
    account = await signup(str(http.base_url))
    response = await http.get("/auth/me", headers=_bearer(account.access_token))
    assert response.status_code == 200, response.text
    assert response.json()["user"] == {"id": account.user_id, "email": account.email, "name": None}


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-header"),
        pytest.param({"Authorization": "Basic dXNlcjpwYXNz"}, id="basic"),
        pytest.param({"Authorization": "Bearer not-a-jwt"}, id="garbage"),
    ],
)
async def test_me_without_a_valid_token_is_401(http: httpx.AsyncClient, headers: dict[str, str]) -> None:
    response = await http.get("/auth/me", headers=headers)
    _error(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"] == "Bearer"


async def test_me_with_an_expired_token_is_token_expired(http: httpx.AsyncClient, server: LiveServer) -> None:
    account = await signup(str(http.base_url))
    expired, _ = server.services.issuer.issue(account.user_id, ttl_s=-5)
    _error(await http.get("/auth/me", headers=_bearer(expired)), 401, "token_expired")


# ---- refresh and logout ----------------------------------------------------------------------------


async def _refresh(http: httpx.AsyncClient, refresh_token: str) -> httpx.Response:
    return await http.post("/auth/refresh", json={"refresh_token": refresh_token})


async def test_refresh_returns_a_new_pair_and_rotates(http: httpx.AsyncClient) -> None:
    account = await signup(str(http.base_url))
    response = await _refresh(http, account.refresh_token)
    assert response.status_code == 200, response.text
    pair = response.json()
    assert pair["token_type"] == "Bearer"
    assert pair["user"]["id"] == account.user_id
    assert pair["refresh_token"] != account.refresh_token
    assert pair["access_token"] != account.access_token
    me = await http.get("/auth/me", headers=_bearer(pair["access_token"]))
    assert me.json()["user"]["id"] == account.user_id
    # The rotated token can be refreshed in turn.
    assert (await _refresh(http, pair["refresh_token"])).status_code == 200


async def test_reusing_a_rotated_refresh_token_revokes_the_family(http: httpx.AsyncClient) -> None:
    account = await signup(str(http.base_url))
    newest = (await _refresh(http, account.refresh_token)).json()["refresh_token"]
    other_session = (
        await http.post("/auth/login", json={"email": account.email, "password": account.password})
    ).json()["refresh_token"]

    reused = await _refresh(http, account.refresh_token)
    assert _error(reused, 401, "unauthenticated")["reason"] == "refresh_reused"
    # The thief's (or the victim's) newest token is dead too: the whole family is revoked.
    _error(await _refresh(http, newest), 401, "unauthenticated")
    _error(await _refresh(http, account.refresh_token), 401, "unauthenticated")
    # Another sign-in is another family, untouched.
    assert (await _refresh(http, other_session)).status_code == 200


async def test_logout_revokes_the_refresh_family(http: httpx.AsyncClient) -> None:
    account = await signup(str(http.base_url))
    newest = (await _refresh(http, account.refresh_token)).json()["refresh_token"]
    response = await http.post("/auth/logout", json={"refresh_token": newest})
    assert response.status_code == 204
    _error(await _refresh(http, newest), 401, "unauthenticated")


async def test_unknown_refresh_token_is_401(http: httpx.AsyncClient) -> None:
    _error(await _refresh(http, "never-issued"), 401, "unauthenticated")
    _error(await http.post("/auth/refresh", json={}), 422, "invalid_input")


# ---- JWKS ------------------------------------------------------------------------------------------


async def test_jwks_publishes_the_key_that_signs_access_tokens(
    http: httpx.AsyncClient, server: LiveServer
) -> None:
    account = await signup(str(http.base_url))
    response = await http.get("/auth/.well-known/jwks.json")
    assert response.status_code == 200
    keys = {jwk["kid"]: jwk for jwk in response.json()["keys"]}
    header = jwt.get_unverified_header(account.access_token)
    assert header["alg"] == "ES256"
    jwk = keys[header["kid"]]
    assert jwk["alg"] == "ES256"
    assert jwk["kty"] == "EC"
    assert "d" not in jwk

    claims = jwt.decode(
        account.access_token,
        jwt.PyJWK(jwk).key,
        algorithms=["ES256"],
        audience=server.settings.jwt_audience,
        issuer=server.settings.jwt_issuer,
    )
    assert {"iss", "aud", "sub", "exp", "iat", "jti"} <= claims.keys()
    assert claims["sub"] == account.user_id
    assert claims["exp"] - claims["iat"] == server.settings.access_token_ttl_s


async def test_both_keys_are_published_during_rotation_and_old_tokens_still_verify(
    start_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    key_dir = tmp_path / "keys"
    old_key = generate_key_file(key_dir)
    os.utime(old_key, (time.time() - 3600,) * 2)
    data_dir = tmp_path / "data"
    before = start_server(key_dir=key_dir, data_dir=data_dir)
    account = await signup(before.url)
    old_kid = jwt.get_unverified_header(account.access_token)["kid"]
    assert old_key.name == f"signing-{old_kid}.pem"

    generate_key_file(key_dir)  # rotation: the new file is the newest, so it signs
    after = start_server(key_dir=key_dir, data_dir=data_dir)
    async with httpx.AsyncClient(base_url=after.url, timeout=30) as http:
        kids = [jwk["kid"] for jwk in (await http.get("/auth/.well-known/jwks.json")).json()["keys"]]
        assert len(kids) == 2
        assert old_kid in kids
        login = await http.post("/auth/login", json={"email": account.email, "password": account.password})
        new_kid = jwt.get_unverified_header(login.json()["access_token"])["kid"]
        assert new_kid != old_kid
        assert new_kid in kids
        for token in (account.access_token, login.json()["access_token"]):
            me = await http.get("/auth/me", headers=_bearer(token))
            assert me.status_code == 200, me.text
            assert me.json()["user"]["id"] == account.user_id


# ---- key configuration at start --------------------------------------------------------------------


def test_production_with_no_keys_fails_at_start(tmp_path: Path) -> None:
    empty = tmp_path / "keys"
    empty.mkdir()
    settings = test_settings(tmp_path, environment="production", key_dir=empty)
    with pytest.raises(KeyConfigurationError, match="no signing keys"):
        create_app(settings)
    with pytest.raises(KeyConfigurationError):
        Services.build(settings)
    assert list(empty.iterdir()) == []  # nothing generated behind the operator's back


def test_production_with_configured_keys_starts_with_them(tmp_path: Path) -> None:
    key_file = generate_key_file(tmp_path / "keys")
    settings = test_settings(tmp_path, environment="production", key_dir=tmp_path / "keys")
    services = create_app(settings).state.services
    assert [f"signing-{key.kid}.pem" for key in services.keyring.keys] == [key_file.name]


def test_development_generates_keys_on_first_start(tmp_path: Path) -> None:
    services = create_app(test_settings(tmp_path)).state.services
    generated = list((tmp_path / "keys").glob("*.pem"))
    assert [path.name for path in generated] == [f"signing-{services.keyring.signing.kid}.pem"]
