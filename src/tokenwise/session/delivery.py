"""Per-connection delivery order: every followed run is delivered in seq order, each seq exactly once.

Events reach a connection from the live bus, which may skip (a slow consumer overflows its queue) or
repeat (a resume replays from storage while live events keep coming). The tracker turns that into a
gap-free, duplicate-free stream: the adapter asks `offer()` what to do with each live event and reads
any gap back from storage, where every event is stored before it is published.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from enum import Enum

# Finished runs remembered per connection, so late live copies of their events are not taken for a new run.
_FINISHED_MEMORY = 1024


class Verdict(Enum):
    DELIVER = "deliver"  # the next expected event
    DROP = "drop"  # already delivered
    GAP = "gap"  # newer than expected: deliver the stored events in between first
    IGNORE = "ignore"  # a run this connection does not follow


@dataclass(frozen=True)
class Offer:
    verdict: Verdict
    # For GAP: the missing range, inclusive.
    missing_from: int = 0
    missing_to: int = 0


class DeliveryTracker:
    """Which runs a connection follows, and the next seq it owes the client for each."""

    def __init__(self) -> None:
        self._next: dict[str, int] = {}
        self._finished: OrderedDict[str, None] = OrderedDict()

    def follow(self, run_id: str, after_seq: int = 0) -> None:
        """Deliver this run from `after_seq + 1` on (a resume, or a run this connection started)."""
        self._finished.pop(run_id, None)
        self._next[run_id] = after_seq + 1

    def following(self) -> dict[str, int]:
        """Followed runs and the next seq owed for each."""
        return dict(self._next)

    def next_seq(self, run_id: str) -> int | None:
        return self._next.get(run_id)

    def knows(self, run_id: str) -> bool:
        """Followed, or finished on this connection (one of the last `_FINISHED_MEMORY`)."""
        return run_id in self._next or run_id in self._finished

    def offer(self, run_id: str, seq: int) -> Offer:
        """What to do with a live event."""
        expected = self._next.get(run_id)
        if expected is None:
            if run_id in self._finished:
                return Offer(Verdict.IGNORE)
            # A run that starts while the connection is open is followed from its first event; one that
            # was already under way is followed only on request (resume), from the seq the client names.
            if seq != 1:
                return Offer(Verdict.IGNORE)
            self._next[run_id] = expected = 1
        if seq < expected:
            return Offer(Verdict.DROP)
        if seq > expected:
            return Offer(Verdict.GAP, expected, seq - 1)
        return Offer(Verdict.DELIVER)

    def delivered(self, run_id: str, seq: int, *, final: bool = False) -> None:
        """Record that `seq` went out; after a run's final event the run is forgotten."""
        if final:
            self._next.pop(run_id, None)
            self._finished[run_id] = None
            if len(self._finished) > _FINISHED_MEMORY:
                self._finished.popitem(last=False)
        else:
            self._next[run_id] = seq + 1
