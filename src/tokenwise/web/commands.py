"""What the server does with each client frame on an authenticated chat connection."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tokenwise.errors import AuthenticationError, Conflict, TokenExpired, TooManyRuns
from tokenwise.faults import FaultPoint, trip
from tokenwise.services.chat import Submission, message_json
from tokenwise.session import frames
from tokenwise.session.events import RunEvent, now_iso
from tokenwise.web.diagnostics import received

if TYPE_CHECKING:
    from tokenwise.web.websocket import ChatConnection


async def user_message(conn: ChatConnection, frame: frames.UserMessage) -> None:
    services = conn.services
    trip(conn.settings.fault_injection, FaultPoint.MESSAGE_HANDLING)
    if services.stopping:
        # Shutting down: accept no new run, but keep the connection until the runs already under way
        # have been delivered; the shutdown sequence then sends server_shutdown and closes with 1012.
        conn.services.metrics.error("service_unavailable")
        await conn.send(
            {
                "type": "error",
                "code": "service_unavailable",
                "retry_after_s": 1.0,
                "message": "the server is shutting down; send the message again after reconnecting",
                "client_message_id": frame.client_message_id,
            }
        )
        return
    lease = services.runs.reserve(conn.user_id)  # the in-process worker takes it at once, if it has room
    submitted: Submission | None = None
    asked_at = conn.loop.time()

    async def submit_and_ack() -> RunEvent | None:
        nonlocal submitted
        # A thread id the client chose that does not exist yet opens that thread for this user.
        submitted = submission = await services.chat.submit(
            conn.user_id,
            frame.content,
            thread_id=frame.thread_id,
            client_message_id=frame.client_message_id,
            create_thread=True,
            lease=lease,
        )
        await conn.send(
            {
                "type": "ack",
                "client_message_id": submission.client_message_id,
                "message_id": submission.message_id,
                "thread_id": submission.thread_id,
                "run_id": submission.run_id,
            }
        )
        # A repeated client_message_id gets the same ack, and no second run.
        return submission.first if submission.is_new else None

    try:
        # Stored, queued and acked under the feed's lock, then the run's first event (stored with it):
        # a worker may publish the next ones before the ack is sent, and the feed holds them back.
        if await conn.feed.start_run(submit_and_ack) is not None:
            services.metrics.first_event(conn.loop.time() - asked_at)
    except TooManyRuns as exc:
        exc.details["client_message_id"] = frame.client_message_id  # which message was not taken
        raise
    finally:
        # The run is stored: it starts even if the ack could not be sent (connection gone). Resending
        # the client_message_id after reconnecting returns the same ack, then resume.
        await services.runs.started(conn.user_id, submitted, lease)


async def ping(conn: ChatConnection, _frame: frames.Ping) -> None:
    await conn.send({"type": "pong", "server_time": now_iso()})


async def heartbeat(conn: ChatConnection, _frame: frames.Heartbeat) -> None:
    await conn.send({"type": "heartbeat_ack", "status": "healthy"})


async def resume(conn: ChatConnection, frame: frames.Resume) -> None:
    await conn.services.chat.get_run(conn.user_id, frame.run_id)  # NotFound for anyone else's run
    await conn.feed.follow(frame.run_id, frame.after_seq)


async def stop_agent(conn: ChatConnection, frame: frames.StopAgent) -> None:
    run = await conn.services.runs.cancel(conn.user_id, frame.run_id)
    if run.status not in ("queued", "running"):
        raise Conflict(f"run {run.id} already ended ({run.status})", field="run_id", run_id=run.id)


async def auth_refresh(conn: ChatConnection, frame: frames.AuthRefresh | frames.Auth) -> None:
    try:
        claims = await conn.services.verifier.verify(frame.token)
    except TokenExpired as exc:
        # `token_expired` is reserved for the connection's own expiry, which closes it.
        raise AuthenticationError("the new token has already expired", reason="expired") from exc
    if claims.user_id != conn.user_id:
        raise AuthenticationError("the new token belongs to another user", reason="user_mismatch")
    conn.expires_at = claims.expires_at
    await conn.send({"type": "auth_refreshed", "expires_at": claims.expires_at.isoformat()})


async def thread_history(conn: ChatConnection, frame: frames.GetThreadHistory) -> None:
    rows = await conn.services.chat.messages(conn.user_id, frame.thread_id, limit=frame.limit)
    await conn.send(
        {
            "type": "thread_history",
            "thread_id": frame.thread_id,
            "messages": [message_json(row) for row in rows],
        }
    )


async def diagnostics(conn: ChatConnection, _frame: frames.Diagnostics) -> None:
    """What the handshake carried as the server received it, secrets redacted (for `tokenwise doctor`)."""
    await conn.send(
        {
            "type": "diagnostics",
            "connection_id": conn.id,
            "credential_method": conn.method.value if conn.method is not None else None,
            "handshake": received(conn.ws, conn.handshake_headers()),
        }
    )


async def handle(conn: ChatConnection, frame: frames.ClientFrame) -> None:
    """Dispatch one parsed frame."""
    match frame:
        case frames.UserMessage():
            await user_message(conn, frame)
        case frames.Ping():
            await ping(conn, frame)
        case frames.Heartbeat():
            await heartbeat(conn, frame)
        case frames.Resume():
            await resume(conn, frame)
        case frames.StopAgent():
            await stop_agent(conn, frame)
        case frames.AuthRefresh() | frames.Auth():
            await auth_refresh(conn, frame)
        case frames.GetThreadHistory():
            await thread_history(conn, frame)
        case frames.Diagnostics():
            await diagnostics(conn, frame)
