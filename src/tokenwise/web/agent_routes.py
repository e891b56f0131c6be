"""The agents over REST, as clients of the platform Tokenwise replaces call them: the same runs, stored
and delivered like any other (`POST /api/threads/{id}/messages`, the WebSocket's `user_message`).

`POST /api/agents/execute` starts a run, `POST /api/agents/{agent}` one that stops after that agent,
`POST /api/agents/stream` starts one and streams its events (the SSE of `GET /api/runs/{id}/stream`);
`GET /api/agents/status` lists the user's active runs, `POST /api/agents/{run_id}/cancel` stops one.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

from tokenwise import jsonlimits
from tokenwise.db.tables import RunRow
from tokenwise.errors import InvalidInput, NotFound, RateLimited
from tokenwise.services.chat import Submission
from tokenwise.services.container import Services
from tokenwise.session.frames import MAX_CONTENT_CHARS, TEXT_KEYS, ThreadId, flatten
from tokenwise.web.deps import AppServices, CurrentClaims
from tokenwise.web.sse import event_stream

router = APIRouter(prefix="/api/agents", tags=["agents"])

# The agents a run may stop after; data_helper runs only when there is no data, so it is no stopping point.
AgentName = Literal["triage", "data", "optimization", "actions", "reporting"]
AGENTS: tuple[str, ...] = get_args(AgentName)


class AgentRequest(BaseModel):
    """What starts a run: the text (`message`, or the WebSocket's other spellings), optionally a thread."""

    model_config = ConfigDict(extra="ignore")
    message: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_CONTENT_CHARS)
    ]
    thread_id: ThreadId | None = None
    agent: AgentName | None = None
    client_message_id: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None


async def read_request(request: Request) -> AgentRequest:
    """The body as an AgentRequest; InvalidInput naming the field at fault (`message` when no text)."""
    raw = await request.body()
    try:
        body = jsonlimits.loads(raw) if raw.strip() else {}  # deep nesting refused before parsing
    except ValueError as exc:
        raise InvalidInput("the request body is not valid JSON", field="body") from exc
    if not isinstance(body, dict):
        raise InvalidInput("the request body must be a JSON object", field="body")
    fields = flatten(body)
    text_key = next((key for key in TEXT_KEYS if isinstance(fields.get(key), str)), None)
    if text_key is None:
        raise InvalidInput(
            "the request needs its text in 'message' (or content/text/user_request/request)", field="message"
        )
    try:
        return AgentRequest.model_validate({**fields, "message": fields[text_key]})
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"]) or "body"
        raise InvalidInput(f"{field}: {error['msg']}", field=field) from exc


async def start(services: Services, user_id: str, body: AgentRequest, agent: str | None) -> Submission:
    """Store the message and queue its run (a client-chosen thread id that is new opens that thread).

    Over the user's runs a minute: 429 `rate_limited` with Retry-After, and nothing is stored."""
    try:
        await services.run_rate.admit(user_id)
    except RateLimited as exc:
        exc.details["client_message_id"] = body.client_message_id
        raise
    submission = await services.chat.submit(
        user_id,
        body.message,
        thread_id=body.thread_id,
        client_message_id=body.client_message_id,
        create_thread=True,
        stop_after=agent,
    )
    if submission.is_new:
        await services.runs.wake()
    return submission


async def _accepted(services: Services, user_id: str, submission: Submission, agent: str | None) -> Any:
    status = "queued"
    if not submission.is_new:  # a repeated client_message_id: the run it started, as it is now
        status = (await services.chat.get_run(user_id, submission.run_id)).status
    return {
        "run_id": submission.run_id,
        "thread_id": submission.thread_id,
        "message_id": submission.message_id,
        "status": status,
        "agent": agent,
    }


def run_status(row: RunRow) -> dict[str, Any]:
    return {
        "run_id": row.id,
        "thread_id": row.thread_id,
        "status": row.status,
        "created_at": row.created_at.isoformat(),
        "agent": row.stop_after,
    }


@router.post("/execute", status_code=202)
async def execute(request: Request, claims: CurrentClaims, services: AppServices) -> Any:
    """Start a run (`agent`: stop after that agent); 202 with its ids."""
    body = await read_request(request)
    submission = await start(services, claims.user_id, body, body.agent)
    return await _accepted(services, claims.user_id, submission, body.agent)


@router.post("/stream")
async def stream(request: Request, claims: CurrentClaims, services: AppServices) -> Response:
    """Start a run and stream its events as Server-Sent Events, ending after the final one."""
    body = await read_request(request)
    submission = await start(services, claims.user_id, body, body.agent)
    ids = {"X-Run-Id": submission.run_id, "X-Thread-Id": submission.thread_id}
    return event_stream(services, claims.user_id, submission.run_id, 0, headers=ids)


@router.get("/status")
async def status(claims: CurrentClaims, services: AppServices) -> dict[str, Any]:
    """The user's runs still queued or running."""
    runs = await services.chat.active_runs(claims.user_id)
    return {"active": len(runs), "runs": [run_status(row) for row in runs]}


@router.post("/{run_id}/cancel", status_code=202)
async def cancel(run_id: str, claims: CurrentClaims, services: AppServices) -> dict[str, Any]:
    """Stop a run, as `POST /api/runs/{id}/cancel`."""
    run = await services.runs.cancel(claims.user_id, run_id)
    return {"run_id": run_id, "status": "cancelling" if run.status in ("queued", "running") else run.status}


@router.post("/{agent}", status_code=202)
async def run_agent(agent: str, request: Request, claims: CurrentClaims, services: AppServices) -> Any:
    """Start a run of the pipeline up to and including `agent`; its result is in the report (`agent`)."""
    if agent not in AGENTS:
        raise NotFound(f"no agent {agent!r}; one of {', '.join(AGENTS)}", field="agent")
    body = await read_request(request)
    submission = await start(services, claims.user_id, body, agent)
    return await _accepted(services, claims.user_id, submission, agent)
