"""The rules of a report pull, without I/O: requests, bucket windows, merging and the resume cursor.

A sync pulls every bucket from its cursor up to now, page by page. Buckets are days (`bucket_width=1d`).
The pulled buckets replace the stored ones they cover, so a bucket pulled twice (the day that was still
open at the last sync, or any day pulled again) is stored once, with its latest figures. The next sync
starts at the first bucket that was still open (its end after now), else at the end of the last one, but
never later than `REPULL_CLOSED_DAYS` closed days before today: the providers revise recent days after
they close (late requests, corrections), and those revisions replace what was pulled before.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from tokenwise.errors import InvalidInput

LOOKBACK = timedelta(days=30)  # how far back the first sync of a connector reaches
DAY = timedelta(days=1)
# Closed days every sync pulls again, whatever its cursor says: the days a provider may still revise.
REPULL_CLOSED_DAYS = 2
ANTHROPIC_VERSION = "2023-06-01"
Bucket = dict[str, Any]


class Kind(StrEnum):
    OPENAI_USAGE = "openai_usage"
    OPENAI_COSTS = "openai_costs"
    ANTHROPIC_USAGE = "anthropic_usage"
    ANTHROPIC_COSTS = "anthropic_costs"

    @property
    def provider(self) -> str:
        return self.value.split("_")[0]


@dataclass(frozen=True)
class Endpoint:
    path: str
    group_by: tuple[str, ...]  # model is always asked for: rows without one cannot be priced
    limit: int  # buckets per page, the API's maximum for 1d


ENDPOINTS = {
    Kind.OPENAI_USAGE: Endpoint("/v1/organization/usage/completions",
                                ("model", "project_id", "api_key_id", "batch"), 31),
    Kind.OPENAI_COSTS: Endpoint("/v1/organization/costs", ("project_id", "line_item"), 180),
    Kind.ANTHROPIC_USAGE: Endpoint("/v1/organizations/usage_report/messages",
                                   ("model", "service_tier", "workspace_id"), 31),
    Kind.ANTHROPIC_COSTS: Endpoint("/v1/organizations/cost_report", ("workspace_id", "description"), 31),
}  # fmt: skip
DEFAULT_BASE_URLS = {"openai": "https://api.openai.com", "anthropic": "https://api.anthropic.com"}


class PageError(ValueError):
    """An answer that is not a report page (the message says what is wrong, never the key)."""


def headers(kind: Kind, admin_key: str) -> dict[str, str]:
    """The auth headers of every request of `kind`."""
    if kind.provider == "openai":
        return {"Authorization": f"Bearer {admin_key}"}
    return {"x-api-key": admin_key, "anthropic-version": ANTHROPIC_VERSION}


def day_start(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def window_start(cursor: str | None, now: datetime) -> datetime:
    """Where a sync starts: the cursor, or `LOOKBACK` before today for the first sync; in either case no
    later than the start of the last `REPULL_CLOSED_DAYS` closed days, which are pulled again."""
    today = day_start(now)
    if cursor:
        return min(datetime.fromisoformat(cursor).astimezone(UTC), today - REPULL_CLOSED_DAYS * DAY)
    return today - LOOKBACK


def params(kind: Kind, start: datetime, now: datetime, page: str | None) -> tuple[tuple[str, str], ...]:
    """The query of one page request (`page`: the previous answer's `next_page`)."""
    endpoint = ENDPOINTS[kind]
    if kind.provider == "openai":
        query = [("start_time", str(int(start.timestamp()))), ("bucket_width", "1d"),
                 ("limit", str(endpoint.limit))]  # fmt: skip
        query += [("group_by", name) for name in endpoint.group_by]
    else:
        end = day_start(now) + DAY  # through the end of today: the open bucket too
        query = [("starting_at", _rfc3339(start)), ("ending_at", _rfc3339(end)), ("bucket_width", "1d"),
                 ("limit", str(endpoint.limit))]  # fmt: skip
        query += [("group_by[]", name) for name in endpoint.group_by]
    if page:
        query.append(("page", page))
    return tuple(query)


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Page:
    buckets: list[Bucket]
    next_page: str | None  # None: the last page


def read_page(kind: Kind, body: Any) -> Page:
    """The buckets and the next page token of an answer; PageError for anything else."""
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise PageError("the provider's answer is not a report page (no `data` list)")
    buckets = body["data"]
    for bucket in buckets:
        if not isinstance(bucket, dict) or not isinstance(bucket.get("results"), list):
            raise PageError("the provider's answer has a bucket without a `results` list")
        bounds(kind, bucket)
    token = body.get("next_page")
    more = bool(body.get("has_more")) and isinstance(token, str) and bool(token)
    return Page(buckets, token if more else None)


def bounds(kind: Kind, bucket: Bucket) -> tuple[datetime, datetime]:
    """A bucket's (start, end) in UTC."""
    try:
        if kind.provider == "openai":
            start = datetime.fromtimestamp(float(bucket["start_time"]), UTC)
            return start, datetime.fromtimestamp(float(bucket["end_time"]), UTC)
        return _parse(bucket["starting_at"]), _parse(bucket["ending_at"])
    except (KeyError, TypeError, ValueError) as exc:
        raise PageError("the provider's answer has a bucket without a valid start and end") from exc


def _parse(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def merge(kind: Kind, stored: Iterable[Bucket], pulled: list[Bucket]) -> list[Bucket]:
    """The stored buckets with the pulled ones in place of those they cover, by start; empty ones dropped."""
    if not pulled:
        return [bucket for bucket in stored if bucket["results"]]
    first = min(bounds(kind, bucket)[0] for bucket in pulled)
    last = max(bounds(kind, bucket)[1] for bucket in pulled)
    kept: dict[datetime, Bucket] = {}
    for bucket in stored:
        start, end = bounds(kind, bucket)
        if end <= first or start >= last:  # outside what this pull covered
            kept[start] = bucket
    for bucket in pulled:
        kept[bounds(kind, bucket)[0]] = bucket
    return [kept[start] for start in sorted(kept) if kept[start]["results"]]


def next_cursor(kind: Kind, pulled: list[Bucket], since: datetime, now: datetime) -> str:
    """Where the next sync starts: the first bucket still open at `now`, else the end of the last."""
    if not pulled:
        return since.isoformat()
    spans = sorted(bounds(kind, bucket) for bucket in pulled)
    open_starts = [start for start, end in spans if end > now]
    return (open_starts[0] if open_starts else spans[-1][1]).isoformat()


def page_file(buckets: list[Bucket]) -> dict[str, Any]:
    """The stored buckets as one report page: the shape `usage.reports` reads."""
    return {"object": "page", "data": buckets, "has_more": False, "next_page": None}


def check_base_url(url: str, *, allow_http: bool) -> str:
    """A provider base URL without a trailing slash; InvalidInput unless https (http: development)."""
    url = url.strip().rstrip("/")
    schemes = ("https://", "http://") if allow_http else ("https://",)
    rest = url.split("://", 1)[-1]
    if not url.lower().startswith(schemes) or not rest or any(c in rest for c in "?#@ "):
        allowed = "an http(s)" if allow_http else "an https"
        message = f"base_url: expected {allowed} URL such as https://api.openai.com"
        raise InvalidInput(message, field="base_url")
    return url
