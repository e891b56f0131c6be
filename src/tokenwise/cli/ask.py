"""`tokenwise ask`: one question, just the answer, for scripts.

Stdout carries only the answer (its text, then its table) or, with `--json`, one JSON document; the thread
to continue goes to stderr as the last line, `thread: <id>`. Exit codes: 0 answered, 1 the run failed
(or gave no answer in time), 2 a usage or sign-in error, 3 the server could not be reached.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from tokenwise.cli import DEMO_EMAIL, DEMO_PASSWORD, app
from tokenwise.cli.chat import Conversation, RunView
from tokenwise.client import (
    Ack,
    Client,
    ClientError,
    ConnectionClosed,
    Event,
    HandshakeRejected,
    Method,
    RequestFailed,
    ServerError,
    SignInFailed,
    Unreachable,
)

ANSWERED, RUN_FAILED, USAGE, UNREACHABLE = 0, 1, 2, 3
# Error frames that refuse the question itself (an unknown thread, an invalid message): the caller's
# mistake, like a bad option, rather than a failed run.
_USAGE_CODES = {"not_found", "forbidden", "invalid_input", "invalid_message"}


class _Quiet(RunView):
    """Follows a run without showing its events; reconnect notices still reach `console` (stderr)."""

    def __enter__(self) -> _Quiet:
        return self  # no live preview: stdout is for the answer only

    def show(self, event: Event) -> None:
        pass


@dataclass
class Asked:
    """What is known of the question so far: its ack once sent, the run's final event once done."""

    ack: Ack | None = None
    final: Event | None = None


async def _ask(url: str, email: str, password: str, question: str, thread: str | None, asked: Asked) -> None:
    async with Client(url) as client:
        await client.sign_in(email, password)
        if thread is not None:
            # `--thread` continues a thread: an unknown one is a mistake, not a new thread (the server
            # would open a thread under an id a client chooses).
            await client.thread(thread)
        async with Conversation(client, Method.HEADER) as conversation:
            assert conversation.conn is not None
            asked.ack = await conversation.conn.send_message(question, thread_id=thread)
            # follow() reconnects and resumes after a drop, as `tokenwise chat` does.
            asked.final = await conversation.follow(asked.ack.run_id, _Quiet(Console(stderr=True)))


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="your question")],
    url: Annotated[str, typer.Option(help="the server's base URL")] = "http://127.0.0.1:8000",
    email: Annotated[str, typer.Option(help="sign in as (default: the demo user)")] = DEMO_EMAIL,
    password: Annotated[str, typer.Option(help="password (default: the demo user's)")] = DEMO_PASSWORD,
    thread: Annotated[str | None, typer.Option(help="continue this thread")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="print the structured answer as one JSON document")
    ] = False,
    timeout: Annotated[float, typer.Option(help="seconds to wait for the answer", min=1)] = 120.0,
) -> None:
    """Ask one question and print just the answer (exit 0 answered, 1 run failed, 2 usage, 3 unreachable)."""
    if not question.strip():
        raise typer.BadParameter("the question is empty", param_hint="QUESTION")
    asked = Asked()
    try:
        asyncio.run(asyncio.wait_for(_ask(url, email, password, question, thread, asked), timeout))
    except SignInFailed as exc:
        _fail(USAGE, exc.message)
    except RequestFailed as exc:
        _fail(USAGE if exc.code in _USAGE_CODES else RUN_FAILED, f"{exc.code}: {exc.message}", asked)
    except ServerError as exc:
        _fail(USAGE if exc.code in _USAGE_CODES else RUN_FAILED, exc.message, asked)
    except (Unreachable, HandshakeRejected, ConnectionClosed) as exc:
        _fail(UNREACHABLE, exc.message, asked)
    except ClientError as exc:
        _fail(RUN_FAILED, exc.message, asked)
    except TimeoutError:
        _fail(RUN_FAILED, f"no answer from {url} within {timeout:g} s", asked)
    except KeyboardInterrupt:
        _fail(130, "interrupted", asked)
    assert asked.ack is not None
    assert asked.final is not None
    raise typer.Exit(_print(asked.ack, asked.final, as_json=as_json))


