"""Test doubles of the agent interfaces (event sink, usage source) and a checker for event streams."""

from __future__ import annotations

import asyncio
import atexit
import shutil
import tempfile
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from support.workload import PRICES
from tokenwise.agents.base import RunContext
from tokenwise.agents.catalogue import PIPELINE
from tokenwise.agents.tooling import Agent, AgentScope
from tokenwise.analysis.pricing import PriceBook
from tokenwise.usage.schema import COLUMNS

SUPERVISOR = "supervisor"


@dataclass(frozen=True)
class Event:
    type: str
    agent: str
    data: dict[str, Any]
    tool: str | None


class RecordingSink:
    """Records events and, like the real sink, refuses any event after the final one."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.closed = False

    def emit(self, type: str, agent_name: str, data: dict[str, Any], tool_name: str | None = None) -> None:
        assert not self.closed, f"event after the final one: {type} {agent_name} {data}"
        self.events.append(Event(type, agent_name, data, tool_name))
        if data.get("final"):
            self.closed = True

    def of(self, agent: str) -> list[Event]:
        return [e for e in self.events if e.agent == agent]

    def started(self) -> list[str]:
        return [e.agent for e in self.events if e.type == "agent_started"]


_DIR: Path | None = None
_FILES: dict[int, Path] = {}
# One clean request every `rows / 14 days`, on a priced model, with every column the strategies read:
# the analysis finds nothing to save, and the data is sufficient from 1,000 rows on.
_CLEAN = {
    "ts": "TIMESTAMP '2025-03-01' + to_microseconds(CAST(i * $span / $rows AS BIGINT))",
    "model": "'acme-small'",
    "provider": "'acme'",
    "input_tokens": "200 + i % 300",
    "output_tokens": "50 + i % 100",
    "cached_input_tokens": "0",
    "latency_ms": "300.0 + i % 700",
    "status": "'ok'",
    "is_error": "false",
    "feature": "'app-' || (i % 3)",
    "request_id": "'req-' || i",
    "prompt_hash": "md5('prompt-' || i)",
    "prefix_hash": "md5('prompt-' || i)",
    "max_output_tokens": "4096",
}


def usage_file(rows: int) -> Path:
    """A normalized Parquet dataset of `rows` clean requests over 14 days (written once per size)."""
    global _DIR
    if rows not in _FILES:
        if _DIR is None:
            _DIR = Path(tempfile.mkdtemp(prefix="agent-doubles-"))
            atexit.register(shutil.rmtree, _DIR, True)
        path = _DIR / f"usage-{rows}.parquet"
        columns = ", ".join(
            f"CAST({_CLEAN.get(c.name, 'NULL')} AS {c.duckdb_type}) AS {c.name}" for c in COLUMNS
        )
        with duckdb.connect() as con:
            con.execute(
                f"COPY (SELECT {columns} FROM range($rows) t(i)) TO '{path}' (FORMAT parquet)",  # noqa: S608
                {"rows": rows, "span": 14 * 86400 * 1e6},
            )
        _FILES[rows] = path
    return _FILES[rows]


class Usage:
    """A usage source over real Parquet files: none, or one clean dataset of `rows` requests."""

    def __init__(self, rows: int = 0, paths: list[Path] | None = None, prices: PriceBook = PRICES) -> None:
        self.rows = rows
        self.paths = paths if paths is not None else ([usage_file(rows)] if rows else [])
        self.prices = prices
        self.models: dict[str, str] = {}
        self.engine = None  # each query opens a database of its own

    async def parquet_paths(self, only: Collection[str] | None = None) -> list[Path]:
        return [path for i, path in enumerate(self.paths) if only is None or f"ds-{i}" in only]

    async def default_models(self) -> dict[str, str]:
        return dict(self.models)

    async def datasets(self) -> list[dict[str, Any]]:
        return [
            {
                "id": f"ds-{i}",
                "name": path.name,
                "detected_format": "generic",
                "row_count": self.rows,
                "model": None,
                "mapping": {"model": "model"},
                "period": {"start": None, "end": None},
            }
            for i, path in enumerate(self.paths)
        ]

    async def excluded(self) -> list[dict[str, Any]]:
        return []


def make_ctx(question: str = "How can we reduce our LLM costs?", rows: int = 0) -> RunContext:
    return RunContext("run-1", "user-1", "thread-1", question, RecordingSink(), Usage(rows))


def sink_of(ctx: RunContext) -> RecordingSink:
    assert isinstance(ctx.sink, RecordingSink)
    return ctx.sink


def agent(name: str, run: Callable[[RunContext, AgentScope], Awaitable[dict[str, Any]]]) -> Agent:
    """A stand-in sub-agent that runs `run` under `name`."""
    return Agent(name=name, description=f"test {name}", tools=(), run=run)


async def explode(ctx: RunContext, scope: AgentScope) -> dict[str, Any]:
    raise RuntimeError("secret connection string postgres://u:p@db")


async def hang(ctx: RunContext, scope: AgentScope) -> dict[str, Any]:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


def check_stream(events: list[Event]) -> None:
    """Assert the ordering contract of one run's events."""
    assert events, "no events"
    assert (events[0].type, events[0].agent) == ("agent_started", SUPERVISOR)
    last = events[-1]
    assert last.agent == SUPERVISOR
    assert last.type in ("agent_completed", "agent_error")
    assert last.data.get("final") is True
    assert [e for e in events if e.data.get("final")] == [last]
    if last.type == "agent_completed":
        assert isinstance(last.data["result"], dict)
        assert "report_type" in last.data["result"]
    else:
        assert isinstance(last.data["code"], str)
        assert isinstance(last.data["message"], str)

    open_agent: str | None = None
    finished: set[str] = set()
    open_calls: dict[str, Event] = {}
    seen_ids: set[str] = set()
    for event in events[1:-1]:
        if event.agent == SUPERVISOR:
            assert event.type in ("agent_thinking", "partial_result"), event
            assert open_agent is None, f"supervisor event while {open_agent} runs"
            continue
        if event.type == "agent_started":
            assert open_agent is None, f"{event.agent} started while {open_agent} runs"
            assert event.agent not in finished, f"{event.agent} ran twice"
            open_agent = event.agent
            continue
        assert event.agent == open_agent, f"{event.type} from {event.agent} outside its run"
        if event.type == "tool_executing":
            assert not open_calls, f"tool call while {list(open_calls)} is open"
            call_id = event.data["tool_call_id"]
            assert call_id not in seen_ids, f"duplicate tool_call_id {call_id}"
            assert isinstance(event.data["args"], dict)
            seen_ids.add(call_id)
            open_calls[call_id] = event
        elif event.type == "tool_completed":
            opened = open_calls.pop(event.data["tool_call_id"])
            assert event.tool == opened.tool
            assert event.tool is not None
            assert isinstance(event.data["result"], dict)
            assert isinstance(event.data["duration_ms"], float)
            assert event.data["duration_ms"] >= 0
        elif event.type in ("agent_completed", "agent_error"):
            assert not open_calls, f"{event.agent} ended with open tool calls"
            if event.type == "agent_completed":
                assert isinstance(event.data["result"], dict)
            else:
                assert set(event.data) == {"code", "message"}
            finished.add(event.agent)
            open_agent = None
        else:
            assert event.type in ("agent_thinking", "partial_result"), event
            key = "thought" if event.type == "agent_thinking" else "delta"
            assert isinstance(event.data[key], str)
    assert open_agent is None
    assert not open_calls

    order = [a for a in (e.agent for e in events if e.type == "agent_started") if a != SUPERVISOR]
    ranks = [PIPELINE.index(a) for a in order if a in PIPELINE]
    assert ranks == sorted(ranks), f"agents out of pipeline order: {order}"
    if last.type == "agent_completed":
        assert "reporting" in order
