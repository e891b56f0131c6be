"""The app's rules as plain code, run in the browser: the SSE parser and the seq-ordering of a run."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page

from support.live import LiveServer


def test_the_event_stream_parser_handles_chunks_crlf_comments_and_multiline_data(
    page: Page, server: LiveServer
) -> None:
    page.goto(server.url)
    messages = page.evaluate(
        """async () => {
            const { readEventStream } = await import("/static/js/sse.js");
            const chunks = ["retry: 1000\\r\\n\\r\\n: heartbeat\\n\\nid: 1\\nevent: agent_started\\nda",
                            "ta: {\\"seq\\":1}\\n\\nid: 2\\r\\ndata: line one\\r\\ndata: line two\\r\\n",
                            "\\r\\n: heartbeat\\n\\ndata:no-space\\n\\n"];
            const body = new ReadableStream({
                start(controller) {
                    for (const chunk of chunks) controller.enqueue(new TextEncoder().encode(chunk));
                    controller.close();
                },
            });
            const seen = [];
            await readEventStream(body, (message) => seen.push(message));
            return seen;
        }"""
    )
    assert messages == [
        {"id": "1", "event": "agent_started", "data": '{"seq":1}'},
        {"id": "2", "event": "message", "data": "line one\nline two"},
        {"id": None, "event": "message", "data": "no-space"},
    ]


def _event(seq: int, type: str, agent: str, **data: Any) -> dict[str, Any]:
    return {
        "type": type,
        "run_id": "r1",
        "thread_id": "t1",
        "seq": seq,
        "event_id": f"r1:{seq}",
        "timestamp": f"2026-11-21T14:21:26.{seq:03d}Z",
        "agent_name": agent,
        "data": data,
    }


def test_a_run_view_applies_each_seq_once_and_in_order(
    page: Page, page_problems: list[str], server: LiveServer
) -> None:
    events = [
        _event(1, "agent_started", "supervisor", description="Runs the sub-agents."),
        _event(2, "agent_thinking", "supervisor", thought="Starting with triage."),
        _event(3, "agent_started", "triage", description="Works out the question."),
        _event(4, "agent_thinking", "triage", thought="Classifying."),
        _event(5, "partial_result", "reporting", delta="# Title\n\n"),
        _event(6, "partial_result", "reporting", delta="Body <img src=x onerror=alert(1)>."),
        _event(7, "agent_completed", "triage", result={"category": "cost_optimization"}),
        _event(8, "agent_completed", "supervisor", final=True, result={"title": "Title", "strategies": []}),
    ]
    # Out of order, with repeats: a resume overlapping live delivery, and a gap filled later.
    arrival = [events[i] for i in (0, 1, 3, 1, 2, 0, 4, 6, 5, 5, 7, 7, 3)]
    page.goto(server.url)
    result = page.evaluate(
        """async (arrival) => {
            const { RunView } = await import("/static/js/run_view.js");
            const gaps = [];
            const hooks = { offsetMs: () => 0, announce: () => {}, onStop: () => {} };
            const view = new RunView("r1", { ...hooks, onGap: (v) => gaps.push(v.lastSeq) });
            document.body.append(view.el);
            for (const event of arrival) {
                view.apply(event);
                view.gapHandled();
            }
            return {
                seqs: [...view.el.querySelectorAll("[data-seq]")].map((e) => Number(e.dataset.seq)),
                thoughts: [...view.el.querySelectorAll(".thought")].map((e) => e.textContent),
                status: view.el.dataset.status,
                lastSeq: view.lastSeq,
                gaps,
                heading: view.answer.querySelector("h1")?.textContent,
                answerHtml: view.answer.innerHTML,
            };
        }""",
        arrival,
    )
    assert sorted(result["seqs"]) == [1, 2, 3, 4, 7, 8]
    assert len(result["seqs"]) == len(set(result["seqs"]))
    assert result["thoughts"] == ["Starting with triage.", "Classifying."]
    assert result["status"] == "completed"
    assert result["lastSeq"] == 8
    assert result["gaps"]  # the early events asked for the gap to be filled
    assert result["heading"] == "Title"
    assert "onerror" not in result["answerHtml"]  # the Markdown is sanitized
    # Chromium reports the handler DOMPurify parsed (in an inert document) as blocked by the CSP: both
    # defences at work. Nothing else may have been reported.
    assert page_problems
    assert all("inline event handler" in p and "purify" in p for p in page_problems), page_problems
    page_problems.clear()
