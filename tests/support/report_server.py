"""The HTTP plumbing shared by the stand-ins of the providers' report APIs (see openai_admin_server.py and
anthropic_admin_server.py): a real server on a free loopback port that pages through daily buckets.

The test puts results into `days` (UTC midnight -> the results of that day's bucket) and may set `now`,
the stand-in's clock: a bucket is served when it has started by `now`, so the day of `now` is the open
bucket, as with the real APIs. Every request is recorded. `failure` makes every call fail with that
status, and its error message echoes the key the caller sent (as careless APIs do), so tests can check
that Tokenwise never repeats it.
"""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

DAY = timedelta(days=1)


@dataclass
class Request:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


def midnight(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def page_token(start: datetime) -> str:
    return "page_" + base64.urlsafe_b64encode(start.isoformat().encode()).decode()


def token_start(token: str) -> datetime:
    return datetime.fromisoformat(base64.urlsafe_b64decode(token.removeprefix("page_")).decode())


@dataclass
class ReportServer:
    """One provider's report API; subclasses name the paths, the auth check and the wire shapes."""

    admin_key: str
    days: dict[datetime, list[dict[str, Any]]] = field(default_factory=dict)
    now: datetime | None = None  # None: the real clock
    page_size: int | None = None  # buckets per page, below the caller's `limit` (to exercise paging)
    failure: int | None = None
    requests: list[Request] = field(default_factory=list)
    paths: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                headers = {k.lower(): v for k, v in self.headers.items()}
                owner.requests.append(Request(parts.path, query, headers))
                status, body = owner.answer(parts.path, query, headers)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        """The base URL a connector is given (without /v1)."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> ReportServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def clock(self) -> datetime:
        return self.now or datetime.now(UTC)

    def answer(self, path: str, query: dict[str, list[str]], headers: dict[str, str]) -> tuple[int, Any]:
        if path not in self.paths:
            return 404, self.error("not_found", "no such endpoint")
        sent = self.key_of(headers)
        if sent != self.admin_key:
            return 401, self.error("authentication_error", f"Incorrect API key provided: {sent}")
        if self.failure is not None:
            return self.failure, self.error("server_error", f"overloaded (key {sent})")
        try:
            start, end, limit = self.window(query)
        except (KeyError, ValueError) as exc:
            return 400, self.error("invalid_request_error", f"bad parameters: {exc}")
        token = query.get("page", [None])[0]
        first = token_start(token) if token else midnight(start)
        starts = []
        day = first
        while day <= self.clock() and day + DAY <= end and len(starts) < limit + 1:
            starts.append(day)
            day += DAY
        more = len(starts) > limit
        served = starts[:limit]
        body = {
            "data": [self.bucket(day, self.results(path, day)) for day in served],
            "has_more": more,
            "next_page": page_token(starts[limit]) if more else None,
        }
        return 200, self.page(body)

    def results(self, path: str, day: datetime) -> list[dict[str, Any]]:
        return list(self.days.get(day, []))

    def limit_of(self, query: dict[str, list[str]], default: int, most: int) -> int:
        limit = min(int(query.get("limit", [str(default)])[0]), most)
        return min(limit, self.page_size) if self.page_size else limit

    # Provider specifics, named by each subclass
    def key_of(self, headers: dict[str, str]) -> str | None:
        raise NotImplementedError

    def window(self, query: dict[str, list[str]]) -> tuple[datetime, datetime, int]:
        """(start, end, limit) of a request; KeyError / ValueError for a bad one."""
        raise NotImplementedError

    def bucket(self, day: datetime, results: list[dict[str, Any]]) -> dict[str, Any]:
        raise NotImplementedError

    def error(self, kind: str, message: str) -> dict[str, Any]:
        raise NotImplementedError

    def page(self, body: dict[str, Any]) -> dict[str, Any]:
        return body
