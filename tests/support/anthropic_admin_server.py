"""A local stand-in for Anthropic's Admin usage and cost reports (`/v1/organizations/usage_report/messages`,
`/v1/organizations/cost_report`), in their wire format: `{data: [{starting_at, ending_at, results}],
has_more, next_page}` with RFC 3339 bounds, `starting_at` / `ending_at` / `limit` / `page`, and the
`x-api-key` + `anthropic-version` headers (both required). See report_server.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from support.report_server import DAY, ReportServer

USAGE = "/v1/organizations/usage_report/messages"
COSTS = "/v1/organizations/cost_report"


def usage_result(
    model: str, workspace: str | None, uncached: int, write_5m: int, write_1h: int, read: int, out: int
) -> dict[str, Any]:
    return {
        "uncached_input_tokens": uncached,
        "cache_creation": {"ephemeral_5m_input_tokens": write_5m, "ephemeral_1h_input_tokens": write_1h},
        "cache_read_input_tokens": read,
        "output_tokens": out,
        "server_tool_use": {"web_search_requests": 0},
        "model": model,
        "service_tier": "standard",
        "workspace_id": workspace,
        "api_key_id": None,
        "context_window": "0-200k",
    }


def cost_result(description: str, workspace: str | None, cents: str) -> dict[str, Any]:
    """One cost line: `amount` is a decimal string in cents."""
    return {"currency": "USD", "amount": cents, "workspace_id": workspace, "description": description,
            "cost_type": "tokens", "context_window": "0-200k", "model": "claude-sonnet-4-5",
            "service_tier": "standard", "token_type": "uncached_input_tokens"}  # fmt: skip


def _rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class AnthropicAdminServer(ReportServer):
    """`days` holds usage-report results; `cost_days` the cost-report results."""

    paths: tuple[str, ...] = (USAGE, COSTS)

    def __post_init__(self) -> None:
        self.cost_days: dict[datetime, list[dict[str, Any]]] = {}
        super().__post_init__()

    def results(self, path: str, day: datetime) -> list[dict[str, Any]]:
        return list((self.cost_days if path == COSTS else self.days).get(day, []))

    def key_of(self, headers: dict[str, str]) -> str | None:
        if headers.get("anthropic-version") != "2023-06-01":
            return None
        return headers.get("x-api-key")

    def window(self, query: dict[str, list[str]]) -> tuple[datetime, datetime, int]:
        start = datetime.fromisoformat(query["starting_at"][0].replace("Z", "+00:00"))
        end = query.get("ending_at", [None])[0]
        until = datetime.fromisoformat(end.replace("Z", "+00:00")) if end else self.clock() + DAY
        return start, until, self.limit_of(query, 7, 31)

    def bucket(self, day: datetime, results: list[dict[str, Any]]) -> dict[str, Any]:
        return {"starting_at": _rfc3339(day), "ending_at": _rfc3339(day + DAY), "results": results}

    def error(self, kind: str, message: str) -> dict[str, Any]:
        return {"type": "error", "error": {"type": kind, "message": message}}
