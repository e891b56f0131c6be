"""Brute force against the real server: sign-in throttled per account and per address, a lock the right
password does not get through while it lasts, registration, refresh and ticket floods refused."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable

import httpx

from support.clients import signup
from support.live import LiveServer

PASSWORD = "correct-horse-1"


def _from(address: str) -> dict[str, str]:
    # the test client is on loopback, a proxy uvicorn trusts: this is the client address the server sees
    return {"X-Forwarded-For": address}


async def _logins(
    http: httpx.AsyncClient, emails: list[str], password: str, address: str
) -> list[httpx.Response]:
    limit = asyncio.Semaphore(20)

    async def one(email: str) -> httpx.Response:
        async with limit:
            body = {"email": email, "password": password}
            return await http.post("/auth/login", json=body, headers=_from(address))

    return await asyncio.gather(*(one(email) for email in emails))


def _codes(responses: list[httpx.Response]) -> Counter[str]:
    return Counter(
        str(r.status_code) if r.status_code < 400 else f"{r.status_code} {r.json()['error']['code']}"
        for r in responses
    )


def test_brute_force_is_throttled_and_locks_the_account(start_server: Callable[..., LiveServer]) -> None:
    lock_s = 6.0
    server = start_server(login_lock_s=lock_s)
    victim, other = asyncio.run(signup(server.url)), asyncio.run(signup(server.url))

    async def attack() -> None:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            began = time.monotonic()
            wrong = await _logins(http, [victim.email] * 300, "wrong-password-1", "10.1.0.1")
            codes = _codes(wrong)
            # 10 failures lock the account; a lock that ended mid-attack lets 10 more through
            locks = 1 + int((time.monotonic() - began) / lock_s)
            assert codes["401 invalid_credentials"] <= 10 * locks, codes
            assert codes["429 rate_limited"] + codes["429 account_locked"] >= 300 - 10 * locks, codes
            assert set(codes) <= {"401 invalid_credentials", "429 rate_limited", "429 account_locked"}, codes
            assert all(int(r.headers["Retry-After"]) >= 1 for r in wrong if r.status_code == 429)

            # while the lock lasts, the right password is refused too (from any address)
            right = {"email": victim.email, "password": PASSWORD}
            locked = await http.post("/auth/login", json=right, headers=_from("10.1.0.4"))
            assert locked.status_code == 429, locked.text
            assert locked.json()["error"]["code"] == "account_locked"
            retry_after = locked.json()["error"]["retry_after_s"]
            assert 0 < retry_after <= lock_s
            assert int(locked.headers["Retry-After"]) >= 1
            lock_ends = time.monotonic() + retry_after

            # a spray over many accounts from one address empties that address's bucket ...
            emails = [f"nobody-{i}@example.com" for i in range(90)]
            sprayed = _codes(await _logins(http, emails, "wrong-password-1", "10.1.0.2"))
            # 30, the 20 in flight when it emptied (paid back as debt), and what refilled meanwhile
            assert sprayed["401 invalid_credentials"] <= 55, sprayed
            assert sprayed["429 rate_limited"] >= 35, sprayed
            # ... so another account, with its right password, is throttled from that address only
            other_login = {"email": other.email, "password": PASSWORD}
            same = await http.post("/auth/login", json=other_login, headers=_from("10.1.0.2"))
            assert same.status_code == 429, same.text
            assert "address" in same.json()["error"]["message"]
            elsewhere = await http.post("/auth/login", json=other_login, headers=_from("10.1.0.3"))
            assert elsewhere.status_code == 200, elsewhere.text

            await asyncio.sleep(max(0.0, lock_ends + 0.2 - time.monotonic()))
            after = await http.post("/auth/login", json=right, headers=_from("10.1.0.4"))
            assert after.status_code == 200, after.text

    asyncio.run(attack())


def test_unknown_and_known_emails_fail_in_about_the_same_time(server: LiveServer) -> None:
    account = asyncio.run(signup(server.url))

    def timed(email: str, address: str) -> float:
        started = time.perf_counter()
        body = {"email": email, "password": "wrong-password-1"}
        response = httpx.post(f"{server.url}/auth/login", json=body, headers=_from(address), timeout=10)
        assert response.status_code == 401, response.text
        return time.perf_counter() - started

    known = sorted(timed(account.email, f"10.2.0.{i}") for i in range(5))[2]
    unknown = sorted(timed(f"nobody-{i}@example.com", f"10.2.1.{i}") for i in range(5))[2]
    assert 0.5 < unknown / known < 2.0, (known, unknown)


def test_registration_refresh_and_ticket_floods_are_refused(server: LiveServer) -> None:
    account = asyncio.run(signup(server.url))

    async def flood() -> None:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            limit = asyncio.Semaphore(10)

            async def register(i: int) -> httpx.Response:
                async with limit:
                    body = {"email": f"flood-{i}@example.com", "password": PASSWORD}
                    return await http.post("/auth/register", json=body, headers=_from("10.3.0.1"))

            registered = _codes(await asyncio.gather(*(register(i) for i in range(100))))
            assert registered["201"] <= 60, registered
            assert registered["429 rate_limited"] >= 40, registered
            fresh = {"email": "flood-elsewhere@example.com", "password": PASSWORD}
            other_address = await http.post("/auth/register", json=fresh, headers=_from("10.3.0.2"))
            assert other_address.status_code == 201, other_address.text

            refreshes = [
                await http.post("/auth/refresh", json={"refresh_token": "forged"}, headers=_from("10.3.0.3"))
                for _ in range(70)
            ]
            refreshed = _codes(refreshes)
            assert refreshed["401 unauthenticated"] <= 61, refreshed
            assert refreshed["429 rate_limited"] >= 9, refreshed
            assert int(refreshes[-1].headers["Retry-After"]) >= 1

            bearer = {"Authorization": f"Bearer {account.access_token}"}

            async def ticket() -> httpx.Response:
                async with limit:
                    return await http.post("/api/ws/ticket", headers=bearer)

            began = time.monotonic()
            tickets = _codes(await asyncio.gather(*(ticket() for _ in range(200))))
            refilled = int((time.monotonic() - began) * 120 / 60) + 1
            assert tickets["200"] <= 120 + refilled, tickets
            assert tickets["429 rate_limited"] >= 80 - refilled, tickets

    asyncio.run(flood())
