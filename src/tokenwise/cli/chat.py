"""`tokenwise chat`: sign in, send one message, show the agents' live events, print the report."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.markdown import Markdown
from rich.rule import Rule
from rich.text import Text

from tokenwise.cli import DEMO_EMAIL, DEMO_PASSWORD, app
from tokenwise.client import Client, ClientError, Connection, ConnectionClosed, Event, Method, Unreachable

# Close codes after which reconnecting and resuming makes sense: the server went away or restarted.
_RESUMABLE = {1001, 1006, 1011, 1012, 1013}
_RECONNECT_DELAYS_S = (0.5, 1.0, 2.0, 4.0, 8.0)
_SUPERVISOR = "supervisor"


class RunView:
    """Renders one run's events as they arrive; on a terminal the answer streams in a live preview."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.answer: list[str] = []
        self._started: dict[str, datetime | None] = {}
        self._live: Live | None = None
        self._announced_stream = False

    def __enter__(self) -> RunView:
        if self.console.is_terminal:
            self._live = Live(console=self.console, transient=True, refresh_per_second=12)
            self._live.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._live is not None:
            self._live.stop()

    def print(self, renderable: Any, *, one_line: bool = False) -> None:
        if one_line:
            self.console.print(renderable, no_wrap=True, overflow="ellipsis")
        else:
            self.console.print(renderable)

    def show(self, event: Event) -> None:
        """Render one event."""
        indent = "" if event.agent_name == _SUPERVISOR else "  "
        match event.type:
            case "agent_started":
                self._started[event.agent_name] = event.time
                line = Text(f"{indent}▶ ", style="bold cyan").append(event.agent_name, style="bold")
                if description := event.data.get("description"):
                    line.append(f"  {description}", style="dim")
                self.print(line, one_line=True)
            case "agent_thinking":
                self.print(Text(f"{indent}  · {event.data.get('thought', '')}", style="italic dim"))
            case "tool_executing":
                call = f"{event.tool_name}({summarize(event.data.get('args', {}), 100)})"
                self.print(Text(f"{indent}  ⚙ ", style="yellow").append(call), one_line=True)
            case "tool_completed":
                result = Text(f"{indent}    ↳ ", style="dim")
                if (duration := event.data.get("duration_ms")) is not None:
                    result.append(f"{float(duration):.1f} ms  ", style="cyan")
                result.append(summarize(event.data.get("result"), 100), style="dim")
                self.print(result, one_line=True)
            case "partial_result":
                self._stream(str(event.data.get("delta", "")))
            case "agent_completed":
                line = Text(f"{indent}✓ ", style="bold green").append(event.agent_name, style="bold")
                self.print(line.append(f"  {self._elapsed(event)}", style="cyan"))
            case "agent_error":
                code, message = event.data.get("code", "error"), event.data.get("message", "")
                line = Text(f"{indent}✗ ", style="bold red").append(event.agent_name, style="bold")
                self.print(line.append(f"  {code}: {message}  {self._elapsed(event)}", style="red"))

    def _elapsed(self, event: Event) -> str:
        started, ended = self._started.get(event.agent_name), event.time
        if started is None or ended is None:
            return ""
        elapsed_ms = (ended - started).total_seconds() * 1000
        return f"{elapsed_ms:.0f} ms" if elapsed_ms >= 1 else "<1 ms"

    def _stream(self, delta: str) -> None:
        self.answer.append(delta)
        if self._live is None:
            if not self._announced_stream:
                self.print(Text("  ✎ the answer is streaming in…", style="dim"))
                self._announced_stream = True
            return
        tail = "".join(self.answer).splitlines()[-12:]
        self._live.update(Group(Rule("answer (streaming)", style="dim"), Text("\n".join(tail), style="dim")))


def summarize(value: Any, width: int) -> str:
    """A one-line, bounded summary of tool arguments or a tool result."""
    if isinstance(value, dict):
        text = ", ".join(f"{key}={_brief(item)}" for key, item in value.items())
    else:
        text = _brief(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def _brief(value: Any) -> str:
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:39] + "…")
    if isinstance(value, list):
        return repr(value) if len(repr(value)) <= 40 else f"[{len(value)} items]"
    if isinstance(value, dict):
        return "{…}" if value else "{}"
    return repr(value)


