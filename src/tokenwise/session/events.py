"""Run events: built once, serialized once, stored and sent as the same JSON text."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import orjson

SUPERVISOR = "supervisor"
CRITICAL_TYPES = ("agent_started", "agent_thinking", "tool_executing", "tool_completed", "agent_completed")
RUN_EVENT_TYPES = (*CRITICAL_TYPES, "partial_result", "agent_error")


class _Clock:
    """ISO 8601 UTC timestamps with milliseconds and a Z; the seconds are formatted once per second (every
    event and frame carries one, and formatting a datetime cost more than the rest of the envelope)."""

    __slots__ = ("_prefix", "_second")

    def __init__(self) -> None:
        self._second, self._prefix = -1, ""

    def now(self) -> str:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second, self._prefix = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._prefix}.{int((now - second) * 1000):03d}Z"


now_iso = _Clock().now


def _is_final(agent_name: str, type: str, data: dict[str, Any]) -> bool:
    """The run's last event: the supervisor's agent_completed or agent_error marked final."""
    return agent_name == SUPERVISOR and type in ("agent_completed", "agent_error") and bool(data.get("final"))


@dataclass(frozen=True, slots=True)
class RunEvent:
    """One event of one run. `body` is the envelope's JSON, exactly as stored and sent."""

    user_id: str
    run_id: str
    seq: int
    type: str
    final: bool
    body: str

    @classmethod
    def create(
        cls,
        *,
        user_id: str,
        run_id: str,
        thread_id: str,
        seq: int,
        type: str,
        agent_name: str,
        data: dict[str, Any],
        tool_name: str | None = None,
    ) -> RunEvent:
        """Build the envelope `{type, run_id, thread_id, seq, event_id, timestamp, agent_name, data}`."""
        envelope: dict[str, Any] = {
            "type": type,
            "run_id": run_id,
            "thread_id": thread_id,
            "seq": seq,
            "event_id": f"{run_id}:{seq}",
            "timestamp": now_iso(),
            "agent_name": agent_name,
        }
        if tool_name is not None:
            envelope["tool_name"] = tool_name
        envelope["data"] = data
        body = orjson.dumps(envelope, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
        return cls(user_id, run_id, seq, type, _is_final(agent_name, type, data), body)

    @classmethod
    def from_body(cls, user_id: str, body: str) -> RunEvent:
        """Rebuild an event from its stored JSON."""
        envelope = orjson.loads(body)
        final = _is_final(envelope["agent_name"], envelope["type"], envelope.get("data") or {})
        return cls(user_id, envelope["run_id"], envelope["seq"], envelope["type"], final, body)

    def envelope(self) -> dict[str, Any]:
        """The envelope as a dict (for JSON APIs that embed events in a list)."""
        result: dict[str, Any] = json.loads(self.body)
        return result
