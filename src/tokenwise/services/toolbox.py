"""Tokenwise's analysis as named tools for machine clients (the MCP server), each call scoped to one user.

The tools reuse what the agents use: a question is a run like any other (stored, queued, executed by a
worker, its events delivered to the user's other clients); the spend, breakdown and what-if queries
are query plans (`analysis.plan`) executed by the data and optimization agents' own tools, and their
answers are written by `agents.answers`, so the figures are the ones a run would report.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from tokenwise.agents.answers import write
from tokenwise.agents.base import RunContext
from tokenwise.agents.query_tools import PRICE_SCENARIO, RUN_QUERY
from tokenwise.analysis.plan import Filter, GroupBy, Measure, QueryPlan, Scenario
from tokenwise.db.tables import RunRow
from tokenwise.errors import InvalidInput, NotFound
from tokenwise.services.container import Services
from tokenwise.services.feed import Feed
from tokenwise.session.events import RunEvent
from tokenwise.session.frames import MAX_CONTENT_CHARS, ThreadId
from tokenwise.usage.datasets import dataset_json

JSON = dict[str, Any]
AgentName = Literal["triage", "data", "optimization", "actions", "reporting"]
_STRICT = ConfigDict(extra="forbid")


class Ask(BaseModel):
    model_config = _STRICT
    question: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_CONTENT_CHARS)
    ] = Field(description="The question, e.g. 'how do I cut my LLM costs?' or 'top 5 users by spend'.")
    thread_id: ThreadId | None = Field(
        default=None, description="A thread to continue (follow-ups are read in its context), or a new id."
    )
    agent: AgentName | None = Field(default=None, description="Stop the pipeline after this agent.")
    timeout_s: float = Field(default=120.0, gt=0, le=600, description="How long to wait for the answer.")


class NoArgs(BaseModel):
    model_config = _STRICT


class ReportId(BaseModel):
    model_config = _STRICT
    report_id: str = Field(min_length=1, max_length=200, description="A report id (its run's id).")


class ListReports(BaseModel):
    model_config = _STRICT
    limit: int = Field(default=20, ge=1, le=100)


class Scope(BaseModel):
    """Which requests a query covers: a period (UTC; `end` excluded) and filters."""

    model_config = _STRICT
    start: datetime | None = Field(default=None, description="ISO 8601, inclusive; UTC when no zone.")
    end: datetime | None = Field(default=None, description="ISO 8601, exclusive; UTC when no zone.")
    filters: list[Filter] = Field(default_factory=list, max_length=10)

    def plan(self, **fields: Any) -> QueryPlan:
        """The query plan over this scope; InvalidInput naming the field at fault."""
        period = None
        if self.start is not None or self.end is not None:
            period = {"start": _utc(self.start), "end": _utc(self.end)}
        try:
            return QueryPlan.model_validate({**fields, "filters": self.filters, "period": period})
        except ValidationError as exc:
            raise invalid(exc) from exc


class Spend(Scope):
    measure: Measure = Field(default="spend", description="What to total; spend is in USD.")


class Breakdown(Scope):
    by: GroupBy = Field(description="A dimension (model, feature, user, team, ...) or a time grain.")
    measure: Measure = "spend"
    top_n: int | None = Field(default=None, ge=1, le=100)


class WhatIf(Scope):
    scenario: Scenario = Field(description="The what-if, priced at list prices over the scope.")


def invalid(exc: ValidationError) -> InvalidInput:
    """The first error, naming its field (`filters.0.dimension`; a union's branch names left out)."""
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error["loc"] if isinstance(p, int) or str(p).isidentifier())
    return InvalidInput(f"{where or 'arguments'}: {error['msg']}", field=where or "arguments")


