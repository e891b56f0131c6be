"""API keys over real HTTP: shown once, stored hashed, scoped, revocable, never usable to manage keys,
and never in a log line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.clients import Account, signup
from support.live import LiveServer, ServerProcess, wait_healthy


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def new_key(base_url: str, account: Account, *scopes: str, name: str = "ci exporter") -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        created = await http.post(
            "/api/keys", json={"name": name, "scopes": list(scopes)}, headers=bearer(account.access_token)
        )
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


EVENT = {"timestamp": "2026-11-20T10:00:00Z", "model": "gpt-4o", "input_tokens": 10, "output_tokens": 2}


async def test_key_lifecycle(server: LiveServer) -> None:
    account = await signup(server.url)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        user = bearer(account.access_token)
        created = await http.post(
            "/api/keys", json={"name": "ingest bot", "scopes": ["ingest"]}, headers=user
        )
        assert created.status_code == 201, created.text
        assert created.headers["cache-control"] == "no-store"
        key = created.json()
        secret = key["secret"]
        assert secret.startswith("tw_")
        assert len(secret) >= 3 + 43  # 32 random bytes, base64url
        assert key["prefix"] == secret[:8]
        assert (key["name"], key["scopes"], key["last_used_at"]) == ("ingest bot", ["ingest"], None)

        listed = (await http.get("/api/keys", headers=user)).json()["keys"]
        assert [k["id"] for k in listed] == [key["id"]]
        assert set(listed[0]) == {"id", "name", "prefix", "scopes", "created_at", "last_used_at"}
        assert secret not in str(listed)
        stored = server.call(server.services.api_keys.list(account.user_id))
        assert secret not in repr([(r.secret_hash, r.prefix, r.name) for r in stored])

        sent = await http.post("/api/workload/events", json={"records": [EVENT]}, headers=bearer(secret))
        assert sent.status_code == 201, sent.text
        used = (await http.get("/api/keys", headers=user)).json()["keys"][0]
        assert used["last_used_at"] is not None

        assert (await http.delete(f"/api/keys/{key['id']}", headers=user)).status_code == 204
        assert (await http.get("/api/keys", headers=user)).json()["keys"] == []
        again = await http.delete(f"/api/keys/{key['id']}", headers=user)
        assert again.status_code == 404
        revoked = await http.post("/api/workload/events", json={"records": [EVENT]}, headers=bearer(secret))
        assert revoked.status_code == 401
        assert revoked.headers["www-authenticate"] == "Bearer"
        assert revoked.json()["error"] == {
            "code": "unauthenticated",
            "message": "the API key has been revoked",
            "reason": "api_key_revoked",
        }
        wrong = await http.get("/api/datasets", headers=bearer(secret[:-4] + "AAAA"))
        assert wrong.status_code == 401
        assert wrong.json()["error"]["reason"] == "api_key_invalid"


async def test_scopes_decide_what_a_key_may_do(server: LiveServer, tmp_path: Path) -> None:
    account = await signup(server.url)
    ingest = (await new_key(server.url, account, "ingest"))["secret"]
    read = (await new_key(server.url, account, "read"))["secret"]
    both = (await new_key(server.url, account, "ingest", "read"))["secret"]
    usage = tmp_path / "usage.jsonl"
    usage.write_text(
        '{"timestamp": "2026-11-20T10:00:00Z", "model": "gpt-4o", "input_tokens": 5, "output_tokens": 1}\n'
    )
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        with usage.open("rb") as handle:
            uploaded = await http.post(
                "/api/datasets", files={"file": ("u.jsonl", handle)}, headers=bearer(ingest)
            )
        assert uploaded.status_code == 201, uploaded.text
        events = await http.post("/api/workload/events", json={"records": [EVENT]}, headers=bearer(both))
        assert events.status_code == 201, events.text

        refused = await http.post("/api/workload/events", json={"records": [EVENT]}, headers=bearer(read))
        assert refused.status_code == 403
        assert refused.json()["error"] == {
            "code": "forbidden",
            "message": "the API key lacks the scope 'ingest'",
            "reason": "scope",
            "scope": "ingest",
        }
        assert (await http.get("/api/datasets", headers=bearer(ingest))).status_code == 403
        listed = await http.get("/api/datasets", headers=bearer(read))
        assert listed.status_code == 200
        datasets = listed.json()["datasets"]
        assert len(datasets) == 2
        one = await http.get(f"/api/datasets/{datasets[0]['id']}", headers=bearer(read))
        assert one.status_code == 200
        # The rows went to the key's owner.
        assert server.call(server.services.datasets.usage_for(account.user_id).row_count()) == 2


async def test_a_key_never_manages_keys_or_reaches_other_endpoints(server: LiveServer) -> None:
    account = await signup(server.url)
    key = await new_key(server.url, account, "ingest", "read")
    as_key = bearer(key["secret"])
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        for method, path, body in (
            ("POST", "/api/keys", {"name": "more", "scopes": ["ingest"]}),
            ("GET", "/api/keys", None),
            ("DELETE", f"/api/keys/{key['id']}", None),
            ("GET", "/api/threads", None),
            ("POST", "/api/ws/ticket", None),
        ):
            response = await http.request(method, path, json=body, headers=as_key)
            assert response.status_code == 403, (method, path, response.text)
            assert response.json()["error"]["reason"] == "api_key_not_accepted"
        # Still alive: nothing above revoked it.
        assert (await http.get("/api/datasets", headers=as_key)).status_code == 200


async def test_keys_are_per_user_and_input_is_checked(server: LiveServer) -> None:
    alice, bob = await signup(server.url), await signup(server.url)
    key = await new_key(server.url, alice, "read")
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        assert (
            await http.delete(f"/api/keys/{key['id']}", headers=bearer(bob.access_token))
        ).status_code == 404
        assert (await http.get("/api/keys", headers=bearer(bob.access_token))).json()["keys"] == []
        for body, field in (
            ({"name": "x", "scopes": ["admin"]}, "scopes.0"),
            ({"name": "x", "scopes": []}, "scopes"),
            ({"name": " ", "scopes": ["read"]}, "name"),
        ):
            bad = await http.post("/api/keys", json=body, headers=bearer(alice.access_token))
            assert bad.status_code == 422, bad.text
            assert bad.json()["error"]["field"] == field
        assert (await http.get("/api/keys")).status_code == 401


async def test_a_key_in_the_url_is_refused(server: LiveServer) -> None:
    account = await signup(server.url)
    secret = (await new_key(server.url, account, "read"))["secret"]
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        response = await http.get("/api/datasets", params={"key": secret}, headers=bearer(secret))
    assert response.status_code == 401
    assert response.json()["error"]["reason"] == "token_in_url"


class _VerboseServer(ServerProcess):
    """`tokenwise serve` logging at debug level, access log included."""

    def start(self, *, wait: bool = True) -> _VerboseServer:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tokenwise", "serve", "--log-level", "debug"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_healthy(self.url)
        return self


@pytest.mark.slow
async def test_keys_never_reach_the_server_log(tmp_path: Path) -> None:
    process = _VerboseServer(tmp_path / "verbose").start()
    try:
        account = await signup(process.url)
        key = await new_key(process.url, account, "ingest", "read")
        secret = key["secret"]
        async with httpx.AsyncClient(base_url=process.url, timeout=30) as http:
            await http.post("/api/workload/events", json={"records": [EVENT]}, headers=bearer(secret))
            await http.post(
                "/v1/traces",
                content=b"\x00",
                headers={**bearer(secret), "Content-Type": "application/x-protobuf"},
            )
            await http.get("/api/datasets", headers=bearer(secret))
            await http.get("/api/datasets", params={"api_key": secret})  # a careless client
            await http.get("/api/keys", headers=bearer(secret))
            await http.delete(f"/api/keys/{key['id']}", headers=bearer(account.access_token))
            await http.get("/api/datasets", headers=bearer(secret))
    finally:
        process.terminate()
    log = process.log()
    assert "POST /api/workload/events" in log  # the access log was on
    assert "GET /api/datasets?api_key=[redacted]" in log  # the careless request line, without its key
    assert secret not in log
    assert secret[len(key["prefix"]) :] not in log
