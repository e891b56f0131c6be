"""The contract between the agents and the run machinery that stores and delivers their events."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tokenwise.agents.language import LanguageModel, NoLanguageModel
from tokenwise.analysis.pricing import PriceBook
from tokenwise.analysis.sql import Engine


class EventSink(Protocol):
    """Where an agent's events go. The run machinery assigns seq, stores, then delivers each event.

    `emit` never blocks on I/O; events are stored and delivered in the order they were emitted.
    After the run's final event (`final=True` in data of the supervisor's agent_completed/agent_error)
    the sink refuses further events.
    """

    def emit(
        self, type: str, agent_name: str, data: dict[str, Any], tool_name: str | None = None
    ) -> None: ...


class UsageSource(Protocol):
    """Read access to one user's workload data: their datasets, the files behind them, the prices to use."""

    @property
    def prices(self) -> PriceBook:
        """The price book the analysis uses for this user's data."""
        ...

    @property
    def engine(self) -> Engine | None:
        """The process's DuckDB engine the queries take a cursor of (None: each opens its own)."""
        ...

    async def parquet_paths(self, only: Collection[str] | None = None) -> list[Path]:
        """Every normalized Parquet file (`usage.schema.COLUMNS`) of the datasets questions cover (of those
        whose id is in `only`, when given), absolute paths."""
        ...

    async def default_models(self) -> dict[str, str]:
        """`os.fspath(path) -> model` for files whose rows without a model take their dataset's model."""
        ...

    async def datasets(self) -> list[dict[str, Any]]:
        """Each dataset questions cover, as the API shows it: id, name, detected_format, row_count, model,
        mapping, period, and its grain (`bucketed`, `request_counts`)."""
        ...

    async def excluded(self) -> list[dict[str, Any]]:
        """The datasets the user left out of their questions (named in answers, never read)."""
        ...


class ThreadContext(Protocol):
    """The earlier turns of the run's thread (never another thread's), oldest first."""

    async def turns(self) -> list[dict[str, Any]]:
        """Up to the last few `{"question": str, "plan": dict, "answer": str}` before this run."""
        ...


class NoThreadContext:
    """A thread with nothing before this run."""

    async def turns(self) -> list[dict[str, Any]]:
        return []


@dataclass
class RunContext:
    """Everything one run of the pipeline needs."""

    run_id: str
    user_id: str
    thread_id: str
    question: str
    sink: EventSink
    usage: UsageSource
    # Results of earlier agents, by agent name, for the later ones.
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Phrases text only (a restatement, the narrative); figures always come from tools.
    language: LanguageModel = field(default_factory=NoLanguageModel)
    thread: ThreadContext = field(default_factory=NoThreadContext)
    # Taken over from a worker that died: the run's events so far are stored and `results` holds the
    # agents that completed; the pipeline goes on from the next one instead of starting again.
    resumed: bool = False
    # The supervisor's agent_started is stored already, with the run (runs/recorder.py `opening`).
    announced: bool = False
    # The last sub-agent to run (`POST /api/agents/{agent}`): later ones are skipped, reporting still
    # writes the report, which carries this agent's result. None: the whole pipeline.
    stop_after: str | None = None


@dataclass(frozen=True)
class RunOutcome:
    """What the pipeline returns: the report it produced and how the run ended."""

    status: str  # "completed", "failed" or "cancelled"
    report: dict[str, Any]
    markdown: str
    error_code: str | None = None
