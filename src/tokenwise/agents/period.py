"""The period a question asks about, as bounds on the data: "last 7 days", "yesterday", or dates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

Bounds = tuple[datetime | None, datetime | None]


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def resolve(time_range: dict[str, Any] | None, data_end: str | None) -> Bounds | None:
    """[start, end) for triage's `time_range`, or None when the question names no period.

    Relative spans count back from the newest request in the data, not from today: uploaded logs are
    often history, and "the last 7 days" of them is what the user means.
    """
    if not time_range:
        return None
    if "start_at" in time_range or "end_at" in time_range:
        # exact bounds, as the question's plan read them
        start, end = time_range.get("start_at"), time_range.get("end_at")
        return (_moment(str(start)) if start else None), (_moment(str(end)) if end else None)
    if "days" in time_range:
        if data_end is None:
            return None
        return _moment(data_end) - timedelta(days=float(time_range["days"])), None
    start = _moment(str(time_range["start"])) if time_range.get("start") else None
    # A date as the end means that whole day; a single date ("on 2025-03-04") means just that day.
    last = time_range.get("end") or time_range.get("start")
    end = _moment(str(last)) + timedelta(days=1) if last else None
    return start, end


def describe(time_range: dict[str, Any]) -> str:
    """The period as the user put it."""
    if text := time_range.get("text"):
        return str(text)
    return f"{time_range.get('start')} to {time_range.get('end', 'now')}"
