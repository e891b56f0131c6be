"""The shapes the client hands out: tokens, the welcome frame, the ack and run events."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class User:
    id: str
    email: str
    name: str | None

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> User:
        return cls(str(body["id"]), str(body["email"]), body.get("name"))


@dataclass(frozen=True, slots=True)
class Tokens:
    """What POST /auth/login returns."""

    access_token: str
    refresh_token: str
    expires_in: int
    user: User

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Tokens:
        return cls(
            str(body["access_token"]),
            str(body["refresh_token"]),
            int(body.get("expires_in", 0)),
            User.from_json(body["user"]),
        )


@dataclass(frozen=True, slots=True)
class Welcome:
    """The `connection_established` frame, the first one after the upgrade."""

    connection_id: str
    user_id: str
    server_time: str
    protocol_version: int
    heartbeat_interval_s: float
    max_message_bytes: int

    @classmethod
    def from_frame(cls, frame: dict[str, Any]) -> Welcome:
        return cls(
            str(frame["connection_id"]),
            str(frame["user_id"]),
            str(frame.get("server_time", "")),
            int(frame.get("protocol_version", 0)),
            float(frame.get("heartbeat_interval_s", 0)),
            int(frame.get("max_message_bytes", 0)),
        )


@dataclass(frozen=True, slots=True)
class Ack:
    """The server's answer to a user message: where its run's events will come from."""

    client_message_id: str | None
    message_id: str
    thread_id: str
    run_id: str

    @classmethod
    def from_frame(cls, frame: dict[str, Any]) -> Ack:
        return cls(
            frame.get("client_message_id"),
            str(frame["message_id"]),
            str(frame["thread_id"]),
            str(frame["run_id"]),
        )


@dataclass(frozen=True, slots=True)
class Event:
    """One run event: the envelope `{type, run_id, thread_id, seq, event_id, timestamp, agent_name, data}`."""

    type: str
    run_id: str
    seq: int
    agent_name: str
    data: dict[str, Any]
    timestamp: str
    tool_name: str | None = None
    frame: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_frame(cls, frame: dict[str, Any]) -> Event:
        return cls(
            str(frame["type"]),
            str(frame["run_id"]),
            int(frame["seq"]),
            str(frame.get("agent_name", "")),
            frame.get("data") or {},
            str(frame.get("timestamp", "")),
            frame.get("tool_name"),
            frame,
        )

    @property
    def final(self) -> bool:
        """The run's last event: the supervisor's agent_completed / agent_error with `final: true`."""
        return bool(self.data.get("final")) and self.type in ("agent_completed", "agent_error")

    @property
    def time(self) -> datetime | None:
        """The server's timestamp, or None when it is missing or malformed."""
        try:
            return datetime.fromisoformat(self.timestamp)
        except ValueError:
            return None
