"""Benchmark: `analyze` over 1,000,000 normalized usage rows (target <= 5 s on the 2-core CI machine).

Generates the rows with the test workload generator (DuckDB SQL, every inefficiency planted), writes them
to one Parquet file, then times `analyze` (best and median of --runs) and prints the figures.

    .venv/bin/python bench/analysis.py [--rows 1000000] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.workload import PRICES, Workload, write
from tokenwise.analysis import analyze


def workload(rows: int) -> Workload:
    """Exactly `rows` requests (a multiple of 20,000) over 30 days, 7.25% of them planted inefficiencies."""
    planted = rows // 20_000 * 200
    # rows per knob: duplicates 5/4, runaway_outputs 20, retries 2, bloated_contexts 10, the others 1
    planted_rows = planted * 5 // 4 + 6 * planted
    return Workload(
        days=30,
        base_requests=rows - planted_rows,
        duplicates=planted,
        short_on_large=planted,
        nightly_job=planted,
        runaway_outputs=planted // 20,
        retries=planted // 2,
        shared_prefix=planted,
        bloated_contexts=planted // 10,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "usage.parquet"
        started = time.perf_counter()
        truth = write(workload(args.rows), path)
        generated = time.perf_counter() - started
        print(
            f"generated {truth.rows:,} rows in {generated:.2f} s ({path.stat().st_size / 1e6:.1f} MB Parquet)"
        )
        timings, cpu = [], []
        for _ in range(args.runs):
            started, started_cpu = time.perf_counter(), time.process_time()
            result = analyze([path], PRICES)
            timings.append(time.perf_counter() - started)
            cpu.append(time.process_time() - started_cpu)
        best, median = min(timings), statistics.median(timings)
        # CPU time (all threads) shows how much of the wall time was other load on a shared machine
        print(f"analyze: best {best:.2f} s, median {median:.2f} s wall over {args.runs} runs")
        print(f"         CPU {statistics.median(cpu):.2f} s median (DuckDB threads: 2 cores)")
        print(f"requests {result.measurements.requests:,}, strategies:")
        for s in result.strategies:
            planted = truth.monthly_savings.get(s.type)
            expected = f" (planted {planted:,.2f})" if planted is not None else ""
            print(f"  {s.type:17} ${s.monthly_savings_usd or 0:>10,.2f}/month{expected}")


if __name__ == "__main__":
    main()