class Conversation:
    """A signed-in client's chat connection; a run is followed across reconnects, resuming where it was."""

    def __init__(self, client: Client, method: Method) -> None:
        self.client, self.method = client, method
        self.conn: Connection | None = None

    async def __aenter__(self) -> Conversation:
        self.conn = await self.client.connect(self.method)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self.conn is not None:
            await self.conn.close()

    async def follow(self, run_id: str, view: RunView) -> Event:
        """Show the run's events up to the final one, and return that."""
        last_seq = 0
        for delay in (*_RECONNECT_DELAYS_S, None):
            try:
                if self.conn is None:
                    self.conn = await self.client.connect(self.method)
                    events = self.conn.resume(run_id, last_seq)
                else:
                    events = self.conn.events(run_id)
                async for event in events:
                    if event.seq <= last_seq:
                        continue  # shown before the reconnect
                    last_seq = event.seq
                    view.show(event)
                    if event.final:
                        return event
            except (ConnectionClosed, Unreachable) as exc:
                code = exc.code if isinstance(exc, ConnectionClosed) else 1006
                if code not in _RESUMABLE or delay is None:
                    raise
                view.print(Text(f"  {exc.message}; resuming after event {last_seq}", style="yellow"))
                self.conn = None
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # the last attempt either returns or raises


async def _chat(url: str, email: str, password: str, message: str, thread: str | None, method: Method) -> int:
    console = Console(highlight=False)
    async with Client(url) as client:
        await client.sign_in(email, password)
        async with Conversation(client, method) as conversation:
            assert conversation.conn is not None
            started = time.perf_counter()
            ack = await conversation.conn.send_message(message, thread_id=thread)
            with RunView(console) as view:
                final = await conversation.follow(ack.run_id, view)
            elapsed = time.perf_counter() - started
    console.print(Rule(f"report · {elapsed * 1000:.0f} ms", style="dim"))
    if final.type == "agent_error":
        code, why = final.data.get("code"), final.data.get("message")
        console.print(Text(f"the run ended with an error: {code}: {why}", style="red"))
        return 1
    console.print(Markdown("".join(view.answer) or _fallback_report(final.data.get("result"))))
    console.print(Text(f"thread {ack.thread_id} (pass --thread to continue it)", style="dim"))
    return 0


def _fallback_report(result: Any) -> str:
    if isinstance(result, dict):
        return f"# {result.get('title', 'Report')}\n\n{result.get('summary', '')}\n"
    return "(the run finished without a report)"


@app.command()
def chat(
    message: Annotated[
        str | None, typer.Argument(help="your question; asked interactively when absent")
    ] = None,
    url: Annotated[str, typer.Option(help="the server's base URL")] = "http://127.0.0.1:8000",
    email: Annotated[str, typer.Option(help="sign in as (default: the demo user)")] = DEMO_EMAIL,
    password: Annotated[str, typer.Option(help="password (default: the demo user's)")] = DEMO_PASSWORD,
    thread: Annotated[str | None, typer.Option(help="continue this thread")] = None,
    method: Annotated[Method, typer.Option(help="how the WebSocket carries the credential")] = Method.HEADER,
) -> None:
    """Sign in, send a message, watch the agents work live, and print their report."""
    if message is None:
        message = typer.prompt("Your question")
    if not message.strip():
        raise typer.BadParameter("the message is empty", param_hint="MESSAGE")
    errors = Console(stderr=True, highlight=False)
    try:
        code = asyncio.run(_chat(url, email, password, message, thread, method))
    except ClientError as exc:
        errors.print(Text(exc.message, style="red"))
        raise typer.Exit(1) from exc
    except TimeoutError as exc:
        errors.print(Text(f"no answer from {url} in time", style="red"))
        raise typer.Exit(1) from exc
    except KeyboardInterrupt as exc:
        errors.print(Text("interrupted", style="yellow"))
        raise typer.Exit(130) from exc
    raise typer.Exit(code)
