"""`GET /api/runs/{id}/stream`: a run's events as Server-Sent Events, for clients without a WebSocket."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import StreamingResponse

from tokenwise.services.container import Services
from tokenwise.services.feed import Feed
from tokenwise.session.events import RunEvent
from tokenwise.session.frames import MAX_SEQ
from tokenwise.web.deps import AppServices, CurrentClaims

router = APIRouter(prefix="/api", tags=["api"])


def sse_frame(event: RunEvent) -> str:
    """One SSE message: `id:` is the seq, so Last-Event-ID resumes exactly."""
    return f"id: {event.seq}\nevent: {event.type}\ndata: {event.body}\n\n"


async def stream_events(services: Services, user_id: str, run_id: str, after_seq: int) -> AsyncIterator[str]:
    """The run's events after `after_seq` as SSE text, stored ones first, ending after the final one."""
    queue: asyncio.Queue[RunEvent] = asyncio.Queue()

    async def enqueue(event: RunEvent) -> None:
        queue.put_nowait(event)

    feed = await Feed.open(services.bus, user_id, services.event_log, enqueue, follow_new_runs=False)
    pump = asyncio.create_task(feed.pump())
    try:
        yield "retry: 1000\n\n"
        await feed.follow(run_id, after_seq)
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), services.settings.sse_heartbeat_s)
            except TimeoutError:
                # A comment keeps proxies from closing an idle stream.
                yield ": heartbeat\n\n"
                continue
            services.metrics.event_sent(event.type, "sse")
            yield sse_frame(event)
            if event.final:
                return
    finally:
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pump
        await feed.close()


@router.get("/runs/{run_id}/stream")
async def stream_run(
    run_id: str,
    claims: CurrentClaims,
    services: AppServices,
    last_event_id: Annotated[int | None, Header(ge=0, le=MAX_SEQ)] = None,
    after_seq: Annotated[int, Query(ge=0, le=MAX_SEQ)] = 0,
) -> Response:
    """Every event after Last-Event-ID (or `after_seq`), live ones included, ending after the final one."""
    run = await services.chat.get_run(claims.user_id, run_id)
    start = last_event_id if last_event_id is not None else after_seq
    if run.status not in ("queued", "running") and start >= run.last_seq:
        # The final event was already delivered (an EventSource reconnects whenever a stream ends): 204
        # tells it to stop, where an open stream would wait for ever for events that never come.
        return Response(status_code=204)
    return event_stream(services, claims.user_id, run_id, start)


def event_stream(
    services: Services, user_id: str, run_id: str, after_seq: int, headers: dict[str, str] | None = None
) -> StreamingResponse:
    """The streaming response of a run's events (also `POST /api/agents/stream`)."""
    return StreamingResponse(
        stream_events(services, user_id, run_id, after_seq),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **(headers or {})},
    )
