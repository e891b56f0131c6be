"""Single-use WebSocket tickets, for clients whose proxies strip headers. Stored, so any replica redeems."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import update

from tokenwise.db.database import Database
from tokenwise.db.tables import WsTicketRow, utcnow
from tokenwise.errors import AuthenticationError
from tokenwise.services.accounts import digest


class Tickets:
    def __init__(self, db: Database, *, ttl_s: int) -> None:
        self._db = db
        self._ttl = timedelta(seconds=ttl_s)

    async def issue_ticket(self, user_id: str, token_expires_at: datetime) -> tuple[str, datetime]:
        """A single-use WebSocket ticket, valid for at most the ticket TTL and never past the token."""
        ticket = secrets.token_urlsafe(32)
        expires = min(utcnow() + self._ttl, token_expires_at)
        async with self._db.session() as session:
            session.add(
                WsTicketRow(
                    ticket_hash=digest(ticket),
                    user_id=user_id,
                    expires_at=expires,
                    token_expires_at=token_expires_at,
                )
            )
        return ticket, expires

    async def redeem_ticket(self, ticket: str) -> tuple[str, datetime]:
        """Spend a ticket: the user id and when their access expires. A second use fails."""
        now = utcnow()
        async with self._db.session() as session:
            claimed = await session.execute(
                update(WsTicketRow)
                .where(
                    WsTicketRow.ticket_hash == digest(ticket),
                    WsTicketRow.used_at.is_(None),
                    WsTicketRow.expires_at > now,
                )
                .values(used_at=now)
                .returning(WsTicketRow.user_id, WsTicketRow.token_expires_at)
            )
            found = claimed.first()
        if found is None:
            raise AuthenticationError(
                "the ticket is unknown, expired or already used", reason="ticket_invalid"
            )
        return found[0], found[1]
