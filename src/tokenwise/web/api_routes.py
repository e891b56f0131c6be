"""The chat services over plain HTTP: threads, messages, runs and their events, tickets, the catalogue."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, StringConstraints

from tokenwise.agents.catalogue import catalogue
from tokenwise.services.chat import message_json, run_json, thread_json
from tokenwise.session.frames import MAX_CONTENT_CHARS, MAX_SEQ
from tokenwise.web.deps import AppServices, CurrentClaims

router = APIRouter(prefix="/api", tags=["api"])
Content = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_CONTENT_CHARS)]


class NewThread(BaseModel):
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)] | None = (
        None
    )


class NewMessage(BaseModel):
    content: Content
    client_message_id: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None


@router.get("/threads")
async def list_threads(claims: CurrentClaims, services: AppServices) -> dict[str, Any]:
    return {"threads": [thread_json(row) for row in await services.chat.list_threads(claims.user_id)]}


@router.post("/threads", status_code=201)
async def create_thread(body: NewThread, claims: CurrentClaims, services: AppServices) -> dict[str, Any]:
    return thread_json(await services.chat.create_thread(claims.user_id, body.title))


@router.get("/threads/{thread_id}")
async def get_thread(thread_id: str, claims: CurrentClaims, services: AppServices) -> dict[str, Any]:
    return thread_json(await services.chat.get_thread(claims.user_id, thread_id))


@router.get("/threads/{thread_id}/messages")
async def list_messages(
    thread_id: str,
    claims: CurrentClaims,
    services: AppServices,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: datetime | None = None,
) -> dict[str, Any]:
    """A page of messages, oldest first; pass the first message's created_at as `before` for older ones."""
    rows = await services.chat.messages(claims.user_id, thread_id, limit=limit, before=before)
    return {
        "thread_id": thread_id,
        "messages": [message_json(row) for row in rows],
        "next_before": rows[0].created_at.isoformat() if len(rows) == limit else None,
    }


@router.post("/threads/{thread_id}/messages", status_code=202)
async def post_message(
    thread_id: str, body: NewMessage, claims: CurrentClaims, services: AppServices
) -> dict[str, Any]:
    await services.run_rate.admit(claims.user_id)  # runs a minute: 429 rate_limited, nothing stored
    submission = await services.chat.submit(
        claims.user_id, body.content, thread_id=thread_id, client_message_id=body.client_message_id
    )
    if submission.is_new:
        await services.runs.wake()
    return {"message_id": submission.message_id, "run_id": submission.run_id, "thread_id": thread_id}


@router.get("/runs/{run_id}")
async def get_run(run_id: str, claims: CurrentClaims, services: AppServices) -> dict[str, Any]:
    return run_json(await services.chat.get_run(claims.user_id, run_id))


@router.get("/runs/{run_id}/events")
async def run_events(
    run_id: str,
    claims: CurrentClaims,
    services: AppServices,
    after_seq: Annotated[int, Query(ge=0, le=MAX_SEQ)] = 0,
) -> dict[str, Any]:
    await services.chat.get_run(claims.user_id, run_id)
    events = await services.event_log.read(claims.user_id, run_id, after_seq)
    return {"run_id": run_id, "events": [event.envelope() for event in events]}


@router.post("/runs/{run_id}/cancel", status_code=202)
async def cancel_run(run_id: str, claims: CurrentClaims, services: AppServices) -> dict[str, Any]:
    run = await services.runs.cancel(claims.user_id, run_id)
    return {"run_id": run_id, "status": "cancelling" if run.status in ("queued", "running") else run.status}


@router.post("/ws/ticket")
async def ws_ticket(claims: CurrentClaims, services: AppServices) -> dict[str, Any]:
    await services.throttle.ticket(claims.user_id)
    ticket, expires = await services.tickets.issue_ticket(claims.user_id, claims.expires_at)
    base = services.settings.resolved_public_url.replace("http", "ws", 1)
    return {"ticket": ticket, "expires_at": expires.isoformat(), "websocket_url": f"{base}/ws"}


@router.get("/agents")
async def agents() -> dict[str, Any]:
    return {"agents": catalogue()["agents"]}


@router.get("/tools")
async def tools() -> dict[str, Any]:
    return {"tools": catalogue()["tools"]}
