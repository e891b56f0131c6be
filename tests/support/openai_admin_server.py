"""A local stand-in for OpenAI's Usage and Costs APIs (`/v1/organization/usage/completions`,
`/v1/organization/costs`), in their wire format: `{object: "page", data: [bucket], has_more, next_page}`,
`start_time` / `end_time` in Unix seconds, `limit` buckets per page, `page` = the previous `next_page`,
Bearer auth with the admin key. Only the external API is replaced (see report_server.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from support.report_server import DAY, ReportServer

USAGE = "/v1/organization/usage/completions"
COSTS = "/v1/organization/costs"


def usage_result(model: str, project: str, inp: int, cached: int, out: int, requests: int) -> dict[str, Any]:
    """One completions result (`input_tokens` includes `input_cached_tokens`)."""
    return {
        "object": "organization.usage.completions.result",
        "input_tokens": inp,
        "output_tokens": out,
        "input_cached_tokens": cached,
        "input_audio_tokens": 0,
        "output_audio_tokens": 0,
        "num_model_requests": requests,
        "project_id": project,
        "user_id": None,
        "api_key_id": None,
        "model": model,
        "batch": False,
        "service_tier": None,
    }


def cost_result(line_item: str, project: str, usd: float) -> dict[str, Any]:
    return {
        "object": "organization.costs.result",
        "amount": {"value": usd, "currency": "usd"},
        "line_item": line_item,
        "project_id": project,
        "api_key_id": None,
        "quantity": None,
    }


@dataclass
class OpenAIAdminServer(ReportServer):
    """`days` holds completions results; `cost_days` the cost results of the Costs API."""

    paths: tuple[str, ...] = (USAGE, COSTS)

    def __post_init__(self) -> None:
        self.cost_days: dict[datetime, list[dict[str, Any]]] = {}
        super().__post_init__()

    def results(self, path: str, day: datetime) -> list[dict[str, Any]]:
        return list((self.cost_days if path == COSTS else self.days).get(day, []))

    def key_of(self, headers: dict[str, str]) -> str | None:
        scheme, _, key = headers.get("authorization", "").partition(" ")
        return key if scheme == "Bearer" else None

    def window(self, query: dict[str, list[str]]) -> tuple[datetime, datetime, int]:
        if query.get("bucket_width", ["1d"])[0] != "1d":
            raise ValueError("this stand-in serves bucket_width=1d only")
        start = datetime.fromtimestamp(int(query["start_time"][0]), UTC)
        end = datetime.fromtimestamp(int(query["end_time"][0]), UTC) if "end_time" in query else None
        return start, end or self.clock() + DAY, self.limit_of(query, 7, 31)

    def bucket(self, day: datetime, results: list[dict[str, Any]]) -> dict[str, Any]:
        start = int(day.timestamp())
        return {"object": "bucket", "start_time": start, "end_time": start + 86_400, "results": results}

    def error(self, kind: str, message: str) -> dict[str, Any]:
        return {"error": {"message": message, "type": "invalid_request_error", "code": kind, "param": None}}

    def page(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"object": "page", **body}
