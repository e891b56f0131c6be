"""What a report says about the datasets it covered: their names, the ones the user excluded, and what
bucketed reports among them cannot show."""

from __future__ import annotations

from tokenwise.agents.grain import named
from tokenwise.agents.rendering import safe
from tokenwise.agents.tooling import JSON

_LISTED = 10
_INCLUDE = "tick it on the Data page, or `tokenwise datasets include ID`"


def names(datasets: list[JSON]) -> str:
    """'a', 'b' and 'c' (the first ten, then how many more)."""
    shown = [f"'{safe(d.get('name'), 80)}'" for d in datasets[:_LISTED]]
    if len(datasets) > _LISTED:
        shown.append(f"{len(datasets) - _LISTED} more")
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]


def left_out(excluded: list[JSON]) -> str:
    """The answer's note on the datasets the user excluded."""
    return f"Left out, as you chose: {names(excluded)} (excluded from questions)."


def all_excluded(excluded: list[JSON]) -> str:
    """The answer when every dataset is excluded."""
    return (
        f"Every one of your datasets is excluded from questions ({names(excluded)}), so nothing was "
        f"measured. Include one ({_INCLUDE}) and ask again."
    )


def notes(datasets: list[JSON], excluded: list[JSON], *, full: bool) -> list[str]:
    """The report's notes: the datasets covered, those excluded, and (for a full analysis) the limits of
    the bucketed ones."""
    out = []
    if datasets:
        out.append(f"This answer covers {len(datasets)} dataset(s): {names(datasets)}.")
    if excluded:
        out.append(
            f"Excluded from questions, and so not counted: {names(excluded)}. To count one again, {_INCLUDE}."
        )
    bucketed = [d for d in datasets if d.get("bucketed")]
    if full and bucketed:
        verb = "holds" if len(bucketed) == 1 else "hold"
        out.append(
            f"{named(bucketed)} {verb} time buckets of a report, not requests: spend, tokens, trends and "
            "breakdowns count them exactly, but the figures about single requests (sizes, latency, peaks "
            "per second, duplicates, retries, shared prefixes, output caps) cannot see inside a bucket: "
            "for those, only per-request data tells."
        )
    return out
