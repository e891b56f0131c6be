"""Benchmark: hostile clients against one `tokenwise serve` process (issue 11), and what the others see.

1. memory: 20 concurrent 200 MiB bodies to `/auth/login` (half declared, half chunked); the server's
   VmRSS (from /proc/PID/status) before, at its peak and after; the answers (413 expected).
2. run flood: one user sends messages as fast as the protocol lets it (`--flood-rate` a second, 60 by
   default: 300 in 5 s, over `--flood-connections` connections) while another user sends `--runs` runs
   one after another; that user's time from sending to the ack and to the run's first event (p50/p99),
   against the same runs on the quiet server first. The flood's answers are counted by type/code.
3. gzip bombs: one user uploads two 0.5 MB gzip CSVs of 5,000,000 rows each (built in memory: a header
   and one row, repeated, compressed) while another user's 100-row upload is timed (and alone first).
4. slowloris and fuzz: 50 connections that send their request headers a byte at a time (how many the
   server closed, and how soon; /health latency meanwhile), then `--fuzz-frames` random frames over 20
   authenticated connections at the protocol's frame rate (closes by code, `internal_error` frames).

Over every phase, HTTP 500s and 1011 closes are counted, and the server log's tracebacks at the end.
The server runs with its defaults (`make run` mode: the embedded worker, SQLite, per-user limits as
shipped) in a temporary data directory on a free port.

    .venv/bin/python bench/abuse.py [--runs 20] [--fuzz-frames 2000] [--json]

It takes about a minute and a half on a 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import websockets
from rich.console import Console
from rich.table import Table

from tokenwise.client.api import Client
from tokenwise.client.connection import Connection
from tokenwise.client.harness import ProcessProbe, machine, wait_healthy
from tokenwise.client.load import percentile

MiB = 1024 * 1024
QUESTION = "How do I cut my LLM costs by 30%?"
CSV_HEADER = "ts,model,input_tokens,output_tokens\n"
PASSWORD = "correct-horse-battery-1"
SEEN: Counter[str] = Counter()  # over every phase: "http_500", "ws_1011", "internal_error_frame"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    """`tokenwise serve` with its defaults, in a temporary data directory on a free port."""

    def __init__(self) -> None:
        self.data_dir = Path(tempfile.mkdtemp(prefix="tokenwise-abuse-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/ws"
        self.log = self.data_dir / "server.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENWISE_") and k != "PORT"}
        self.env |= {"TOKENWISE_DATA_DIR": str(self.data_dir), "TOKENWISE_HOST": "127.0.0.1"}
        self.env["TOKENWISE_PORT"] = str(self.port)
        self.process: subprocess.Popen[bytes] | None = None

    @contextlib.contextmanager
    def running(self) -> Iterator[Server]:
        try:
            subprocess.run(
                [sys.executable, "-m", "tokenwise", "migrate"], env=self.env, check=True, capture_output=True
            )
            with self.log.open("ab") as out:
                self.process = subprocess.Popen(
                    [sys.executable, "-m", "tokenwise", "serve", "--log-level", "warning"],
                    env=self.env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            self._wait_healthy()
            yield self
        finally:
            if self.process is not None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def _wait_healthy(self) -> None:
        assert self.process is not None
        wait_healthy(self.url, self.process, self.log)

    @property
    def probe(self) -> ProcessProbe:
        assert self.process is not None
        return ProcessProbe(self.process.pid)

    def tracebacks(self) -> int:
        return self.log.read_text(errors="replace").count("Traceback (most recent call last)")


async def sign_up(server: Server) -> Client:
    client = Client(server.url)
    email = f"abuse-{uuid.uuid4().hex[:10]}@example.com"
    await client.sign_up(email, PASSWORD)
    await client.sign_in(email, PASSWORD)
    return client


def ms(values: list[float], pct: float) -> float:
    return round(percentile(values, pct) * 1000, 1) if values else float("nan")


# ---- 1. over-size bodies ----------------------------------------------------------------------------


def _oversize_login(port: int, declared: bool, total: int = 200 * MiB) -> bytes:
    """POST a `total`-byte JSON body to /auth/login, declared or chunked; the server's answer."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    head = "POST /auth/login HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
    head += f"content-length: {total}\r\n\r\n" if declared else "transfer-encoding: chunked\r\n\r\n"
    piece = b'{"email":"' + b"a" * (MiB - 20)
    answer = b""
    try:
        sock.sendall(head.encode())
        sent = 0
        while sent < total:
            sock.sendall(piece if declared else f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            sent += len(piece)
    except OSError:
        pass  # refused and closed before the body was sent: the point
    try:
        while chunk := sock.recv(65536):
            answer += chunk
    except OSError:
        pass
    sock.close()
    return answer


def oversize_bodies(server: Server, count: int = 20) -> dict[str, Any]:
    probe = server.probe
    before = peak = probe.rss_bytes()
    answers: list[bytes] = []
    started = time.perf_counter()
    threads = [
        threading.Thread(target=lambda d=i % 2 == 0: answers.append(_oversize_login(server.port, d)))
        for i in range(count)
    ]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        peak = max(peak, probe.rss_bytes())
        time.sleep(0.02)
    took = time.perf_counter() - started
    time.sleep(0.5)
    statuses = Counter(answer[9:12].decode(errors="replace") or "closed" for answer in answers)
    SEEN["http_500"] += statuses.get("500", 0)
    return {
        "bodies": count,
        "answers": dict(statuses),
        "rss_before_mib": round(before / MiB, 1),
        "rss_peak_mib": round(peak / MiB, 1),
        "rss_growth_mib": round((peak - before) / MiB, 1),
        "rss_after_mib": round(probe.rss_bytes() / MiB, 1),
        "took_s": round(took, 2),
    }


# ---- 2. a run flood and another user's first event ---------------------------------------------------


async def timed_runs(conn: Connection, runs: int, every_s: float = 0.0) -> tuple[list[float], list[float]]:
    """`runs` runs one after another, one every `every_s` at most: seconds from sending to the ack, and
    to the first event."""
    to_ack: list[float] = []
    to_first: list[float] = []
    began = time.perf_counter()
    for n in range(runs):
        await asyncio.sleep(max(0.0, began + n * every_s - time.perf_counter()))
        started = time.perf_counter()
        ack = await conn.send_message(QUESTION)
        to_ack.append(time.perf_counter() - started)
        first = True
        async for _event in conn.events(ack.run_id):
            if first:
                to_first.append(time.perf_counter() - started)
                first = False
    return to_ack, to_first


async def _flood(
    server: Server, token: str, rate: float, connections: int, stop: asyncio.Event
) -> Counter[str]:
    """Messages at `rate` a second over `connections` connections until `stop` (at least 5 s)."""
    answers: Counter[str] = Counter()
    sockets = [
        await websockets.connect(server.ws_url, additional_headers={"Authorization": f"Bearer {token}"})
        for _ in range(connections)
    ]
    for ws in sockets:
        await ws.recv()  # connection_established

    async def read(ws: websockets.ClientConnection) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for text in ws:
                frame = json.loads(text)
                if frame["type"] == "ack":
                    answers["ack"] += 1
                elif frame["type"] == "error":
                    answers[str(frame.get("code"))] += 1
                elif frame.get("seq") == 1:
                    answers["runs started"] += 1
        if ws.close_code == 1011:
            SEEN["ws_1011"] += 1

    readers = [asyncio.create_task(read(ws)) for ws in sockets]
    started = time.perf_counter()
    sent = 0
    while not stop.is_set() or time.perf_counter() - started < 5:
        due = started + sent / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        frame = {"type": "user_message", "content": QUESTION, "client_message_id": uuid.uuid4().hex}
        with contextlib.suppress(websockets.ConnectionClosed):
            await sockets[sent % connections].send(json.dumps(frame))
        sent += 1
    answers["sent"] = sent
    answers["flood_s"] = round(time.perf_counter() - started)
    await asyncio.sleep(1.0)  # the last answers
    for ws in sockets:
        await ws.close()
    await asyncio.gather(*readers)
    return answers


async def run_flood(server: Server, runs: int, rate: float, connections: int) -> dict[str, Any]:
    """The same runs of another user on the quiet server, then (another user again: each stays within
    its own runs a minute) while one user floods."""
    quiet_user, victim, attacker = await sign_up(server), await sign_up(server), await sign_up(server)
    assert attacker.tokens is not None
    every_s = 4.0 / runs  # spread over the flood's 5 s (after its first second)
    try:
        async with await quiet_user.connect() as conn:
            await timed_runs(conn, 2)  # warm up (first-run caches)
            quiet_ack, quiet_first = await timed_runs(conn, runs, every_s)
        async with await victim.connect() as conn:
            await timed_runs(conn, 2)
            stop = asyncio.Event()
            flood = asyncio.create_task(_flood(server, attacker.tokens.access_token, rate, connections, stop))
            await asyncio.sleep(1.0)  # the flood is under way
            flood_ack, flood_first = await timed_runs(conn, runs, every_s)
            stop.set()
            answers = await flood
    finally:
        for client in (quiet_user, victim, attacker):
            await client.aclose()
    return {
        "quiet": {
            "ack_p50_ms": ms(quiet_ack, 50),
            "first_p50_ms": ms(quiet_first, 50),
            "first_p99_ms": ms(quiet_first, 99),
            "first_over_50ms": sum(v > 0.05 for v in quiet_first),
        },
        "flood": {
            "ack_p50_ms": ms(flood_ack, 50),
            "first_p50_ms": ms(flood_first, 50),
            "first_p99_ms": ms(flood_first, 99),
            "first_over_50ms": sum(v > 0.05 for v in flood_first),
        },
        "flood_answers": dict(answers),
        "runs": runs,
    }


# ---- 3. gzip bombs and another user's upload --------------------------------------------------------


def _row(i: int) -> str:
    return f"2024-01-0{1 + i % 9}T{i % 24:02d}:{i % 60:02d}:00Z,gpt-4o,{i % 1000},{i % 97}\n"


def gzip_bomb(rows: int, seed: int) -> bytes:
    """A CSV of `rows` identical rows, gzip-compressed in memory: one member of 100,000 rows repeated
    (several members are one valid gzip stream), about 0.5 MB for 5,000,000 rows."""
    member = gzip.compress(_row(seed).encode() * 100_000, 9)
    return gzip.compress(CSV_HEADER.encode()) + member * (rows // 100_000)


async def _upload(http: httpx.AsyncClient, token: str, name: str, content: bytes) -> tuple[int, float]:
    started = time.perf_counter()
    response = await http.post(
        "/api/datasets", files={"file": (name, content)}, headers={"Authorization": f"Bearer {token}"}
    )
    SEEN["http_500"] += response.status_code == 500
    return response.status_code, time.perf_counter() - started


async def upload_bombs(server: Server) -> dict[str, Any]:
    victim, attacker = await sign_up(server), await sign_up(server)
    assert victim.tokens is not None
    assert attacker.tokens is not None
    bombs = [gzip_bomb(5_000_000, seed) for seed in (1, 2)]
    small = (CSV_HEADER + "".join(_row(i) for i in range(100))).encode()
    async with httpx.AsyncClient(base_url=server.url, timeout=120) as http:
        quiet_status, quiet_s = await _upload(http, victim.tokens.access_token, "quiet.csv", small)
        started = time.perf_counter()
        attacks = [
            asyncio.create_task(_upload(http, attacker.tokens.access_token, f"bomb{i}.csv.gz", bomb))
            for i, bomb in enumerate(bombs)
        ]
        await asyncio.sleep(0.05)
        other = (CSV_HEADER + "".join(_row(i) for i in range(100, 200))).encode()  # not a duplicate
        status, took = await _upload(http, victim.tokens.access_token, "small.csv", other)
        refused = await asyncio.gather(*attacks)
        bombs_s = time.perf_counter() - started
    await victim.aclose()
    await attacker.aclose()
    return {
        "bomb_bytes": [len(bomb) for bomb in bombs],
        "bomb_answers": [code for code, _ in refused],
        "bombs_s": round(bombs_s, 2),
        "quiet_upload": {"status": quiet_status, "ms": round(quiet_s * 1000, 1)},
        "upload_under_bombs": {"status": status, "ms": round(took * 1000, 1)},
    }


# ---- 4. slowloris and fuzzed frames -----------------------------------------------------------------


async def slowloris(server: Server, count: int = 50, limit_s: float = 20.0) -> dict[str, Any]:
    """`count` connections sending their headers a byte every 0.5 s: when the server closed each one."""
    started = time.perf_counter()
    streams = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(count)]
    closed_after: list[float] = []
    answers: Counter[str] = Counter()

    async def crawl(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\nx-slow: ")
        try:
            while time.perf_counter() - started < limit_s:
                writer.write(b"a")
                await writer.drain()
                with contextlib.suppress(TimeoutError):
                    data = await asyncio.wait_for(reader.read(65536), 0.5)
                    answers[data[9:12].decode(errors="replace") or "closed"] += 1
                    closed_after.append(time.perf_counter() - started)
                    return
        except OSError:
            answers["reset"] += 1
            closed_after.append(time.perf_counter() - started)
        finally:
            writer.close()

    crawling = asyncio.gather(*(crawl(r, w) for r, w in streams))
    health: list[float] = []
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        for _ in range(10):
            await asyncio.sleep(0.5)
            began = time.perf_counter()
            response = await http.get("/health")
            health.append(time.perf_counter() - began)
            SEEN["http_500"] += response.status_code == 500
    await crawling
    SEEN["http_500"] += answers.get("500", 0)
    return {
        "connections": count,
        "closed_by_server": len(closed_after),
        "still_open_after_s": limit_s if len(closed_after) < count else None,
        "answers": dict(answers),
        "closed_after_max_s": round(max(closed_after), 1) if closed_after else None,
        "health_p50_ms": ms(health, 50),
        "health_max_ms": ms(health, 100),
    }


FIELDS = ["content", "message", "text", "thread_id", "client_message_id", "run_id", "after_seq", "limit"]
FIELDS += ["token", "data", "payload", "type", "user_request"]
TYPES = ["user_message", "resume", "stop_agent", "heartbeat", "auth_refresh", "get_thread_history"]
TYPES += ["auth", "diagnostics", "nonsense", ""]
POOL: list[Any] = [
    None,
    True,
    -1,
    0,
    2**63,
    2**64 + 1,
    -(2**63) - 1,
    1e308,
    "",
    "x" * 300,
    "a\u0000b",
    [],
    {},
]
POOL += [[[[]]], {"content": 5}, "00000000-0000-0000-0000-000000000000"]


def random_frame(rng: random.Random) -> str:
    choice = rng.random()
    if choice < 0.05:
        return rng.choice(["[", "{", '{"a":[']) * rng.randint(100, 3000)
    if choice < 0.1:
        return "".join(chr(rng.randint(0, 0x2FFF)) for _ in range(rng.randint(0, 60)))
    frame: dict[str, Any] = {"type": rng.choice(TYPES)}
    for name in rng.sample(FIELDS, rng.randint(0, 4)):
        frame[name] = rng.choice(POOL)
    return json.dumps(frame)


async def fuzz(server: Server, frames: int, connections: int = 20, per_s: float = 9.0) -> dict[str, Any]:
    """`frames` random frames over `connections` connections of 4 users, at `per_s` a connection (under
    the protocol's frame rate, so that they are parsed rather than refused as too many)."""
    users = [await sign_up(server) for _ in range(4)]
    rng = random.Random(11)
    closes: Counter[int] = Counter()
    replies: Counter[str] = Counter()
    each = max(1, frames // connections)

    async def one(index: int) -> None:
        client = users[index % len(users)]
        assert client.tokens is not None
        headers = {"Authorization": f"Bearer {client.tokens.access_token}"}
        ws = await websockets.connect(server.ws_url, additional_headers=headers)
        await ws.recv()

        async def read(sock: websockets.ClientConnection) -> None:
            with contextlib.suppress(websockets.ConnectionClosed):
                async for text in sock:
                    frame = json.loads(text)
                    if frame.get("type") == "error":
                        replies[str(frame.get("code"))] += 1

        reader = asyncio.create_task(read(ws))
        started = time.perf_counter()
        for n in range(each):
            await asyncio.sleep(max(0.0, started + n / per_s - time.perf_counter()))
            try:
                await ws.send(random_frame(rng))
            except websockets.ConnectionClosed:
                await reader
                closes[ws.close_code or 1006] += 1
                ws = await websockets.connect(server.ws_url, additional_headers=headers)
                await ws.recv()
                reader = asyncio.create_task(read(ws))
        await asyncio.sleep(0.5)
        await ws.close()
        await reader
        if ws.close_code not in (None, 1000):
            closes[ws.close_code] += 1

    await asyncio.gather(*(one(i) for i in range(connections)))
    for client in users:
        await client.aclose()
    SEEN["ws_1011"] += closes.get(1011, 0)
    SEEN["internal_error_frame"] += replies.get("internal_error", 0)
    return {"frames": each * connections, "closes": dict(closes), "error_frames": dict(replies)}


# ---- the report -------------------------------------------------------------------------------------


def render(report: dict[str, Any], console: Console) -> None:
    table = Table(title="abuse against one server (make run mode, default limits)")
    table.add_column("phase")
    table.add_column("what the attacker got")
    table.add_column("what the others saw / the server")
    if body := report.get("oversize_bodies"):
        table.add_row(
            f"{body['bodies']} x 200 MiB to /auth/login",
            f"answers {body['answers']}",
            f"VmRSS {body['rss_before_mib']} → peak {body['rss_peak_mib']} MiB "
            f"(+{body['rss_growth_mib']}), after {body['rss_after_mib']} MiB",
        )
    if flood := report.get("run_flood"):
        answers = flood["flood_answers"]
        quiet, flooded = flood["quiet"], flood["flood"]
        table.add_row(
            f"run flood ({answers.get('sent')} messages in {answers.get('flood_s')} s)",
            ", ".join(f"{k} {v}" for k, v in answers.items() if k not in ("sent", "flood_s")),
            f"other user's first event p50/p99: quiet {quiet['first_p50_ms']}/{quiet['first_p99_ms']} ms, "
            f"flooded {flooded['first_p50_ms']}/{flooded['first_p99_ms']} ms ({flood['runs']} runs); "
            f"ack p50 {quiet['ack_p50_ms']} → {flooded['ack_p50_ms']} ms",
        )
    if bombs := report.get("gzip_bombs"):
        under = bombs["upload_under_bombs"]
        table.add_row(
            f"2 gzip bombs ({', '.join(f'{b / 1e6:.2f} MB' for b in bombs['bomb_bytes'])}, 5 M rows each)",
            f"answers {bombs['bomb_answers']} in {bombs['bombs_s']} s",
            f"other user's 100-row upload: alone {bombs['quiet_upload']['ms']} ms, under the bombs "
            f"{under['ms']} ms ({under['status']})",
        )
    if loris := report.get("slowloris"):
        table.add_row(
            f"slowloris ({loris['connections']} connections)",
            f"closed by the server {loris['closed_by_server']}/{loris['connections']} "
            f"(last after {loris['closed_after_max_s']} s), answers {loris['answers']}",
            f"/health meanwhile p50 {loris['health_p50_ms']} ms, max {loris['health_max_ms']} ms",
        )
    if fuzzed := report.get("fuzz"):
        errors = dict(Counter(fuzzed["error_frames"]).most_common(4))
        table.add_row(f"fuzz ({fuzzed['frames']} frames)", f"closes {fuzzed['closes']}; errors {errors}", "")
    seen = report["seen"]
    table.add_row(
        "overall",
        "",
        f"HTTP 500: {seen['http_500']}, close 1011: {seen['ws_1011']}, internal_error frames: "
        f"{seen['internal_error_frame']}, tracebacks in the server log: {seen['log_tracebacks']}",
    )
    console.print(table)
    cpu = report["machine"]
    console.print(f"{report['took_s']} s on {cpu['cores']} cores ({cpu['cpu_model']})")


PHASES = ("oversize_bodies", "run_flood", "gzip_bombs", "slowloris", "fuzz")


async def measure(server: Server, args: argparse.Namespace, say: Console) -> dict[str, Any]:
    report: dict[str, Any] = {}
    phases = set(args.phase or PHASES)
    if "oversize_bodies" in phases:
        say.print("20 over-size bodies to /auth/login …")
        report["oversize_bodies"] = await asyncio.to_thread(oversize_bodies, server)
    if "run_flood" in phases:
        say.print(f"run flood ({args.flood_rate:g}/s) against another user's {args.runs} runs …")
        report["run_flood"] = await run_flood(server, args.runs, args.flood_rate, args.flood_connections)
    if "gzip_bombs" in phases:
        say.print("two gzip bombs against another user's upload …")
        report["gzip_bombs"] = await upload_bombs(server)
    if "slowloris" in phases:
        say.print("slowloris …")
        report["slowloris"] = await slowloris(server)
    if "fuzz" in phases:
        say.print(f"fuzz ({args.fuzz_frames} frames) …")
        report["fuzz"] = await fuzz(server, args.fuzz_frames)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--runs", type=int, default=20, help="the other user's runs, quiet and flooded (at most 55)"
    )
    parser.add_argument("--flood-rate", type=float, default=60.0, help="flood messages a second")
    parser.add_argument("--flood-connections", type=int, default=5)
    parser.add_argument("--fuzz-frames", type=int, default=2000)
    parser.add_argument(
        "--phase", action="append", choices=PHASES, help="run only this phase (repeatable; default: all)"
    )
    parser.add_argument(
        "--env", action="append", default=[], metavar="TOKENWISE_X=V", help="a setting for the server"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    say = Console(stderr=True, highlight=False)
    started = time.perf_counter()
    server = Server()
    server.env |= dict(item.split("=", 1) for item in args.env)
    with server.running():
        report = asyncio.run(measure(server, args, say))
        report["seen"] = {**{k: 0 for k in ("http_500", "ws_1011", "internal_error_frame")}, **SEEN}
        report["seen"]["log_tracebacks"] = server.tracebacks()
    report["took_s"] = round(time.perf_counter() - started, 1)
    report["machine"] = machine()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        render(report, Console(width=200))


if __name__ == "__main__":
    main()
