from __future__ import annotations

import asyncio

from agent_doubles import check_stream, make_ctx, sink_of
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenwise.agents import run_pipeline

WORDS = [
    "cut",
    "spend",
    "30%",
    "p95",
    "under",
    "800ms",
    "gpt-4o",
    "claude",
    "capacity",
    "$5k",
    "latency",
    "by",
]
questions = st.one_of(st.text(max_size=400), st.lists(st.sampled_from(WORDS), max_size=20).map(" ".join))


@settings(max_examples=60, deadline=None)
@given(question=questions, rows=st.sampled_from([0, 1, 999, 1000, 20_000]))
def test_any_question_gives_a_well_ordered_stream(question: str, rows: int) -> None:
    ctx = make_ctx(question, rows=rows)
    outcome = asyncio.run(run_pipeline(ctx))
    events = sink_of(ctx).events
    check_stream(events)
    assert outcome.status == "completed"
    assert "".join(e.data["delta"] for e in events if e.type == "partial_result") == outcome.markdown
    assert ("data_helper" in sink_of(ctx).started()) == (rows == 0)
