"""Rolling key rotation: a process accepts a token signed with a key another replica started using,
without a restart; and expired credentials are purged from storage."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import func, insert, select

from support.clients import open_ws, signup
from support.live import LiveServer
from tokenwise.db.database import Database
from tokenwise.db.tables import RefreshTokenRow, WsTicketRow, utcnow
from tokenwise.runs.queue import RunQueue
from tokenwise.security.keys import KeyRing, generate_key_file
from tokenwise.security.tokens import TokenIssuer


async def test_a_token_signed_with_a_key_added_after_start_is_accepted(
    tmp_path: Path, start_server: Callable[..., LiveServer]
) -> None:
    live = start_server(data_dir=tmp_path)
    account = await signup(live.url)
    # Another replica rotates: a new key file in the shared key directory, and it signs with it.
    newest = generate_key_file(live.settings.resolved_key_dir)
    ring = KeyRing.from_directory(live.settings.resolved_key_dir, generate=False)
    signer = next(key for key in ring.keys if newest.name.endswith(f"{key.kid}.pem"))
    issuer = TokenIssuer(
        KeyRing([signer]), issuer=live.settings.jwt_issuer, audience=live.settings.jwt_audience, ttl_s=300
    )
    token, _ = issuer.issue(account.user_id)
    async with httpx.AsyncClient(base_url=live.url, timeout=10) as http:
        threads = await http.get("/api/threads", headers={"Authorization": f"Bearer {token}"})
        assert threads.status_code == 200, threads.text
        forged = await http.get("/api/threads", headers={"Authorization": f"Bearer {token[:-4]}AAAA"})
        assert forged.status_code == 401
    ws, welcome = await open_ws(live.ws_url, token)
    async with ws:
        assert welcome["user_id"] == account.user_id


async def test_expired_tickets_and_refresh_tokens_are_purged(
    tmp_path: Path, start_server: Callable[..., LiveServer]
) -> None:
    live = start_server(data_dir=tmp_path)
    account = await signup(live.url)
    db = Database(live.settings.resolved_database_url)
    past, future = utcnow() - timedelta(minutes=5), utcnow() + timedelta(minutes=5)
    try:
        async with db.session() as session:
            for index, expires in enumerate((past, past, future)):
                await session.execute(
                    insert(WsTicketRow).values(
                        ticket_hash=f"t{index}",
                        user_id=account.user_id,
                        expires_at=expires,
                        token_expires_at=future,
                    )
                )
                await session.execute(
                    insert(RefreshTokenRow).values(
                        token_hash=f"r{index}", user_id=account.user_id, family_id="f", expires_at=expires
                    )
                )
        purged = await RunQueue(db, lease_s=6).purge_expired_credentials()
        assert purged == 4
        async with db.session() as session:
            tickets = await session.scalar(select(func.count()).select_from(WsTicketRow))
            kept = (await session.scalars(select(RefreshTokenRow.token_hash))).all()
        assert tickets == 1
        assert "r2" in kept
        assert not {"r0", "r1"} & set(kept)  # the signup's own refresh token is still valid, and kept
    finally:
        await db.dispose()
