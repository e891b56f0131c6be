"""Bad files: the error names the line, the column and what was expected; nothing is written."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from tokenwise.errors import InvalidInput
from tokenwise.usage.ingest import ingest

HEADER = "TIMESTAMP,ContextTokens,GeneratedTokens\n"
GOOD = "2023-11-16 18:17:03.9799600,4808,10\n"


def fail(tmp_path: Path, name: str, text: str) -> InvalidInput:
    source = tmp_path / name
    source.write_text(text, encoding="utf-8")
    out = tmp_path / "out" / "data.parquet"
    with pytest.raises(InvalidInput) as caught:
        ingest(source, out)
    assert not out.exists()
    assert not out.parent.exists() or list(out.parent.iterdir()) == []
    return caught.value


def test_line_column_and_expectation(tmp_path: Path) -> None:
    text = HEADER + GOOD * 15 + "2023-11-16 18:17:04.0319600,3180,abc\n" + GOOD
    error = fail(tmp_path, "t.csv", text)
    assert error.message == "line 17, column GeneratedTokens: expected a non-negative integer, got 'abc'"
    assert error.details["line"] == 17
    assert error.details["column"] == "GeneratedTokens"
    assert error.field == "GeneratedTokens"


def test_first_bad_line_wins_across_columns_and_count_is_given(tmp_path: Path) -> None:
    text = (
        HEADER
        + GOOD
        + "2023-11-16 18:17:03,-5,10\n"
        + "2023-11-16 18:17:03,1,x\n"
        + "2023-11-16 18:17:03,-1,1\n"
    )
    error = fail(tmp_path, "t.csv", text)
    assert error.message.startswith("line 3, column ContextTokens: expected a non-negative integer, got '-5'")
    assert "(2 rows have an invalid ContextTokens)" in error.message


def test_physical_line_counts_blank_lines_and_quoted_newlines(tmp_path: Path) -> None:
    text = (
        'timestamp,prompt_tokens,completion_tokens,feature\n\n1714564800,1,1,"two\nlines"\n\n'
        "1714564800,1.5,1,x\n"
    )
    error = fail(tmp_path, "t.csv", text)
    assert error.message == "line 6, column prompt_tokens: expected a non-negative integer, got '1.5'"


@pytest.mark.parametrize(
    ("row", "column", "expected", "got"),
    [
        ("yesterday,1,1", "TIMESTAMP", "a timestamp", "'yesterday'"),
        (",1,1", "TIMESTAMP", "a timestamp", "an empty value"),
        ("2023-11-16 18:17:03,,1", "ContextTokens", "a non-negative integer", "an empty value"),
        ("2023-11-16 18:17:03,1e400,1", "ContextTokens", "a non-negative integer", "'1e400'"),
    ],
)
def test_expected_kinds(tmp_path: Path, row: str, column: str, expected: str, got: str) -> None:
    error = fail(tmp_path, "t.csv", HEADER + GOOD + row + "\n")
    assert error.message.startswith(f"line 3, column {column}: expected {expected}")
    assert error.message.endswith(f"got {got}")


def test_optional_numbers_are_validated_too(tmp_path: Path) -> None:
    text = (
        "time,input_tokens,output_tokens,latency_ms,cost\n1714564800,1,1,12.5,0.1\n1714564800,1,1,fast,0.1\n"
    )
    error = fail(tmp_path, "t.csv", text)
    assert error.message == "line 3, column latency_ms: expected a non-negative number, got 'fast'"


def test_wrong_number_of_fields_names_the_line(tmp_path: Path) -> None:
    error = fail(tmp_path, "t.csv", HEADER + GOOD + "2023-11-16 18:17:03,1\n")
    assert error.message.startswith("line 3: could not read the CSV file: expected 3 columns, found 2")


def test_missing_required_column(tmp_path: Path) -> None:
    error = fail(tmp_path, "t.csv", "timestamp,prompt_tokens,model\n1714564800,1,gpt-4o\n")
    assert error.field == "output_tokens"
    assert "columns found: timestamp, prompt_tokens, model" in error.message


def test_empty_and_header_only_files(tmp_path: Path) -> None:
    assert "no header row" in fail(tmp_path, "t.csv", "").message
    assert fail(tmp_path, "t.csv", HEADER).message == "the file has no data rows"


def test_jsonl_errors_name_the_line_and_field(tmp_path: Path) -> None:
    good = '{"timestamp": 1714564800, "prompt_tokens": 1, "completion_tokens": 2}\n'
    bad = '{"timestamp": 1714564800, "prompt_tokens": "many", "completion_tokens": 2}\n'
    error = fail(tmp_path, "u.jsonl", good + "\n" + good + bad)
    assert error.message == "line 4, field prompt_tokens: expected a non-negative integer, got 'many'"
    malformed = fail(tmp_path, "u.jsonl", good + '{"timestamp": 1,\n')
    assert malformed.message.startswith("line 2: could not read the JSONL file")


def test_parquet_errors_name_the_row(tmp_path: Path) -> None:
    source = tmp_path / "u.parquet"
    rows = "SELECT * FROM (VALUES ('2024-05-01', 1, 2), ('2024-05-01', -3, 2))"
    rows += " t(timestamp, input_tokens, output_tokens)"
    duckdb.sql(f"COPY ({rows}) TO '{source}' (FORMAT parquet)")
    with pytest.raises(InvalidInput) as caught:
        ingest(source, tmp_path / "o.parquet")
    assert caught.value.message == "row 2, column input_tokens: expected a non-negative integer, got '-3'"
    assert caught.value.details["row"] == 2


def test_not_a_parquet_file(tmp_path: Path) -> None:
    error = fail(tmp_path, "u.parquet", "this is not parquet")
    assert error.field == "file"
    assert "Parquet" in error.message


def test_encoding_and_quoting_problems_name_the_line(tmp_path: Path) -> None:
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"timestamp,prompt_tokens,completion_tokens,feature\n1714564800,1,2,caf\xe9\n")
    with pytest.raises(InvalidInput, match=r"^line 2: could not read the CSV file: expected UTF-8 text"):
        ingest(latin, tmp_path / "o.parquet")
    quoted = 'timestamp,prompt_tokens,completion_tokens,feature\n1714564800,1,2,"open\n1714564800,1,2,x\n'
    error = fail(tmp_path, "q.csv", quoted)
    assert error.message == "line 2: could not read the CSV file: a quoted value is never closed"
