"""The token bucket's arithmetic, and the ordering-contract checker on good and broken runs."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tokenwise.session.contract import missing_critical, violations
from tokenwise.session.events import RunEvent
from tokenwise.session.ratelimit import TokenBucket


def test_bucket_allows_a_burst_then_says_how_long_to_wait() -> None:
    bucket = TokenBucket(rate=2.0, burst=3, now=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(0.5)
    assert bucket.take(0.5) == 0.0


def _run() -> list[dict[str, Any]]:
    specs = [
        ("agent_started", "supervisor", None, {}),
        ("agent_started", "triage", None, {}),
        ("agent_thinking", "triage", None, {"thought": "t"}),
        ("tool_executing", "triage", "classify", {"tool_call_id": "c1", "args": {}}),
        ("tool_completed", "triage", "classify", {"tool_call_id": "c1", "result": {}, "duration_ms": 1.0}),
        ("agent_completed", "triage", None, {"result": {}}),
        ("agent_completed", "supervisor", None, {"result": {}, "final": True}),
    ]
    return [
        RunEvent.create(
            user_id="u",
            run_id="r",
            thread_id="t",
            seq=i,
            type=kind,
            agent_name=agent,
            data=data,
            tool_name=tool,
        ).envelope()
        for i, (kind, agent, tool, data) in enumerate(specs, start=1)
    ]


def test_a_well_formed_run_has_no_violations() -> None:
    events = _run()
    assert violations(events) == []
    assert missing_critical(events) == []
    assert RunEvent.from_body(
        "u",
        RunEvent.create(
            user_id="u",
            run_id="r",
            thread_id="t",
            seq=7,
            type="agent_completed",
            agent_name="supervisor",
            data={"final": True},
        ).body,
    ).final


def _swap(events: list[dict[str, Any]]) -> None:
    events[3], events[4] = events[4], events[3]


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        (lambda e: e.pop(2), "seq"),
        (lambda e: e.append(copy.deepcopy(e[2]) | {"seq": 8, "event_id": "r:8"}), "follow the final"),
        (lambda e: e[4]["data"].update(tool_call_id="c2"), "does not match"),
        (lambda e: e[0].update(agent_name="triage"), "first event"),
        (lambda e: e[3].pop("tool_name"), "tool_name"),
    ],
)
def test_broken_runs_are_caught(breakage: Any, expected: str) -> None:
    events = _run()
    breakage(events)
    assert any(expected in problem for problem in violations(events)), violations(events)
