"""The period a question names, as bounds on the data."""

from __future__ import annotations

from datetime import UTC, datetime

from tokenwise.agents.period import describe, resolve

END = "2025-03-09T23:59:00"


def test_no_period_means_no_bounds() -> None:
    assert resolve(None, END) is None


def test_relative_spans_count_back_from_the_newest_request() -> None:
    assert resolve({"text": "last 2 days", "days": 2.0}, END) == (
        datetime(2025, 3, 7, 23, 59, tzinfo=UTC),
        None,
    )
    assert resolve({"text": "last week", "days": 7.0}, None) is None  # no data: nothing to count back from


def test_dates_cover_whole_days() -> None:
    day = datetime(2025, 3, 4, tzinfo=UTC)
    assert resolve({"start": "2025-03-04"}, END) == (day, datetime(2025, 3, 5, tzinfo=UTC))
    assert resolve({"start": "2025-03-04", "end": "2025-03-06"}, END) == (
        day,
        datetime(2025, 3, 7, tzinfo=UTC),
    )
    assert describe({"start": "2025-03-04", "end": "2025-03-06"}) == "2025-03-04 to 2025-03-06"
    assert describe({"text": "last 2 days", "days": 2.0}) == "last 2 days"
