"""Benchmark: the answer evaluation (issue 8): its score, and the time from each question to its final event.

Generates the evaluation log (`tests/support/evaluation_log.py`: 61 days, about 48,600 rows at the default
scale), starts one server process in a temporary data directory (or uses `--url`), signs up a fresh user,
uploads the log, asks every question of `tests/support/evaluation.py` over a WebSocket (follow-ups in
their thread), and prints the score (N/M right) and the time to the final event per answer (p50/p95/max).

`--rows 1000000` generates the same distributions scaled to about a million rows: the truths are then not
checked (only the timing). Target: p95 time to the final event <= 1.5 s on 1,000,000 rows. Questions are
asked one at a time unless `--concurrency` says otherwise, so the timing is free of queueing.

    .venv/bin/python bench/answers.py [--rows 1000000] [--url http://127.0.0.1:8000] [--show failures]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support import evaluation_log
from support.evaluation import CASES, Log, check, truths
from support.evaluation_run import Asked, ask_all, sign_up, timing_line, upload
from support.live import ServerProcess


def score(asked: dict[int, Asked], show: str) -> str:
    """Check every answer against the truths of the default-scale log; the score line."""
    expected = truths(Log(evaluation_log.rows()))
    right = 0
    for index, item in sorted(asked.items()):
        problems = [item.error] if item.error else check(CASES[index], expected[index], item.answer)
        right += not problems
        if show == "all" or (problems and show == "failures"):
            text = (item.answer or {}).get("text", "(no answer)")
            print(f"{'FAIL' if problems else 'ok'} {CASES[index].slug}: {CASES[index].question!r}")
            if problems:
                print(f"  {'; '.join(map(str, problems))}")
            print(f"  answered: {text}")
    return f"score: {right}/{len(CASES)} right"


async def run(url: str, csv: Path, args: argparse.Namespace) -> dict[int, Asked]:
    token = await sign_up(url)
    started = time.perf_counter()
    dataset = await upload(url, token, csv)
    print(f"uploaded {dataset['row_count']:,} rows in {time.perf_counter() - started:.2f} s")
    return await ask_all(url, token, concurrency=args.concurrency, timeout=args.timeout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=None, help="scale the log to about this many rows")
    parser.add_argument("--url", default=None, help="a running server (a fresh user is registered there)")
    parser.add_argument("--concurrency", type=int, default=1, help="conversations asked at once")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for one answer")
    parser.add_argument(
        "--show",
        choices=("none", "failures", "all"),
        default="none",
        help="print these answers and what is wrong",
    )
    args = parser.parse_args()
    scale = 1.0 if args.rows is None else evaluation_log.scale_for(args.rows)
    with tempfile.TemporaryDirectory(prefix="tokenwise-answers-") as tmp:
        csv = Path(tmp) / "llm-usage.csv"
        started = time.perf_counter()
        written = evaluation_log.write_csv(csv, evaluation_log.iter_rows(scale=scale))
        print(
            f"generated {written:,} rows ({csv.stat().st_size / 1e6:.1f} MB CSV) "
            f"in {time.perf_counter() - started:.1f} s"
        )
        server = None if args.url else ServerProcess(Path(tmp) / "data").start()
        try:
            asked = asyncio.run(run(server.url if server else args.url.rstrip("/"), csv, args))
        finally:
            if server is not None:
                server.stop()
    verdict = score(asked, args.show) if scale == 1.0 else f"score: not checked at {written:,} rows"
    print(f"{verdict}; {len(CASES)} questions on {written:,} rows, {os.cpu_count()} CPU(s)")
    print(f"{timing_line(asked)} (target: p95 <= 1.5 s on 1,000,000 rows)")
    slowest = sorted(asked.values(), key=lambda item: -item.seconds)[:5]
    print("slowest: " + ", ".join(f"{CASES[item.index].slug} {item.seconds:.2f} s" for item in slowest))


if __name__ == "__main__":
    main()
