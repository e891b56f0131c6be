"""Periods named in a question, read as [start, end) in UTC against a reference day."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokenwise.agents.calendar import previous_like, read_periods, reference_day
from tokenwise.analysis.plan import Period

TODAY = date(2025, 12, 1)  # a Monday, the day after a log that ends on 30 Nov


def at(y: int, m: int, d: int) -> datetime:
    return datetime(y, m, d, tzinfo=UTC)


def only(text: str, today: date = TODAY) -> Period:
    (reading,) = read_periods(text, today)
    return reading.period


@pytest.mark.parametrize(
    ("text", "start", "end", "named"),
    [
        ("yesterday", at(2025, 11, 30), at(2025, 12, 1), "30 Nov 2025"),
        ("today", at(2025, 12, 1), at(2025, 12, 2), "1 Dec 2025"),
        ("the day before yesterday", at(2025, 11, 29), at(2025, 11, 30), "29 Nov 2025"),
        ("last 7 days", at(2025, 11, 24), at(2025, 12, 1), "24\u201330 Nov 2025"),
        ("the past three days", at(2025, 11, 28), at(2025, 12, 1), "28\u201330 Nov 2025"),
        ("last 2 weeks", at(2025, 11, 17), at(2025, 12, 1), "17\u201330 Nov 2025"),
        ("last week", at(2025, 11, 24), at(2025, 12, 1), "24\u201330 Nov 2025"),
        ("past week", at(2025, 11, 24), at(2025, 12, 1), "24\u201330 Nov 2025"),
        ("this week", at(2025, 12, 1), at(2025, 12, 2), "1 Dec 2025"),
        ("last month", at(2025, 11, 1), at(2025, 12, 1), "November 2025"),
        ("this month", at(2025, 12, 1), at(2026, 1, 1), "December 2025"),
        ("past month", at(2025, 11, 1), at(2025, 12, 1), "Nov 2025"),
        ("last quarter", at(2025, 7, 1), at(2025, 10, 1), "Q3 2025"),
        ("in October", at(2025, 10, 1), at(2025, 11, 1), "October 2025"),
        ("Oct 2025", at(2025, 10, 1), at(2025, 11, 1), "October 2025"),
        ("on October 12", at(2025, 10, 12), at(2025, 10, 13), "12 Oct 2025"),
        ("12 October", at(2025, 10, 12), at(2025, 10, 13), "12 Oct 2025"),
        ("October 12, 2024", at(2024, 10, 12), at(2024, 10, 13), "12 Oct 2024"),
        ("2025-10-12", at(2025, 10, 12), at(2025, 10, 13), "12 Oct 2025"),
        ("2025-10-01 to 2025-10-05", at(2025, 10, 1), at(2025, 10, 6), "1\u20135 Oct 2025"),
        ("between 1 and 15 Nov", at(2025, 11, 1), at(2025, 11, 16), "1\u201315 Nov 2025"),
        ("between Nov 1 and Nov 15", at(2025, 11, 1), at(2025, 11, 16), "1\u201315 Nov 2025"),
        ("from Nov 3 to Nov 9", at(2025, 11, 3), at(2025, 11, 10), "3\u20139 Nov 2025"),
        ("from 3 to 9 November", at(2025, 11, 3), at(2025, 11, 10), "3\u20139 Nov 2025"),
        ("Nov 1-15", at(2025, 11, 1), at(2025, 11, 16), "1\u201315 Nov 2025"),
        ("1-15 Nov", at(2025, 11, 1), at(2025, 11, 16), "1\u201315 Nov 2025"),
        ("between 28 Nov and 3 Dec", at(2025, 11, 28), at(2025, 12, 4), "28 Nov \u2013 3 Dec 2025"),
        ("since Nov 20", at(2025, 11, 20), at(2025, 12, 2), "20 Nov \u2013 1 Dec 2025"),
        ("in 2024", at(2024, 1, 1), at(2025, 1, 1), "2024"),
        ("last 24 hours", at(2025, 11, 30), at(2025, 12, 1), "1 Dec 2025"),
    ],
)
def test_every_period_form(text: str, start: datetime, end: datetime, named: str) -> None:
    period = only(f"spend {text}?")
    assert (period.start, period.end) == (start, end)
    assert period.start is not None
    assert period.start.tzinfo is not None
    assert named in period.label
    assert text.removeprefix("in ").removeprefix("on ") in period.label


def test_a_month_or_day_not_yet_reached_this_year_is_last_years() -> None:
    assert only("in December", date(2025, 11, 20)).start == at(2024, 12, 1)
    assert only("on Dec 25", date(2025, 11, 20)).start == at(2024, 12, 25)
    assert only("in November", date(2025, 11, 20)).start == at(2025, 11, 1)


def test_the_week_before_follows_the_period_named_before_it() -> None:
    later, earlier = read_periods("last week vs the week before", TODAY)
    assert (later.period.start, later.period.end) == (at(2025, 11, 24), at(2025, 12, 1))
    assert (earlier.period.start, earlier.period.end) == (at(2025, 11, 17), at(2025, 11, 24))
    _, month_before = read_periods("last month vs the month before", TODAY)
    assert (month_before.period.start, month_before.period.end) == (at(2025, 10, 1), at(2025, 11, 1))
    assert only("the week before").start == at(2025, 11, 17)  # alone: the week before last week


def test_previous_like_is_the_same_length_just_before() -> None:
    week = previous_like(only("last week"))
    assert (week.start, week.end) == (at(2025, 11, 17), at(2025, 11, 24))
    month = previous_like(only("in March"))
    assert (month.start, month.end) == (at(2025, 2, 1), at(2025, 3, 1))
    assert "February 2025" in month.label


@pytest.mark.parametrize("text", ["you may see a spike", "May I ask what we spent?", "it may be high", ""])
def test_may_as_a_verb_is_not_a_month(text: str) -> None:
    assert read_periods(text, TODAY) == []


def test_may_as_a_month() -> None:
    assert only("spend in May").start == at(2025, 5, 1)
    assert only("on May 12").start == at(2025, 5, 12)


def test_may_with_a_year_is_a_month() -> None:
    assert only("May 2025 spend").start == at(2025, 5, 1)


@pytest.mark.parametrize("text", ["spend on 2025-02-30", "since 2025-19-01"])
def test_an_impossible_date_is_not_a_period(text: str) -> None:
    assert read_periods(text, TODAY) == []


def test_a_range_across_new_year() -> None:
    period = only("from Dec 28 to Jan 3")
    assert (period.start, period.end) == (at(2024, 12, 28), at(2025, 1, 4))


def test_reference_day() -> None:
    now = datetime(2025, 12, 20, 15, tzinfo=UTC)
    assert reference_day(None, now) == date(2025, 12, 20)
    assert reference_day(datetime(2025, 12, 19, 23), now) == date(2025, 12, 20)  # recent data: today
    assert reference_day(datetime(2025, 11, 19, 16, tzinfo=UTC), now) == date(2025, 12, 20)  # 31 days old
    assert reference_day(datetime(2025, 11, 19, 14, tzinfo=UTC), now) == date(2025, 11, 20)  # older
    assert reference_day(datetime(2025, 9, 30, 23, 59), now) == date(2025, 10, 1)  # naive is UTC


days = st.dates(date(2001, 1, 1), date(2090, 12, 31))


@given(today=days, n=st.integers(1, 1000), wording=st.sampled_from(["last {} days", "the past {} days"]))
def test_last_n_days_ends_on_the_reference_day(today: date, n: int, wording: str) -> None:
    period = only(wording.format(n), today)
    assert period.end == at(today.year, today.month, today.day)
    assert period.start is not None
    assert period.end - period.start == timedelta(days=n)


@given(
    end=st.datetimes(datetime(2001, 1, 1), datetime(2090, 1, 1)),
    lag=st.timedeltas(timedelta(0), timedelta(400)),
)
def test_reference_day_is_today_or_the_day_after_the_data(end: datetime, lag: timedelta) -> None:
    now = (end + lag).replace(tzinfo=UTC)
    day = reference_day(end, now)
    assert day == (now.date() if lag <= timedelta(days=31) else end.date() + timedelta(days=1))


PHRASES = [
    "yesterday",
    "last week",
    "the week before",
    "in October",
    "Nov 1-15",
    "between 1 and 15 Nov",
    "2025-10-12",
    "since Nov 20",
    "last 3 days",
    "on October 12",
    "this month",
    "vs",
    "and",
    "may",
]


@given(today=days, parts=st.lists(st.sampled_from(PHRASES), max_size=6))
def test_periods_never_overlap_and_are_ordered(today: date, parts: list[str]) -> None:
    readings = read_periods(" ".join(parts), today)
    spans = [r.span for r in readings]
    assert spans == sorted(spans)
    assert all(a[1] <= b[0] for a, b in pairwise(spans))
    for r in readings:
        assert r.period.start is None or r.period.end is None or r.period.start < r.period.end
