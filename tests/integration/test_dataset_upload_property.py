"""Property: an upload through the real server is 201 or a specific 4xx, never 500, and a refused upload
leaves nothing behind (no dataset row, no file).

The first test knows the truth: rows with bad values planted in several columns at once, and the answer must
name the first bad line, a bad column of it, every other bad column of that line, and how many rows share
the named column's problem. The second throws random mappings, deeply nested JSON, odd column names and
huge fields at the server and checks only that it answers with a specific error or a dataset.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from support.clients import Account, signup
from support.live import LiveServer

# Column -> (field it is detected as, kind of value). All are mapped by detection (openai_usage format).
COLUMNS: dict[str, tuple[str, str]] = {
    "timestamp": ("ts", "time"),
    "model": ("model", "text"),
    "prompt_tokens": ("input_tokens", "integer"),
    "completion_tokens": ("output_tokens", "integer"),
    "cached_tokens": ("cached_input_tokens", "integer"),
    "latency_ms": ("latency_ms", "number"),
    "cost": ("cost_usd", "number"),
    "user": ("user_tag", "text"),
    "note": ("", "text"),  # not a field: free text, maybe huge or multi-line
}
REQUIRED = {"timestamp", "prompt_tokens", "completion_tokens"}
EXPECTED = {
    "integer": "a non-negative integer",
    "number": "a non-negative number",
    "time": "a timestamp",
}
BAD: dict[str, list[Any]] = {
    "integer": ["abc", "-5", "1.5", "1e400", "9" * 400, "NaN", "inf", "12 tokens"],
    "number": ["fast", "-1", "nan", "inf", "-0.5", "1e400", "$3"],
    "time": ["yesterday", "2025-13-45T00:00:00Z", "not a date", "inf"],
}
_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
    ],
)


@dataclass
class Session:
    server: LiveServer
    account: Account
    http: httpx.Client


@pytest.fixture(scope="module")
def session(server: LiveServer) -> Iterator[Session]:
    account = asyncio.run(signup(server.url))
    headers = {"Authorization": f"Bearer {account.access_token}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=120) as http:
        yield Session(server, account, http)


def leftovers(session: Session) -> list[Path]:
    """Files a refused upload must not leave: stored datasets, temporary uploads and partial writes."""
    data_dir = Path(session.server.settings.data_dir)
    stored = data_dir / "datasets" / session.account.user_id
    files = [p for p in stored.rglob("*") if p.is_file()] if stored.exists() else []
    return files + list((data_dir / "tmp").glob("upload-*"))


def post(session: Session, name: str, content: bytes, fields: dict[str, str]) -> httpx.Response:
    return session.http.post("/api/datasets", files={"file": (name, content)}, data=fields)


def check_answer(session: Session, response: httpx.Response) -> dict[str, Any] | None:
    """The answer is a dataset (201) or a specific 4xx; a refusal left nothing. Returns the error body."""
    assert response.status_code == 201 or 400 <= response.status_code < 500, response.text[:2000]
    event(f"HTTP {response.status_code}")
    if response.status_code == 201:
        dataset = response.json()
        assert dataset["row_count"] > 0
        assert session.http.delete(f"/api/datasets/{dataset['id']}").status_code == 204
        assert leftovers(session) == []
        return None
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] in ("invalid_input", "conflict", "too_large"), error
    assert error["message"], error
    if "expected" in error:  # a bad value: where and what
        assert "line" in error or "row" in error, error
        assert error["column"], error
    assert session.http.get("/api/datasets").json()["datasets"] == []
    assert leftovers(session) == []
    return error


def good_value(kind: str, draw: st.DrawFn) -> Any:
    if kind == "integer":
        return draw(st.integers(min_value=0, max_value=10**9))
    if kind == "number":
        return draw(st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False))
    if kind == "time":
        second = draw(st.integers(min_value=1_700_000_000, max_value=1_800_000_000))
        return draw(st.sampled_from([str(second), f"2025-03-01T10:{second % 60:02d}:00Z"]))
    text = st.text(alphabet=st.characters(blacklist_categories=["Cs", "Cc"]), max_size=12)
    return draw(text)


@st.composite
def planted(draw: st.DrawFn) -> tuple[list[dict[str, Any]], dict[int, set[str]]]:
    """Rows, and for each row index the columns that hold a bad value (several per row allowed)."""
    count = draw(st.integers(min_value=1, max_value=25))
    rows: list[dict[str, Any]] = []
    bad: dict[int, set[str]] = {}
    checked = [c for c, (field, kind) in COLUMNS.items() if kind != "text"]
    for index in range(count):
        row = {column: good_value(kind, draw) for column, (_, kind) in COLUMNS.items()}
        row["model"] = draw(st.sampled_from(["gpt-4o", "claude-3-5-sonnet", "llama, 70b"]))
        size = draw(st.sampled_from([0, 0, 0, 40, 200_000]))  # over the csv module's 128 KiB default
        row["note"] = draw(st.sampled_from(["x", "two\nlines", 'a "quoted", note'])) * max(1, size // 10)
        if draw(st.integers(min_value=0, max_value=3)) == 0:
            columns = draw(st.lists(st.sampled_from(checked), min_size=1, max_size=4, unique=True))
            for column in columns:
                row[column] = draw(st.sampled_from(BAD[COLUMNS[column][1]]))
            if draw(st.booleans()):
                empty = [c for c in columns if c in REQUIRED]
                for column in empty[:1]:
                    row[column] = ""
            bad[index] = set(columns)
        rows.append(row)
    return rows, bad


def as_csv(rows: list[dict[str, Any]]) -> tuple[bytes, list[int]]:
    """The rows as CSV, and the physical line each row starts on (header = line 1)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(list(COLUMNS))
    starts = []
    for row in rows:
        starts.append(out.getvalue().count("\n") + 1)
        writer.writerow([row[c] for c in COLUMNS])
    return out.getvalue().encode(), starts


