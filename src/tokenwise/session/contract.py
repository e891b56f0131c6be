"""The ordering contract of a run's events, as a checker that lists every violation it finds.

Used by the tests, the mission-critical suite against a live deployment, and `tokenwise doctor`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tokenwise.session.events import CRITICAL_TYPES, SUPERVISOR

_ENVELOPE = ("type", "run_id", "thread_id", "seq", "event_id", "timestamp", "agent_name", "data")


def violations(events: Sequence[dict[str, Any]]) -> list[str]:
    """Everything wrong with one run's complete event list; empty when it obeys the contract."""
    problems: list[str] = []
    if not events:
        return ["the run has no events"]
    for index, event in enumerate(events, start=1):
        missing = [key for key in _ENVELOPE if key not in event]
        if missing:
            problems.append(f"event {index} lacks {missing}")
        if event.get("seq") != index:
            problems.append(f"event {index} has seq {event.get('seq')} (expected {index})")
        if event.get("event_id") != f"{event.get('run_id')}:{event.get('seq')}":
            problems.append(f"event {index} has event_id {event.get('event_id')!r}")
        if event.get("type") in ("tool_executing", "tool_completed") and not event.get("tool_name"):
            problems.append(f"event {index} ({event.get('type')}) has no top-level tool_name")
    first, last = events[0], events[-1]
    if (first.get("type"), first.get("agent_name")) != ("agent_started", SUPERVISOR):
        problems.append(
            f"first event is {first.get('type')} of {first.get('agent_name')}, not supervisor start"
        )
    if (
        last.get("agent_name") != SUPERVISOR
        or last.get("type") not in ("agent_completed", "agent_error")
        or not last.get("data", {}).get("final")
    ):
        problems.append("the last event is not the supervisor's final agent_completed/agent_error")
    finals = [i for i, e in enumerate(events) if e.get("data", {}).get("final")]
    if finals and finals[0] != len(events) - 1:
        problems.append(f"{len(events) - 1 - finals[0]} event(s) follow the final event")
    problems += _agent_and_tool_pairs(events)
    return problems


def _agent_and_tool_pairs(events: Sequence[dict[str, Any]]) -> list[str]:
    problems: list[str] = []
    open_agents: set[str] = set()
    open_call: str | None = None
    for event in events:
        kind, agent, data = event.get("type"), event.get("agent_name"), event.get("data", {})
        if kind == "agent_started":
            open_agents.add(str(agent))
        elif kind in ("agent_completed", "agent_error"):
            if agent not in open_agents:
                problems.append(f"{kind} of {agent} without its agent_started")
            open_agents.discard(str(agent))
        elif agent not in open_agents:
            problems.append(f"{kind} of {agent} outside its agent_started … agent_completed")
        if kind == "tool_executing":
            if open_call is not None:
                problems.append(f"tool call {data.get('tool_call_id')} starts before {open_call} completed")
            open_call = data.get("tool_call_id")
        elif kind == "tool_completed":
            if data.get("tool_call_id") != open_call:
                problems.append(f"tool_completed {data.get('tool_call_id')} does not match {open_call}")
            open_call = None
    if open_call is not None:
        problems.append(f"tool call {open_call} never completed")
    problems += [f"agent {agent} never completed" for agent in sorted(open_agents)]
    return problems


def missing_critical(events: Sequence[dict[str, Any]]) -> list[str]:
    """The critical event types (started, thinking, tool executing/completed, completed) never seen."""
    seen = {event.get("type") for event in events}
    return [kind for kind in CRITICAL_TYPES if kind not in seen]
