"""Operational metrics: Prometheus series for /metrics and the same counts for /ws/health."""

from __future__ import annotations

from collections import Counter as Tally

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """One registry per app (no process-global state), so several apps can live in one test process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self._active = Gauge("tokenwise_ws_connections_active", "Open WebSocket connections.", registry=r)
        self._connections = Counter("tokenwise_ws_connections", "Accepted WebSocket connections.", registry=r)
        self._messages = Counter("tokenwise_ws_messages", "Client frames processed.", registry=r)
        self._errors = Counter("tokenwise_ws_errors", "Error frames sent, by code.", ["code"], registry=r)
        self._closes = Counter(
            "tokenwise_ws_closes", "Connections closed, by close code.", ["code"], registry=r
        )
        self._events = Counter(
            "tokenwise_events_sent",
            "Run events sent to clients, by type and transport.",
            ["type", "transport"],
            registry=r,
        )
        self._event_children: dict[tuple[str, str], Counter] = {}
        self._auth = Counter(
            "tokenwise_ws_auth", "WebSocket authentication attempts.", ["result", "reason"], registry=r
        )
        self._run_duration = Histogram(
            "tokenwise_run_duration_seconds",
            "Time from run start to its end.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self._first_event = Histogram(
            "tokenwise_time_to_first_event_seconds",
            "Time from receiving a user message to sending its run's first event.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self._otlp_spans = Counter(
            "tokenwise_otlp_spans",
            "Spans received over OTLP, by outcome: stored (GenAI usage), ignored (not GenAI), rejected.",
            ["outcome"],
            registry=r,
        )
        self.active_connections = 0
        self.total_connections = 0
        self.messages_processed = 0
        self.errors = 0
        self.auth_successes = 0
        self.auth_failures: Tally[str] = Tally()

    def connection_opened(self) -> None:
        self.active_connections += 1
        self.total_connections += 1
        self._active.inc()
        self._connections.inc()

    def connection_closed(self, code: int) -> None:
        self.active_connections -= 1
        self._active.dec()
        self._closes.labels(str(code)).inc()

    def rejected(self, code: int) -> None:
        """A connection refused before or right after accept (HTTP status or close code)."""
        self._closes.labels(str(code)).inc()

    def message(self) -> None:
        self.messages_processed += 1
        self._messages.inc()

    def error(self, code: str) -> None:
        self.errors += 1
        self._errors.labels(code).inc()

    def event_sent(self, type: str, transport: str = "websocket") -> None:
        # once per event sent: the labelled child is looked up once per (type, transport), not each time
        child = self._event_children.get((type, transport))
        if child is None:
            child = self._event_children[(type, transport)] = self._events.labels(type, transport)
        child.inc()

    def auth(self, ok: bool, reason: str = "ok") -> None:
        if ok:
            self.auth_successes += 1
        else:
            self.auth_failures[reason] += 1
        self._auth.labels("success" if ok else "failure", reason).inc()

    def otlp_spans(self, stored: int, ignored: int, rejected: int) -> None:
        for outcome, count in (("stored", stored), ("ignored", ignored), ("rejected", rejected)):
            if count:
                self._otlp_spans.labels(outcome).inc(count)

    def run_finished(self, seconds: float) -> None:
        self._run_duration.observe(seconds)

    def first_event(self, seconds: float) -> None:
        self._first_event.observe(seconds)

    def websocket_summary(self) -> dict[str, object]:
        """The `metrics` object of GET /ws/health."""
        attempts = self.auth_successes + sum(self.auth_failures.values())
        return {
            "websocket": {
                "active_connections": self.active_connections,
                "total_connections": self.total_connections,
                "messages_processed": self.messages_processed,
                "error_rate": round(self.errors / self.messages_processed, 4)
                if self.messages_processed
                else 0.0,
            },
            "authentication": {
                "success_rate": round(self.auth_successes / attempts, 4) if attempts else 1.0,
                "failures_by_reason": dict(self.auth_failures),
            },
        }

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
