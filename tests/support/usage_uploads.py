"""Usage files as a user would upload them: the planted workload as a CSV export, a BurstGPT-style log, and
the price file that names the workload's models.

The workload CSV carries `prompt_text` instead of hashes, built so that Tokenwise's own hashing on arrival
(SHA-256 of the text, and of its first 1,024 characters) groups requests exactly as the generator did: a
request of a shared-prefix family starts with 1,024 characters unique to the family.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import duckdb

from support.workload import LARGE, SMALL, Truth, Workload, write

_EXPORT = """
COPY (
    SELECT strftime(ts, '%Y-%m-%dT%H:%M:%S.%fZ') AS timestamp, model, provider, input_tokens, output_tokens,
        cached_input_tokens, latency_ms, status, user_tag AS user, feature, request_id,
        CASE WHEN prefix_hash <> prompt_hash THEN rpad(prefix_hash, 1024, '.') || ' ' || prompt_hash
             ELSE prompt_hash END AS prompt_text,
        max_output_tokens AS max_tokens {cost}
    FROM gen ORDER BY ts
) TO $path (FORMAT csv, HEADER)
"""


def write_upload_csv(workload: Workload, path: Path) -> Truth:
    """The workload as a CSV usage export (what a gateway would log); returns the generator's truth."""
    with duckdb.connect() as con:
        truth = write(workload, path.with_suffix(".parquet"), con)
        cost = ", cost AS cost_usd" if workload.report_cost else ""
        con.execute(_EXPORT.format(cost=cost), {"path": os.fspath(path)})
    path.with_suffix(".parquet").unlink()
    return truth


def write_price_file(path: Path) -> Path:
    """A prices file (the shipped table's shape) with the workload's two models."""
    models = {
        p.model: {
            "provider": p.provider,
            "input": p.input_per_mtok,
            "cached_input": p.cached_input_per_mtok,
            "output": p.output_per_mtok,
            "batch_discount": p.batch_discount,
            **({"cheaper_tier": p.cheaper_tier} if p.cheaper_tier else {}),
        }
        for p in (LARGE, SMALL)
    }
    path.write_text(json.dumps({"as_of": "2025-01-15", "models": models}))
    return path


def write_burstgpt(path: Path, rows: int = 3000) -> list[dict[str, str]]:
    """A BurstGPT-style log: two models, two log types, failures as 0 response tokens, 50 hours long."""
    lines = []
    for i in range(rows):
        model = "GPT-4" if i % 4 == 0 else "ChatGPT"
        request = 200 + (i * 37) % 1800
        response = 0 if i % 25 == 0 else 50 + (i * 53) % 600
        lines.append(
            {
                "Timestamp": str(i * 60 + (i % 7)),
                "Model": model,
                "Request tokens": str(request),
                "Response tokens": str(response),
                "Total tokens": str(request + response),
                "Log Type": "API log" if i % 3 == 0 else "Conversation log",
            }
        )
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(lines[0]))
        writer.writeheader()
        writer.writerows(lines)
    return lines
