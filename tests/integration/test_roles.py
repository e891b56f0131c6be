"""`--role auth` and `--role api` as two real processes: tokens cross between them through the JWKS only."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import jwt
import pytest
from websockets.exceptions import InvalidStatus

from support.clients import collect_run, open_ws, send_message, signup
from support.live import ServerProcess, spawn, wait_healthy
from support.servers import RedisServer
from tokenwise.security.keys import generate_key_file
from tokenwise.session.contract import missing_critical, violations

pytestmark = pytest.mark.slow

# The API refetches the JWKS for an unknown kid at most this often (security/keysource.py).
_JWKS_REFETCH_S = 2.0


def _healthy(*processes: ServerProcess) -> None:
    for process in processes:
        wait_healthy(process.url)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.redis
async def test_api_process_verifies_auth_process_tokens_and_serves_a_full_run(
    tmp_path: Path, processes: list[ServerProcess], redis_server: RedisServer
) -> None:
    auth = spawn(processes, tmp_path, "auth")
    # The API executes no runs itself: a worker does, and its events reach the API over Redis.
    bus = {"TOKENWISE_BUS_URL": redis_server.url}
    api = spawn(processes, tmp_path, "api", TOKENWISE_AUTH_URL=auth.url, **bus)
    worker = spawn(processes, tmp_path, "worker", **bus)
    _healthy(auth, api, worker)

    async with httpx.AsyncClient(timeout=10) as http:
        # Each process serves only its own role's routes.
        assert (await http.get(f"{auth.url}/health")).json()["role"] == "auth"
        assert (await http.get(f"{api.url}/health")).json()["role"] == "api"
        assert (await http.get(f"{worker.url}/health")).json()["role"] == "worker"
        assert (await http.get(f"{worker.url}/api/agents")).status_code == 404
        assert (await http.get(f"{worker.url}/health/ready")).json()["checks"]["worker"]["status"] == "ok"
        assert (await http.post(f"{api.url}/auth/login", json={})).status_code == 404
        assert (await http.get(f"{auth.url}/api/agents")).status_code == 404
        ready = await http.get(f"{api.url}/health/ready")
        assert ready.status_code == 200, ready.text
        assert ready.json()["failing"] == []

    account = await signup(auth.url)
    ws, welcome = await open_ws(api.ws_url, account.access_token)
    async with ws:
        assert welcome["user_id"] == account.user_id
        ack = await send_message(ws, "Where does our LLM spend go?", client_message_id="roles-1")
        events = await collect_run(ws, ack["run_id"])
    assert violations(events) == []
    assert missing_critical(events) == []
    assert events[-1]["type"] == "agent_completed"

    # A ticket is issued and redeemed by the API alone (the auth process is not involved).
    ws, welcome = await open_ws(api.ws_url, account.access_token, "ticket", base_url=api.url)
    async with ws:
        assert welcome["user_id"] == account.user_id

    async with httpx.AsyncClient(base_url=api.url, timeout=10) as http:
        run = await http.get(f"/api/runs/{ack['run_id']}", headers=_bearer(account.access_token))
        assert run.status_code == 200, run.text
        assert run.json()["status"] == "completed"
        stored = await http.get(f"/api/runs/{ack['run_id']}/events", headers=_bearer(account.access_token))
        assert stored.json()["events"] == events
    for process in processes:
        assert "Traceback" not in process.log()


async def test_api_readiness_names_the_unreachable_auth_service_until_it_is_back(
    tmp_path: Path, processes: list[ServerProcess]
) -> None:
    auth = spawn(processes, tmp_path, "auth")
    _healthy(auth)
    account = await signup(auth.url)
    auth.stop()  # the auth service is down: its port refuses connections
    api = spawn(processes, tmp_path, "api", TOKENWISE_AUTH_URL=auth.url)
    _healthy(api)

    async with httpx.AsyncClient(base_url=api.url, timeout=10) as http:
        ready = await http.get("/health/ready")
        assert ready.status_code == 503, ready.text
        body = ready.json()
        assert body["failing"] == ["auth"]
        assert body["checks"]["auth"]["issuer_url"] == auth.url
        assert auth.url in body["checks"]["auth"]["message"]
        assert body["checks"]["database"]["status"] == "ok"
        # A request that needs the keys is a 503 (a dependency is down), not a 401 (the token is fine).
        threads = await http.get("/api/threads", headers=_bearer(account.access_token))
        assert threads.status_code == 503, threads.text
        assert threads.json()["error"]["code"] == "service_unavailable"
        assert "Retry-After" in threads.headers

    with pytest.raises(InvalidStatus) as denied:
        await open_ws(api.ws_url, account.access_token)
    assert denied.value.response.status_code == 503

    auth.start()  # same port, same data directory, same key; start() waits until it is healthy
    async with httpx.AsyncClient(base_url=api.url, timeout=10) as http:
        ready = await http.get("/health/ready")
        assert ready.status_code == 200, ready.text
        threads = await http.get("/api/threads", headers=_bearer(account.access_token))
        assert threads.status_code == 200, threads.text
    ws, welcome = await open_ws(api.ws_url, account.access_token)
    async with ws:
        assert welcome["user_id"] == account.user_id


async def test_api_rejects_tokens_whose_issuer_or_audience_it_does_not_expect(
    tmp_path: Path, processes: list[ServerProcess]
) -> None:
    auth = spawn(
        processes,
        tmp_path,
        "auth",
        TOKENWISE_JWT_ISSUER="issuer-of-auth",
        TOKENWISE_JWT_AUDIENCE="audience-of-auth",
    )
    other_issuer = spawn(
        processes,
        tmp_path,
        "api",
        TOKENWISE_AUTH_URL=auth.url,
        TOKENWISE_JWT_ISSUER="issuer-of-api",
        TOKENWISE_JWT_AUDIENCE="audience-of-auth",
    )
    other_audience = spawn(
        processes,
        tmp_path,
        "api",
        TOKENWISE_AUTH_URL=auth.url,
        TOKENWISE_JWT_ISSUER="issuer-of-auth",
        TOKENWISE_JWT_AUDIENCE="audience-of-api",
    )
    _healthy(auth, other_issuer, other_audience)
    account = await signup(auth.url)

    for api, reason, expected in [
        (other_issuer, "issuer_mismatch", "issuer-of-api"),
        (other_audience, "audience_mismatch", "audience-of-api"),
    ]:
        async with httpx.AsyncClient(base_url=api.url, timeout=10) as http:
            response = await http.get("/api/threads", headers=_bearer(account.access_token))
        assert response.status_code == 401, response.text
        error = response.json()["error"]
        assert error["code"] == "unauthenticated"
        assert error["reason"] == reason
        assert expected in error["message"]

        with pytest.raises(InvalidStatus) as denied:
            await open_ws(api.ws_url, account.access_token)
        assert denied.value.response.status_code == 401
        assert reason.encode() in denied.value.response.body


async def test_api_fetches_the_jwks_again_for_the_kid_of_a_rotated_key(
    tmp_path: Path, processes: list[ServerProcess]
) -> None:
    auth = spawn(processes, tmp_path, "auth")
    api = spawn(processes, tmp_path, "api", TOKENWISE_AUTH_URL=auth.url)
    _healthy(auth, api)
    old = await signup(auth.url)
    async with httpx.AsyncClient(base_url=api.url, timeout=10) as http:
        assert (await http.get("/api/threads", headers=_bearer(old.access_token))).status_code == 200
    cached_at = time.monotonic()  # the API's JWKS cache now holds the old key only

    # Rotation: a second key file beside the first; the newest one signs, both are published.
    auth.stop()
    generate_key_file(tmp_path / "keys")
    auth.start()
    async with httpx.AsyncClient(base_url=auth.url, timeout=10) as http:
        kids = {key["kid"] for key in (await http.get("/auth/.well-known/jwks.json")).json()["keys"]}
        login = await http.post("/auth/login", json={"email": old.email, "password": old.password})
    new_token = login.json()["access_token"]
    old_kid = jwt.get_unverified_header(old.access_token)["kid"]
    new_kid = jwt.get_unverified_header(new_token)["kid"]
    assert new_kid != old_kid
    assert kids == {old_kid, new_kid}

    # Refetches are throttled; once that short interval has passed, an unknown kid triggers one.
    await asyncio.sleep(max(0.0, cached_at + _JWKS_REFETCH_S + 0.2 - time.monotonic()))
    async with httpx.AsyncClient(base_url=api.url, timeout=10) as http:
        fresh = await http.get("/api/threads", headers=_bearer(new_token))
        assert fresh.status_code == 200, fresh.text
        # The old key is still published during the rotation: its tokens keep working.
        still = await http.get("/api/threads", headers=_bearer(old.access_token))
        assert still.status_code == 200, still.text
    ws, welcome = await open_ws(api.ws_url, new_token, "subprotocol")
    async with ws:
        assert welcome["user_id"] == old.user_id
