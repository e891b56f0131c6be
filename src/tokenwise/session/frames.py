"""Client frames: JSON text in, one typed command out, or a protocol error that names the field at fault."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from tokenwise import jsonlimits

MAX_CONTENT_CHARS = 32_000
MAX_FRAME_DEPTH = 32  # nesting of a frame's JSON; the frames themselves need three levels
MAX_SEQ = 2**63 - 1
Id = Annotated[str, StringConstraints(min_length=1, max_length=200)]
# A thread id a client may choose for a new thread (server-made ones are UUIDs, which match it too).
THREAD_ID = r"[A-Za-z0-9_.:-]{1,128}"
ThreadId = Annotated[str, StringConstraints(pattern=f"^{THREAD_ID}$")]


class Frame(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class UserMessage(Frame):
    type: Literal["user_message"] = "user_message"
    content: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_CONTENT_CHARS)
    ]
    thread_id: ThreadId | None = None
    client_message_id: Id | None = None


class Ping(Frame):
    type: Literal["ping"] = "ping"


class Heartbeat(Frame):
    """An application-level heartbeat (clients of the platform Tokenwise replaces send it)."""

    type: Literal["heartbeat"] = "heartbeat"


class Auth(Frame):
    type: Literal["auth"] = "auth"
    token: Annotated[str, StringConstraints(min_length=1, max_length=8192)]


class AuthRefresh(Frame):
    type: Literal["auth_refresh"] = "auth_refresh"
    token: Annotated[str, StringConstraints(min_length=1, max_length=8192)]


class Resume(Frame):
    type: Literal["resume"] = "resume"
    run_id: Id
    after_seq: int = Field(default=0, ge=0, le=MAX_SEQ)  # a 64-bit column: larger is a client mistake


class StopAgent(Frame):
    type: Literal["stop_agent"] = "stop_agent"
    run_id: Id


class GetThreadHistory(Frame):
    type: Literal["get_thread_history"] = "get_thread_history"
    thread_id: Id
    limit: int = Field(default=50, ge=1, le=500)


class Diagnostics(Frame):
    """Ask what the handshake carried, as the server received it (secrets redacted)."""

    type: Literal["diagnostics"] = "diagnostics"


ClientFrame = (
    UserMessage | Ping | Heartbeat | Auth | AuthRefresh | Resume | StopAgent | GetThreadHistory | Diagnostics
)

# Existing clients name a chat message in several ways and nest its fields in several places; the last
# seven types are the dialect of the platform Tokenwise replaces.
MESSAGE_TYPES = (
    "user_message",
    "chat_message",
    "message",
    "start_agent",
    "execute_agent",
    "EXECUTE_AGENT",
    "agent_request",
    "agent",
    "user_input",
    "user",
    "chat",
)
TEXT_KEYS = ("content", "message", "text", "user_request", "request")
_MODELS: dict[str, type[Frame]] = {
    "ping": Ping,
    "heartbeat": Heartbeat,
    "auth": Auth,
    "auth_refresh": AuthRefresh,
    "resume": Resume,
    "stop_agent": StopAgent,
    "get_thread_history": GetThreadHistory,
    "diagnostics": Diagnostics,
}


class ProtocolError(Exception):
    """A client mistake: answered with an error frame, the connection stays open."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.field = code, message, field

    def frame(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": "error", "code": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        return body


def flatten(raw: dict[str, Any]) -> dict[str, Any]:
    """Merge `payload` and `data` into the top level; top-level keys win."""
    merged: dict[str, Any] = {}
    for nested in ("data", "payload"):
        inner = raw.get(nested)
        if isinstance(inner, dict):
            merged.update(inner)
    merged.update({k: v for k, v in raw.items() if k not in ("data", "payload")})
    return merged


def _user_message(fields: dict[str, Any]) -> dict[str, Any]:
    text_key = next((k for k in TEXT_KEYS if isinstance(fields.get(k), str)), None)
    if text_key is None:
        raise ProtocolError(
            "invalid_message",
            "a chat message needs its text in 'content' (or message/text/user_request/request)",
            field="content",
        )
    return {**fields, "content": fields[text_key], "type": "user_message"}


def parse_frame(text: str) -> ClientFrame:
    """Parse one client text frame, or raise ProtocolError (invalid_json, unknown_type, invalid_message)."""
    try:
        raw = jsonlimits.loads(text, limit=MAX_FRAME_DEPTH)  # bounded: deep nesting is an error, not a bug
    except ValueError as exc:
        raise ProtocolError("invalid_json", f"the frame is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise ProtocolError("invalid_message", "a frame must be a JSON object", field="type")
    kind = raw.get("type")
    if not isinstance(kind, str):
        raise ProtocolError("invalid_message", "the frame has no string 'type'", field="type")
    fields = flatten(raw)
    if kind in MESSAGE_TYPES:
        model: type[Frame] = UserMessage
        fields = _user_message(fields)
    elif kind in _MODELS:
        model = _MODELS[kind]
    else:
        raise ProtocolError("unknown_type", f"unknown message type {kind!r}", field="type")
    try:
        return model.model_validate(fields)  # type: ignore[return-value]
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"]) or "type"
        raise ProtocolError("invalid_message", f"{field}: {error['msg']}", field=field) from exc
