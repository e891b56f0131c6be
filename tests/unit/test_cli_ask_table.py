"""`tokenwise ask` renders the answer's table as plain aligned text: no colour, units said once."""

from __future__ import annotations

from tokenwise.cli.ask import cell, render_table

TABLE = {
    "columns": [
        {"key": "user", "label": "User", "unit": None},
        {"key": "spend", "label": "Spend", "unit": "usd"},
        {"key": "saving", "label": "Saving", "unit": "usd_per_month"},
        {"key": "requests", "label": "Requests", "unit": "requests"},
        {"key": "share", "label": "Share (%)", "unit": "pct"},
        {"key": "p95", "label": "p95 latency", "unit": "ms"},
    ],
    "rows": [
        ["alice", 1234.5, 100.0, 1200, 45.12, 812.3],
        ["a-much-longer-name", 0.00412, 0, 3, 0.5, None],
    ],
}


def test_columns_are_aligned_numbers_to_the_right_units_in_the_header() -> None:
    assert render_table(TABLE).splitlines() == [
        "User                    Spend  Saving ($ a month)  Requests  Share (%)  p95 latency (ms)",
        "------------------  ---------  ------------------  --------  ---------  ----------------",
        "alice               $1,234.50             $100.00     1,200       45.1               812",
        "a-much-longer-name   $0.00412               $0.00         3       0.50                 —",
    ]


def test_short_rows_and_bare_columns_still_render() -> None:
    table = {
        "columns": [{"key": "model"}, {"key": "requests", "label": "Requests"}],
        "rows": [["gpt-4o"], []],
    }

    assert render_table(table) == "model   Requests\n------  --------\ngpt-4o\n"


def test_cells() -> None:
    assert cell(1234.5, "usd") == "$1,234.50"
    assert cell(-3.0, "usd_per_month") == "-$3.00"
    assert cell(0.00412, "usd") == "$0.00412"
    assert cell(1_234_567, "requests") == "1,234,567"
    assert cell(812.3, "ms") == "812"
    assert cell(9.876, "ms") == "9.88"
    assert cell(12.34, "pct") == "12.3"
    assert cell(None) == "—"
    assert cell("gpt-4o") == "gpt-4o"
    assert cell(True) == "True"