def as_jsonl(rows: list[dict[str, Any]]) -> tuple[bytes, list[int]]:
    lines = [json.dumps(row) for row in rows]
    return ("\n".join(lines) + "\n").encode(), list(range(1, len(rows) + 1))


@_SETTINGS
@given(data=planted(), kind=st.sampled_from(["csv", "jsonl"]))
def test_bad_values_anywhere_give_the_first_bad_line_and_its_columns(
    session: Session, data: tuple[list[dict[str, Any]], dict[int, set[str]]], kind: str
) -> None:
    rows, bad = data
    content, starts = as_csv(rows) if kind == "csv" else as_jsonl(rows)
    response = post(session, f"usage-{uuid.uuid4().hex[:8]}.{kind}", content, {})
    error = check_answer(session, response)
    if not bad:
        assert error is None, error
        return
    assert response.status_code == 422, response.text[:2000]
    assert error is not None
    first = min(bad)
    assert error["line"] == starts[first], error["message"]
    named = error["column"]
    assert {named, *error.get("also_invalid", [])} == bad[first], error["message"]
    if kind == "csv":  # the leftmost bad column of the line is the one named
        assert named == min(bad[first], key=list(COLUMNS).index)
    assert error["expected"].startswith(EXPECTED[COLUMNS[named][1]])
    assert error["message"].startswith(f"line {starts[first]}, ")
    with_same = sum(1 for columns in bad.values() if named in columns)
    if with_same > 1:
        assert f"({with_same} rows have an invalid {named})" in error["message"]
    else:
        assert "rows have an invalid" not in error["message"]


# -- Anything at all: random mappings, nesting, names and sizes -------------------------------------------

FIELDS = ["ts", "model", "input_tokens", "output_tokens", "cached_input_tokens", "latency_ms", "latency_s",
          "cost_usd", "status", "error", "user_tag", "feature", "team", "project", "api_key", "request_id",
          "prompt_text", "end_ts", "max_output_tokens", "no_such_field"]  # fmt: skip
names = st.one_of(
    st.sampled_from(
        ["timestamp", "prompt_tokens", "completion_tokens", "model", "usage", "id", "start_time"]
    ),
    st.text(alphabet=st.characters(blacklist_categories=["Cs", "Cc"]), min_size=1, max_size=12),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["2025-03-01T10:00:00Z", "1714564800", "12", "-3", "1e400", ""]),
)


def nested(depth: int) -> st.SearchStrategy[Any]:
    """A value nested `depth` levels deep in objects and arrays."""
    inner: st.SearchStrategy[Any] = scalars
    for _ in range(depth):
        inner = st.one_of(st.dictionaries(names, inner, max_size=2), st.lists(inner, max_size=2))
    return inner


@st.composite
def anything(draw: st.DrawFn) -> tuple[str, bytes, dict[str, str]]:
    kind = draw(st.sampled_from(["csv", "jsonl", "json"]))
    columns = draw(st.lists(names, min_size=1, max_size=8, unique_by=lambda n: n.strip().lower()))
    if draw(st.booleans()):  # often a readable log with extra columns, so that some uploads succeed
        required = ["timestamp", "prompt_tokens", "completion_tokens"]
        columns = required + [c for c in columns if c.strip().lower() not in required]
    count = draw(st.integers(min_value=0, max_value=8))
    huge = draw(st.sampled_from([0, 0, 0, 150_000, 2_200_000]))  # 2.2 MB: over DuckDB's line limit
    rows = []
    for _ in range(count):
        row: dict[str, Any] = {}
        for column in columns:
            depth = draw(st.integers(min_value=0, max_value=4)) if kind != "csv" else 0
            row[column] = draw(nested(depth) if depth else scalars)
            if column in ("prompt_tokens", "completion_tokens") and draw(st.integers(0, 3)):
                row[column] = draw(st.integers(min_value=0, max_value=10**6))
            elif column == "timestamp" and draw(st.integers(0, 3)):
                row[column] = "2025-03-01T10:00:00Z"
        if huge and draw(st.booleans()):
            row[columns[0]] = "y" * huge
        rows.append(row)
    if kind == "jsonl" and rows and draw(st.booleans()):  # a very deep object: 200 levels
        deep: Any = 1
        for _ in range(200):
            deep = {"a": deep}
        rows[0]["deep"] = deep
    if kind == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if row[c] is None else row[c] for c in columns])
        content = out.getvalue().encode()
    elif kind == "jsonl":
        content = "\n".join(json.dumps(r) for r in rows).encode()
    else:
        content = json.dumps(rows if draw(st.booleans()) else {"data": rows}).encode()
    fields: dict[str, str] = {}
    if draw(st.booleans()):
        targets = st.one_of(st.none(), st.sampled_from([*columns, "missing", ""]), names)
        mapping = draw(st.dictionaries(st.sampled_from(FIELDS), targets, max_size=6))
        fields["mapping"] = draw(st.sampled_from([json.dumps(mapping), json.dumps(mapping), "{bad", "[1]"]))
    if draw(st.booleans()):
        fields["model"] = draw(st.text(max_size=20))
    return kind, content, fields


@_SETTINGS
@given(case=anything())
def test_any_upload_is_a_dataset_or_a_specific_4xx(
    session: Session, case: tuple[str, bytes, dict[str, str]]
) -> None:
    kind, content, fields = case
    response = post(session, f"any-{uuid.uuid4().hex[:8]}.{kind}", content, fields)
    check_answer(session, response)
