"""Test-only fault injection: a genuine exception at a named point, to prove how bugs are reported.

`TOKENWISE_FAULT_INJECTION=message_handling` makes every chat message raise inside its handler, so the
connection closes with 1011 `internal_error:<error_id>` and the same id is logged with the traceback.
The setting is refused at start when `TOKENWISE_ENVIRONMENT=production` (config.py).
"""

from __future__ import annotations

from enum import StrEnum


class FaultPoint(StrEnum):
    """Where an injected fault fires."""

    MESSAGE_HANDLING = "message_handling"  # the handling of a user_message frame on the WebSocket
    # The worker process dies (as by kill -9) right after committing a run's final event, before
    # publishing it: the one event no later event reveals as missing (the outbox covers it).
    DIE_BEFORE_FINAL_PUBLISH = "die_before_final_publish"


class InjectedFault(RuntimeError):
    """A bug on purpose. Deliberately not a TokenwiseError: it must take the path of a real bug."""


def die_at(configured: FaultPoint | None, point: FaultPoint) -> None:
    """End the process at once, without cleanup, when `point` is the configured fault point."""
    if configured is point:
        import os

        os._exit(137)


def trip(configured: FaultPoint | None, point: FaultPoint) -> None:
    """Raise InjectedFault when `point` is the configured fault point."""
    if configured is point:
        raise InjectedFault(f"fault injected into {point.value} (TOKENWISE_FAULT_INJECTION)")