def _print(ack: Ack, final: Event, *, as_json: bool) -> int:
    if final.type == "agent_error":
        code, message = final.data.get("code", "error"), final.data.get("message", "")
        if as_json:
            error = {"code": code, "message": message}
            _out(json.dumps({"run_id": ack.run_id, "thread_id": ack.thread_id, "error": error}))
        _err(f"the run failed: {code}: {message}")
        _err(f"thread: {ack.thread_id}")
        return RUN_FAILED
    result = final.data.get("result")
    report: dict[str, Any] = result if isinstance(result, dict) else {}
    answer = report.get("answer")
    if as_json:
        document: dict[str, Any] = {"run_id": ack.run_id, "thread_id": ack.thread_id, "answer": answer}
        document["report_type"] = report.get("report_type")
        if not isinstance(answer, dict):
            document["summary"] = report.get("summary")  # a server from before reports had an answer
        _out(json.dumps(document, ensure_ascii=False, indent=2))
    elif isinstance(answer, dict):
        _out(str(answer.get("text", "")))
        table = answer.get("table")
        if isinstance(table, dict) and table.get("rows"):
            _out("")
            _out(render_table(table))
    else:
        _out(str(report.get("summary", "")))
    _err(f"thread: {ack.thread_id}")
    return ANSWERED


def render_table(table: dict[str, Any]) -> str:
    """The answer's table as plain aligned text: numbers right-aligned, units in the header."""
    columns = [c if isinstance(c, dict) else {"label": str(c)} for c in table.get("columns", [])]
    rows = [row for row in table.get("rows", []) if isinstance(row, list)]
    header = [_header(column) for column in columns]
    cells = [
        [cell(value, column.get("unit")) for value, column in zip(row, columns, strict=False)] for row in rows
    ]
    numeric = [
        any(isinstance(row[i], int | float) and not isinstance(row[i], bool) for row in rows if i < len(row))
        for i in range(len(columns))
    ]
    widths = [
        max([len(header[i]), *(len(line[i]) for line in cells if i < len(line))]) for i in range(len(columns))
    ]

    def line(values: list[str]) -> str:
        padded = [
            (text.rjust(widths[i]) if numeric[i] else text.ljust(widths[i])) for i, text in enumerate(values)
        ]
        return "  ".join(padded).rstrip()

    return "\n".join(
        [line(header), "  ".join("-" * width for width in widths), *(line(row) for row in cells)]
    )


_PER = {
    "usd_per_month": "a month",
    "usd_per_request": "per request",
    "usd_per_1k_requests": "per 1k requests",
    "usd_per_user": "per user",
    "usd_per_feature": "per feature",
    "usd_per_1m_tokens": "per 1M tokens",
}
_NOTES = {"pct": "%", "ms": "ms", "requests_per_s": "requests/s", "tokens_per_s": "tokens/s"}


def _header(column: dict[str, Any]) -> str:
    label, unit = str(column.get("label") or column.get("key") or ""), column.get("unit")
    # Dollar cells carry their "$"; the header says what they are per, so a period's dollars never
    # read as monthly ones.
    note = f"$ {_PER[unit]}" if unit in _PER else _NOTES.get(str(unit), "")
    return f"{label} ({note})" if note and note not in label else label


def cell(value: Any, unit: Any = None) -> str:
    """One value as the web app shows it bare: $1,234.56 or $0.00412, 12.3, 1,234."""
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if unit == "usd" or unit in _PER:
        size = abs(value)
        text = f"{size:,.2f}" if size >= 1 or size == 0 else f"{size:.3g}"
        return f"{'-' if value < 0 else ''}${text}"
    if isinstance(value, int) or abs(value) >= 100 or float(value).is_integer():
        return f"{round(value):,}"
    return f"{value:,.1f}" if abs(value) >= 10 else f"{value:,.2f}"


def _out(text: str) -> None:
    sys.stdout.write(f"{text}\n")


def _err(text: str) -> None:
    sys.stdout.flush()  # the answer first, then the note on stderr, even when both go to one terminal
    sys.stderr.write(f"{text}\n")


def _fail(code: int, message: str, asked: Asked | None = None) -> NoReturn:
    _err(message)
    if asked is not None and asked.ack is not None:
        _err(f"thread: {asked.ack.thread_id}")
    raise typer.Exit(code)