def _utc(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


class _NoEvents:
    """The sink of a query outside any run: the tools called here emit nothing."""

    def emit(self, type: str, agent_name: str, data: JSON, tool_name: str | None = None) -> None:
        return None


@dataclass(frozen=True)
class ToolSpec:
    """One tool: its name, what it does, its arguments (their JSON schema is the tool's input schema)."""

    name: str
    description: str
    args: type[BaseModel]
    run: Callable[[Toolbox, str, Any], Awaitable[JSON]]

    def input_schema(self) -> JSON:
        return self.args.model_json_schema()


class Toolbox:
    def __init__(self, services: Services) -> None:
        self.services = services

    async def call(self, user_id: str, name: str, arguments: JSON) -> JSON:
        """Run tool `name` for `user_id`; InvalidInput for bad arguments, NotFound for an unknown tool."""
        spec = TOOLS_BY_NAME.get(name)
        if spec is None:
            raise NotFound(f"no tool {name!r}", field="name")
        try:
            args = spec.args.model_validate(arguments)
        except ValidationError as exc:
            raise invalid(exc) from exc
        result = await spec.run(self, user_id, args)
        # Plain JSON, as it goes on the wire (dates as text).
        plain: JSON = json.loads(json.dumps(result, default=str))
        return plain

    # ---- a question: a run like any other --------------------------------------------------------
    async def ask(self, user_id: str, args: Ask) -> JSON:
        services = self.services
        await services.run_rate.admit(user_id)  # runs a minute, as over the WebSocket and REST
        submission = await services.chat.submit(
            user_id, args.question, thread_id=args.thread_id, create_thread=True, stop_after=args.agent
        )
        await services.runs.wake()
        run = await self._until_ended(user_id, submission.run_id, args.timeout_s)
        report = run.report or {}
        answer = report.get("answer") or {}
        return {
            "run_id": run.id,
            "thread_id": run.thread_id,
            "status": run.status,
            "report_id": run.id if report else None,
            "answer": answer.get("text") or report.get("summary"),
            "report_type": report.get("report_type"),
            "title": report.get("title"),
            "figures": answer.get("figures", []),
        }

    async def _until_ended(self, user_id: str, run_id: str, timeout_s: float) -> RunRow:
        """The run once its final event is stored (or as it is after `timeout_s`)."""
        services, ended = self.services, asyncio.Event()

        async def seen(event: RunEvent) -> None:
            if event.final:
                ended.set()

        feed = await Feed.open(services.bus, user_id, services.event_log, seen, follow_new_runs=False)
        pump = asyncio.create_task(feed.pump())
        try:
            await feed.follow(run_id, 0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ended.wait(), timeout_s)
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
            await feed.close()
        return await services.chat.get_run(user_id, run_id)

    # ---- what the user has ----------------------------------------------------------------------
    async def list_datasets(self, user_id: str, _args: NoArgs) -> JSON:
        rows = await self.services.datasets.list(user_id)
        return {"datasets": [dataset_json(row) for row in rows]}

    async def list_reports(self, user_id: str, args: ListReports) -> JSON:
        return {
            "reports": [report_summary(row) for row in await self.services.chat.reports(user_id, args.limit)]
        }

    async def get_report(self, user_id: str, args: ReportId) -> JSON:
        return report_json(await self.report_run(user_id, args.report_id))

    async def report_run(self, user_id: str, report_id: str) -> RunRow:
        """The run that wrote the report; NotFound for an unknown id, another user's or no report."""
        try:
            run = await self.services.chat.get_run(user_id, report_id)
        except NotFound:
            raise NotFound(f"no report {report_id!r}", field="report_id") from None
        if not run.report:
            raise NotFound(f"no report {report_id!r} (its run is {run.status})", field="report_id")
        return run

    # ---- queries over the user's data -----------------------------------------------------------
    def _context(self, user_id: str) -> RunContext:
        usage = self.services.datasets.usage_for(user_id)
        return RunContext(
            run_id="", user_id=user_id, thread_id="", question="", sink=_NoEvents(), usage=usage
        )

    async def _answer(self, user_id: str, plan: QueryPlan) -> JSON:
        ctx = self._context(user_id)
        result = await RUN_QUERY.fn(ctx, plan.arguments())
        scenario = await PRICE_SCENARIO.fn(ctx, plan.arguments()) if plan.scenario is not None else None
        if result.get("no_data"):
            answer: JSON = {"text": "There is no usage data yet: upload some first.", "answerable": False}
        else:
            answer = write(plan, result, scenario)
        return {"answer": answer, "plan": plan.arguments(), **({"scenario": scenario} if scenario else {})}

    async def spend(self, user_id: str, args: Spend) -> JSON:
        return await self._answer(user_id, args.plan(intent="total", measure=args.measure))

    async def breakdown(self, user_id: str, args: Breakdown) -> JSON:
        plan = args.plan(intent="breakdown", measure=args.measure, group_by=args.by, top_n=args.top_n)
        return await self._answer(user_id, plan)

    async def what_if(self, user_id: str, args: WhatIf) -> JSON:
        return await self._answer(user_id, args.plan(intent="what_if", scenario=args.scenario))


def report_summary(run: RunRow) -> JSON:
    report = run.report or {}
    return {
        "report_id": run.id,
        "thread_id": run.thread_id,
        "title": report.get("title"),
        "report_type": report.get("report_type"),
        "created_at": (run.finished_at or run.created_at).isoformat(),
    }


def report_json(run: RunRow) -> JSON:
    """A report as `GET /api/reports/{id}` shows it."""
    report = run.report or {}
    return {
        "id": run.id,
        "run_id": run.id,
        "thread_id": run.thread_id,
        "created_at": (run.finished_at or run.created_at).isoformat(),
        "report_type": report.get("report_type"),
        "report": report,
        "markdown": run.report_markdown or "",
    }


TOOLS = (
    ToolSpec(
        "ask",
        "Ask Tokenwise a question about your AI/LLM usage and cost. Runs the agents' pipeline (triage, "
        "data, optimization, actions, reporting) and returns the answer's text and the report id.",
        Ask,
        Toolbox.ask,
    ),
    ToolSpec(
        "list_datasets",
        "List your usage datasets (uploads, event streams, connectors).",
        NoArgs,
        Toolbox.list_datasets,
    ),
    ToolSpec("list_reports", "List your reports, newest first.", ListReports, Toolbox.list_reports),
    ToolSpec(
        "get_report",
        "Get one report: the structured report (answer, measurements, strategies, actions) and its Markdown.",
        ReportId,
        Toolbox.get_report,
    ),
    ToolSpec(
        "spend",
        "Total spend (or requests, tokens, errors, latency) of your usage over a period, with filters.",
        Spend,
        Toolbox.spend,
    ),
    ToolSpec(
        "breakdown",
        "Spend (or another measure) broken down by model, feature, user, team, project, API key, provider, "
        "or by hour, day, weekday, week or month, ranked.",
        Breakdown,
        Toolbox.breakdown,
    ),
    ToolSpec(
        "what_if",
        "Price a what-if over your usage at list prices: routing to another model, output caps, cache hit "
        "rates, prompt caching, batch APIs, context trimming, price changes, traffic growth.",
        WhatIf,
        Toolbox.what_if,
    ),
)
TOOLS_BY_NAME = {spec.name: spec for spec in TOOLS}


def tools_json() -> list[JSON]:
    """Each tool with its JSON schema (`GET /api/mcp/tools`)."""
    return [{"name": t.name, "description": t.description, "input_schema": t.input_schema()} for t in TOOLS]
