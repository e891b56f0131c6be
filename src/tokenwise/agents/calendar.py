"""Periods named in a question ("yesterday", "last week", "in October", "between 1 and 15 Nov"), read as
[start, end) bounds in UTC against a reference day.

The reference day is today, unless the data ends more than a month ago: an uploaded log is often history,
and then "yesterday" means the last day of the data, so today is read as the day after its newest request.
Every reading keeps the words it came from, so the answer can say how it read them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from tokenwise.analysis.plan import Period

STALE_AFTER = timedelta(days=31)
DASH = "\u2013"  # en dash, as in "24\u201330 Nov 2025"
_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ),
        start=1,
    )
    for name in names
}
_MONTH = r"(?P<{n}>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\b\.?"
_WORD_NUMBERS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "twelve": 12, "fourteen": 14, "thirty": 30, "ninety": 90,
}  # fmt: skip
_COUNT = r"(?P<count>\d{1,4}|" + "|".join(_WORD_NUMBERS) + r")"
_DAY = r"(?P<{n}>[0-3]?\d)(?:st|nd|rd|th)?"
_YEAR = r"(?:,?\s*(?P<{n}>20\d\d))?"
_TO = r"(?:to|and|until|through|-|\u2013)"
_UNITS = {"hour": 1 / 24, "day": 1, "week": 7, "month": 30, "year": 365}


def _m(name: str) -> str:
    return _MONTH.format(n=name)


def _d(name: str) -> str:
    return _DAY.format(n=name)


def _y(name: str) -> str:
    return _YEAR.format(n=name)


# Order matters: ranges before single days, single days before whole months.
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(pattern, re.IGNORECASE))
    for kind, pattern in (
        ("iso_range", rf"\b(?:from|between)?\s*(?P<a>20\d\d-[01]\d-[0-3]\d)\s*{_TO}\s*"
         r"(?P<b>20\d\d-[01]\d-[0-3]\d)\b"),
        ("range_dm", rf"\b(?:from|between)\s+{_d('d1')}\s*(?:{_m('m1')}\s*)?{_TO}\s*"
         rf"{_d('d2')}\s+{_m('m2')}{_y('y')}"),
        ("range_md", rf"\b(?:from|between)\s+{_m('m1')}\s*{_d('d1')}\s*{_TO}\s*"
         rf"(?:{_m('m2')}\s*)?{_d('d2')}\b{_y('y')}"),
        ("range_short_md", rf"\b{_m('m1')}\s*{_d('d1')}\s*(?:-|\u2013)\s*{_d('d2')}\b{_y('y')}"),
        ("range_short_dm", rf"\b{_d('d1')}\s*(?:-|\u2013)\s*{_d('d2')}\s+{_m('m1')}{_y('y')}"),
        ("since", rf"\bsince\s+(?:(?P<iso>20\d\d-[01]\d-[0-3]\d)|{_m('m1')}\s*{_d('d1')}|"
                  rf"{_d('d2')}\s+{_m('m2')})"),
        ("iso_day", r"\b(?P<a>20\d\d-[01]\d-[0-3]\d)\b"),
        ("day_md", rf"\b{_m('m1')}\s+{_d('d1')}\b{_y('y')}"),
        ("day_dm", rf"\b{_d('d1')}\s+(?:of\s+)?{_m('m1')}{_y('y')}"),
        ("relative_day", r"\b(?P<word>today|yesterday|the day before yesterday)\b"),
        ("last_n", rf"\b(?:the\s+)?(?:last|past|previous|trailing)\s+{_COUNT}\s+"
                   r"(?P<unit>hour|day|week|month|year)s?\b"),
        ("this_unit", r"\b(?P<which>this|last|previous|past|the\s+previous)\s+"
                      r"(?P<unit>week|month|quarter|year)\b"),
        ("week_before", r"\b(?:the\s+)?(?P<unit>week|month)\s+before(?:\s+(?:that|last|it))?\b"),
        ("month", rf"\b(?:in|during|for|of|over)?\s*{_m('m1')}{_y('y')}(?![\s-]*\d)"),
        ("year", r"\b(?:in|during)\s+(?P<y>20\d\d)\b"),
    )
)  # fmt: skip


@dataclass(frozen=True)
class Reading:
    """A period found in the text: its bounds and the span of text it was read from."""

    period: Period
    span: tuple[int, int]
    kind: str


def reference_day(data_end: datetime | None, now: datetime | None = None) -> date:
    """The day questions are read against: today, or the day after the data when it is old."""
    now = now or datetime.now(UTC)
    if data_end is None:
        return now.date()
    end = data_end if data_end.tzinfo else data_end.replace(tzinfo=UTC)
    return end.date() + timedelta(days=1) if now - end > STALE_AFTER else now.date()


def _at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _fmt(day: date) -> str:
    return f"{day.day} {day.strftime('%b')} {day.year}"


def span_label(start: date, end_exclusive: date) -> str:
    """`24-30 Nov 2025` (with an en dash), `1 Oct 2025`, `28 Oct - 3 Nov 2025`."""
    last = end_exclusive - timedelta(days=1)
    if last == start:
        return _fmt(start)
    if (start.year, start.month) == (last.year, last.month):
        return f"{start.day}{DASH}{last.day} {last.strftime('%b')} {last.year}"
    if start.year == last.year:
        return f"{start.day} {start.strftime('%b')} {DASH} {_fmt(last)}"
    return f"{_fmt(start)} {DASH} {_fmt(last)}"


def days_period(start: date, end_exclusive: date, words: str) -> Period:
    """A period of whole days, labelled with the words and the dates they were read as."""
    return Period(
        start=_at(start), end=_at(end_exclusive), label=f"'{words}' as {span_label(start, end_exclusive)}"
    )


def month_period(year: int, month: int, words: str) -> Period:
    start = date(year, month, 1)
    end = date(year + (month == 12), month % 12 + 1, 1)
    return Period(start=_at(start), end=_at(end), label=f"'{words}' as {start.strftime('%B %Y')}")


def _iso(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:  # 2025-02-30 looks like a date and is not one
        return None


def _number(text: str) -> int:
    return int(text) if text.isdigit() else _WORD_NUMBERS[text.lower()]


def _recent(month: int, day: int, today: date, year: str | None) -> date | None:
    """The date `month`/`day` in the given year, else the latest one not after today."""
    try:
        if year:
            return date(int(year), month, day)
        candidate = date(today.year, month, day)
        return candidate if candidate <= today else date(today.year - 1, month, day)
    except ValueError:
        return None


def _month_of(name: str | None) -> int | None:
    return _MONTHS.get(name.lower().rstrip(".")) if name else None


def read_periods(text: str, today: date) -> list[Reading]:
    """Every period named in `text`, in order of appearance, none overlapping another."""
    found: list[Reading] = []
    taken: list[tuple[int, int]] = []
    for kind, pattern in _PATTERNS:
        for match in pattern.finditer(text):
            span = match.span()
            words = match.group(0).strip()
            if not words or any(span[0] < b and a < span[1] for a, b in taken):
                continue
            period = _interpret(kind, match, today, found)
            if period is not None:
                found.append(Reading(period, span, kind))
                taken.append(span)
    return sorted(found, key=lambda r: r.span)


def _interpret(kind: str, m: re.Match[str], today: date, earlier: list[Reading]) -> Period | None:
    words = re.sub(r"^(?:in|during|for|of|over)\s+", "", m.group(0).strip(), flags=re.I)
    g = m.groupdict()
    if kind in ("iso_range", "iso_day"):
        start = _iso(g["a"])
        last = _iso(g["b"]) if kind == "iso_range" else start
        if start is None or last is None or last < start:
            return None
        return days_period(start, last + timedelta(days=1), words)
    if kind.startswith("range"):
        m1 = _month_of(g.get("m1")) or _month_of(g.get("m2"))
        m2 = _month_of(g.get("m2")) or m1
        if m1 is None or m2 is None:
            return None
        opening = _recent(m1, int(g["d1"]), today, g.get("y"))
        closing = _recent(m2, int(g["d2"]), today, g.get("y") or (str(opening.year) if opening else None))
        if opening is not None and closing is not None and closing < opening and not g.get("y"):
            closing = _recent(m2, int(g["d2"]), today, str(opening.year + 1))  # "from Dec 28 to Jan 3"
        if opening is None or closing is None or closing < opening:
            return None
        return days_period(opening, closing + timedelta(days=1), words)
    if kind == "since":
        month = _month_of(g.get("m1")) or _month_of(g.get("m2"))
        day = g.get("d1") or g.get("d2")
        since = (
            _iso(g["iso"])
            if g.get("iso")
            else _recent(month, int(day), today, None)
            if month and day
            else None
        )
        return days_period(since, today + timedelta(days=1), words) if since and since <= today else None
    if kind in ("day_md", "day_dm"):
        month = _month_of(g.get("m1"))
        day = _recent(month, int(g["d1"]), today, g.get("y")) if month else None
        return days_period(day, day + timedelta(days=1), words) if day else None
    if kind == "relative_day":
        back = {"today": 0, "yesterday": 1}.get(g["word"].lower(), 2)
        day = today - timedelta(days=back)
        return days_period(day, day + timedelta(days=1), words)
    if kind == "last_n":
        count, unit = _number(g["count"]), g["unit"].lower()
        if not 0 < count <= 3660:
            return None
        if unit == "hour":
            end = _at(today)
            label = f"'{words}' as the {count} hours before {_fmt(today)}"
            return Period(start=end - timedelta(hours=count), end=end, label=label)
        return days_period(today - timedelta(days=round(count * _UNITS[unit])), today, words)
    if kind == "this_unit" and g["which"].lower() == "past" and g["unit"].lower() in ("week", "month"):
        # "the past week" is the last seven days; "last week" is the calendar week before this one
        back = 7 if g["unit"].lower() == "week" else 30
        return days_period(today - timedelta(days=back), today, words)
    if kind == "this_unit":
        return _calendar_unit(g["unit"].lower(), 0 if g["which"].lower() == "this" else 1, today, words)
    if kind == "week_before":
        unit = g["unit"].lower()
        anchor = next((r.period for r in reversed(earlier) if r.period.start is not None), None)
        if anchor is None or anchor.start is None:
            return _calendar_unit(unit, 2, today, words)
        start = anchor.start.date()
        if unit == "week":
            return days_period(start - timedelta(days=7), start, words)
        prev = start.replace(day=1) - timedelta(days=1)
        return month_period(prev.year, prev.month, words)
    if kind == "month":
        month = _month_of(g.get("m1"))
        bare = words.lower() == m.group(0).strip().lower() and not g.get("y")
        if month is None or (month == 5 and bare):
            return None  # "may" without "in" is the verb
        year = int(g["y"]) if g.get("y") else (today.year if month <= today.month else today.year - 1)
        return month_period(year, month, words)
    if kind == "year":
        year = int(g["y"])
        return Period(
            start=_at(date(year, 1, 1)), end=_at(date(year + 1, 1, 1)), label=f"'{words}' as {year}"
        )
    return None


def _calendar_unit(unit: str, back: int, today: date, words: str) -> Period:
    """This (back=0), the previous (1) or the one before (2) calendar week, month, quarter or year."""
    if unit == "week":
        monday = today - timedelta(days=today.weekday()) - timedelta(weeks=back)
        end = (
            min(monday + timedelta(days=7), today + timedelta(days=1)) if back == 0 else monday + timedelta(7)
        )
        return days_period(monday, end, words)
    if unit == "month":
        year, month = today.year, today.month - back
        while month < 1:
            year, month = year - 1, month + 12
        return month_period(year, month, words)
    if unit == "quarter":
        index = (today.year * 4 + (today.month - 1) // 3) - back
        year, quarter = divmod(index, 4)
        start = date(year, quarter * 3 + 1, 1)
        end = date(year + (quarter == 3), (quarter * 3 + 3) % 12 + 1, 1)
        return Period(start=_at(start), end=_at(end), label=f"'{words}' as Q{quarter + 1} {year}")
    year = today.year - back
    return Period(start=_at(date(year, 1, 1)), end=_at(date(year + 1, 1, 1)), label=f"'{words}' as {year}")


def previous_like(period: Period) -> Period:
    """The period of the same length just before `period` (week before, month before, ...)."""
    assert period.start is not None
    assert period.end is not None
    start, end = period.start, period.end
    if start.day == 1 and end.day == 1 and (end - start).days >= 28:
        prev_end = start
        prev_start = (start - timedelta(days=1)).replace(day=1)
        return Period(
            start=prev_start, end=prev_end, label=f"the month before ({prev_start.strftime('%B %Y')})"
        )
    length = end - start
    prev = Period(start=start - length, end=start, label="")
    label = span_label(start.date() - timedelta(days=length.days), start.date()) if length.days else ""
    return prev.model_copy(update={"label": f"the period before ({label})"})
