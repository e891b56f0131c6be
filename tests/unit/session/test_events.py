"""Run events: the envelope's timestamp and its JSON body."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

from tokenwise.session.events import RunEvent, now_iso


def test_now_iso_is_utc_with_milliseconds_and_a_z() -> None:
    for _ in range(2000):  # across at least one change of second
        before = datetime.now(UTC)
        stamp = now_iso()
        after = datetime.now(UTC)
        assert len(stamp) == 24, stamp
        assert stamp.endswith("Z"), stamp
        parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        # the stamp truncates to the millisecond: it may be up to 1 ms before `before`
        assert before - timedelta(milliseconds=1) <= parsed <= after, (before, stamp, after)
        time.sleep(0.0005)


def test_an_event_body_is_the_envelope_as_json() -> None:
    data = {"text": "café, 東京", "nested": {1: "int key"}, "when": datetime(2026, 1, 2, tzinfo=UTC)}
    event = RunEvent.create(
        user_id="u", run_id="r", thread_id="t", seq=3, type="agent_thinking", agent_name="data", data=data
    )
    envelope = json.loads(event.body)
    assert (envelope["event_id"], envelope["seq"], envelope["thread_id"]) == ("r:3", 3, "t")
    assert envelope["data"] == {
        "text": "café, 東京",
        "nested": {"1": "int key"},
        "when": "2026-01-02T00:00:00+00:00",
    }
    assert RunEvent.from_body("u", event.body) == event
