"""The pull rules without I/O: requests, pages, how pulled buckets replace stored ones, the resume cursor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tokenwise.connectors import pulls
from tokenwise.connectors.pulls import Kind, PageError
from tokenwise.errors import InvalidInput

DAY = timedelta(days=1)
D0 = datetime(2026, 3, 1, tzinfo=UTC)


def openai_bucket(day: int, *values: float) -> dict[str, Any]:
    start = int((D0 + day * DAY).timestamp())
    results = [{"amount": {"value": v, "currency": "usd"}, "line_item": "x"} for v in values]
    return {"object": "bucket", "start_time": start, "end_time": start + 86_400, "results": results}


def anthropic_bucket(day: int, *cents: str) -> dict[str, Any]:
    start, end = D0 + day * DAY, D0 + (day + 1) * DAY
    return {"starting_at": start.strftime("%Y-%m-%dT%H:%M:%SZ"), "ending_at": end.isoformat(),
            "results": [{"amount": c} for c in cents]}  # fmt: skip


def test_requests_name_the_window_width_groups_and_page() -> None:
    now = D0 + 3 * DAY + timedelta(hours=5)
    first = pulls.window_start(None, now)
    assert first == D0 + 3 * DAY - pulls.LOOKBACK
    query = dict(pulls.params(Kind.OPENAI_USAGE, D0, now, None))
    assert query == {
        "start_time": str(int(D0.timestamp())),
        "bucket_width": "1d",
        "limit": "31",
        "group_by": "batch",
    }  # a dict keeps the last group_by
    groups = [v for k, v in pulls.params(Kind.OPENAI_USAGE, D0, now, "p2") if k == "group_by"]
    assert "model" in groups
    assert ("page", "p2") in pulls.params(Kind.OPENAI_USAGE, D0, now, "p2")
    anthropic = pulls.params(Kind.ANTHROPIC_USAGE, D0, now, None)
    assert ("starting_at", "2026-03-01T00:00:00Z") in anthropic
    assert ("ending_at", "2026-03-05T00:00:00Z") in anthropic  # through the end of today
    assert ("group_by[]", "model") in anthropic
    assert pulls.headers(Kind.OPENAI_COSTS, "k") == {"Authorization": "Bearer k"}
    assert pulls.headers(Kind.ANTHROPIC_COSTS, "k") == {"x-api-key": "k", "anthropic-version": "2023-06-01"}
    assert pulls.window_start((D0 + DAY).isoformat(), now) == D0 + DAY


def test_a_sync_pulls_the_last_closed_days_again_whatever_its_cursor() -> None:
    now = D0 + 3 * DAY + timedelta(hours=5)  # today is D0 + 3 days, still open
    trailing = D0 + 3 * DAY - pulls.REPULL_CLOSED_DAYS * DAY
    assert pulls.REPULL_CLOSED_DAYS == 2
    assert pulls.window_start((D0 + 3 * DAY).isoformat(), now) == trailing  # the cursor is today
    assert pulls.window_start((D0 + 4 * DAY).isoformat(), now) == trailing
    assert pulls.window_start(D0.isoformat(), now) == D0  # an older cursor (a page limit) is kept
    # Re-pulled days replace the stored ones: a revised day is stored once, with its new figures.
    stored = [openai_bucket(0, 1.0), openai_bucket(1, 2.0), openai_bucket(2, 3.0)]
    merged = pulls.merge(Kind.OPENAI_COSTS, stored, [openai_bucket(1, 2.5), openai_bucket(2, 3.0, 0.5)])
    amounts = [[r["amount"]["value"] for r in bucket["results"]] for bucket in merged]
    assert amounts == [[1.0], [2.5], [3.0, 0.5]]


def test_pages_are_read_and_anything_else_refused() -> None:
    page = pulls.read_page(Kind.OPENAI_COSTS, {"data": [openai_bucket(0, 1.0)], "has_more": True,
                                                "next_page": "page_2"})  # fmt: skip
    assert (len(page.buckets), page.next_page) == (1, "page_2")
    last = pulls.read_page(Kind.ANTHROPIC_COSTS, {"data": [anthropic_bucket(0)], "has_more": False,
                                                   "next_page": "ignored"})  # fmt: skip
    assert last.next_page is None
    for body in ([], {"data": None}, {"data": [{"results": []}]}, {"data": [{"start_time": 1}]}):
        with pytest.raises(PageError):
            pulls.read_page(Kind.OPENAI_COSTS, body)


@pytest.mark.parametrize(("kind", "bucket"), [(Kind.OPENAI_COSTS, openai_bucket),
                                              (Kind.ANTHROPIC_COSTS, anthropic_bucket)])  # fmt: skip
def test_pulled_buckets_replace_the_ones_they_cover(kind: Kind, bucket: Any) -> None:
    stored = [bucket(0, 1), bucket(1, 2), bucket(2, 3)]  # day 2 was open at the last sync
    pulled = [bucket(2, 3, 4), bucket(3, 5), bucket(4)]  # day 2 complete, day 3, day 4 empty so far
    merged = pulls.merge(kind, stored, pulled)
    assert merged == [bucket(0, 1), bucket(1, 2), bucket(2, 3, 4), bucket(3, 5)]
    assert pulls.merge(kind, merged, pulled) == merged  # the same pull again: nothing doubles
    assert pulls.merge(kind, stored, []) == stored
    assert pulls.merge(kind, [bucket(0, 1), bucket(3, 9)], [bucket(1, 2)]) == [
        bucket(0, 1), bucket(1, 2), bucket(3, 9)
    ]  # fmt: skip


def test_the_cursor_stops_at_the_open_bucket_or_after_the_last() -> None:
    pulled = [openai_bucket(0, 1), openai_bucket(1, 1), openai_bucket(2, 1)]
    now = D0 + 2 * DAY + timedelta(hours=1)
    assert pulls.next_cursor(Kind.OPENAI_COSTS, pulled, D0, now) == (D0 + 2 * DAY).isoformat()
    later = D0 + 5 * DAY
    assert pulls.next_cursor(Kind.OPENAI_COSTS, pulled, D0, later) == (D0 + 3 * DAY).isoformat()
    assert pulls.next_cursor(Kind.OPENAI_COSTS, [], D0, later) == D0.isoformat()


def test_base_urls_are_checked() -> None:
    assert pulls.check_base_url("https://api.openai.com/", allow_http=False) == "https://api.openai.com"
    assert pulls.check_base_url("http://127.0.0.1:9/", allow_http=True) == "http://127.0.0.1:9"
    for url, allow_http in (("http://127.0.0.1:9", False), ("ftp://x", True), ("https://", True),
                            ("https://u:p@host", True), ("https://host?x=1", True)):  # fmt: skip
        with pytest.raises(InvalidInput):
            pulls.check_base_url(url, allow_http=allow_http)
