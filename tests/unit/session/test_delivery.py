"""The delivery tracker turns a lossy, repeating live stream plus storage into exactly-once, in order."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tokenwise.session.delivery import DeliveryTracker, Verdict


def test_a_run_that_starts_while_connected_is_followed_from_seq_1() -> None:
    tracker = DeliveryTracker()
    assert tracker.offer("r", 1).verdict is Verdict.DELIVER


def test_a_run_already_under_way_is_ignored_until_resumed() -> None:
    tracker = DeliveryTracker()
    assert tracker.offer("r", 7).verdict is Verdict.IGNORE
    tracker.follow("r", after_seq=7)
    assert tracker.offer("r", 8).verdict is Verdict.DELIVER


def test_duplicates_are_dropped_and_gaps_reported_inclusive() -> None:
    tracker = DeliveryTracker()
    tracker.follow("r", after_seq=3)
    assert tracker.offer("r", 2).verdict is Verdict.DROP
    gap = tracker.offer("r", 9)
    assert (gap.verdict, gap.missing_from, gap.missing_to) == (Verdict.GAP, 4, 8)


def test_a_finished_run_is_forgotten() -> None:
    tracker = DeliveryTracker()
    tracker.follow("r")
    tracker.delivered("r", 1, final=True)
    assert tracker.following() == {}
    assert tracker.offer("r", 2).verdict is Verdict.IGNORE


@given(
    total=st.integers(min_value=1, max_value=60),
    after=st.integers(min_value=0, max_value=60),
    live=st.lists(st.integers(min_value=1, max_value=60), max_size=200),
)
def test_any_live_order_with_gap_fill_delivers_each_seq_once_in_order(
    total: int, after: int, live: list[int]
) -> None:
    """Whatever the bus does (drop, repeat, reorder), the client sees after+1..total exactly once."""
    after = min(after, total)
    stored = list(range(1, total + 1))
    tracker = DeliveryTracker()
    sent: list[int] = []

    def deliver(seq: int) -> None:
        sent.append(seq)
        tracker.delivered("r", seq, final=seq == total)

    tracker.follow("r", after)
    for seq in stored[after:]:  # the resume replay reads storage
        if tracker.next_seq("r") == seq:
            deliver(seq)
        if seq == 1 + after + len(stored) // 2:
            break  # the replay may stop anywhere; live events carry on
    for seq in [s for s in live if s <= total] + [total]:
        offer = tracker.offer("r", seq)
        if offer.verdict is Verdict.GAP:
            for missing in range(offer.missing_from, offer.missing_to + 1):
                deliver(missing)
            offer = tracker.offer("r", seq)
        if offer.verdict is Verdict.DELIVER:
            deliver(seq)
    assert sent == list(range(after + 1, total + 1))


def test_late_live_copies_of_a_finished_run_are_not_taken_for_a_new_run() -> None:
    """A resume that replays a whole run from storage, then meets the run's queued live events."""
    tracker = DeliveryTracker()
    tracker.follow("r", 0)
    tracker.delivered("r", 1)
    tracker.delivered("r", 2, final=True)
    assert tracker.offer("r", 1).verdict is Verdict.IGNORE
    tracker.follow("r", 0)  # an explicit resume still replays it
    assert tracker.offer("r", 1).verdict is Verdict.DELIVER
