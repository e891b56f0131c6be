"""An async client for Tokenwise: sign in, open the chat WebSocket, send messages, follow runs.

    async with Client("http://127.0.0.1:8000") as client:
        await client.sign_in(email, password)
        async with await client.connect("subprotocol") as conn:
            ack = await conn.send_message("Where does our LLM spend go?")
            async for event in conn.events(ack.run_id):
                ...

Used by `tokenwise chat`, the load driver and `tokenwise doctor`.
"""

from tokenwise.client.api import Client
from tokenwise.client.connection import Connection, connect, ws_url_for
from tokenwise.client.errors import (
    ClientError,
    ConnectionClosed,
    HandshakeRejected,
    ProtocolViolation,
    RequestFailed,
    ServerError,
    SignInFailed,
    Unreachable,
)
from tokenwise.client.types import Ack, Event, Tokens, User, Welcome
from tokenwise.session.handshake import Method

__all__ = [
    "Ack",
    "Client",
    "ClientError",
    "Connection",
    "ConnectionClosed",
    "Event",
    "HandshakeRejected",
    "Method",
    "ProtocolViolation",
    "RequestFailed",
    "ServerError",
    "SignInFailed",
    "Tokens",
    "Unreachable",
    "User",
    "Welcome",
    "connect",
    "ws_url_for",
]
