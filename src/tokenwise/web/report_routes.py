"""Reports over HTTP: a finished run's report as JSON, or its Markdown or table (CSV) as a download.

A report is stored with the run that produced it, so its id is the run's id (`report_id` in the final
event's `data.result` and in `GET /api/runs/{id}`). Another user's report is not found.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from tokenwise.agents.rendering import table_csv
from tokenwise.db.tables import RunRow
from tokenwise.errors import NotFound
from tokenwise.web.deps import AppServices, CurrentClaims

router = APIRouter(prefix="/api", tags=["reports"])


async def _report_run(services: AppServices, user_id: str, report_id: str) -> RunRow:
    try:
        run = await services.chat.get_run(user_id, report_id)
    except NotFound:
        raise NotFound(f"no report {report_id!r}", field="report_id") from None
    if not run.report:
        raise NotFound(f"no report {report_id!r} (its run is {run.status})", field="report_id")
    return run


# Declared before `/reports/{report_id}`, which would otherwise take `<id>.md` / `<id>.csv` as an id.
@router.get("/reports/{report_id}.md")
async def report_markdown(report_id: str, claims: CurrentClaims, services: AppServices) -> Response:
    """The report's Markdown, as a file to download."""
    run = await _report_run(services, claims.user_id, report_id)
    return Response(
        content=run.report_markdown or "",
        media_type="text/markdown; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="tokenwise-report-{run.id}.md"'},
    )


@router.get("/reports/{report_id}.csv")
async def report_csv(report_id: str, claims: CurrentClaims, services: AppServices) -> Response:
    """The report's table (the answer's, else spend by model) as CSV; formulas from the data are defused."""
    run = await _report_run(services, claims.user_id, report_id)
    content = table_csv(run.report or {})
    if content is None:
        raise NotFound(f"report {report_id!r} has no table", field="report_id")
    return Response(
        content=content,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="tokenwise-report-{run.id}.csv"'},
    )


@router.get("/reports/{report_id}")
async def get_report(report_id: str, claims: CurrentClaims, services: AppServices) -> dict[str, Any]:
    """The structured report and its Markdown."""
    run = await _report_run(services, claims.user_id, report_id)
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
