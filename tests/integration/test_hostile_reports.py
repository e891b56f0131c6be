"""Text from the data reaches a report's Markdown and CSV only escaped: no links, images or HTML the
report did not put there, no formula a spreadsheet would run. Through the real server: upload, ask over
the WebSocket, read GET /api/reports/{id}, its .md and its .csv."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.clients import Account, collect_run, open_ws, send_message, signup
from support.live import LiveServer

MarkdownIt = pytest.importorskip("markdown_it").MarkdownIt

LINKY = '[click](http://evil.example)![x](http://evil.example/a.png)<b>x</b>=HYPERLINK("http://evil.example")'
FORMULA = '=HYPERLINK("http://evil.example","x")'
MODELS = (LINKY, FORMULA, "@SUM(1+1)", "gpt-4o")
DATASET = "<script>alert(1)</script>[data](http://evil.example) www.evil.example"
QUESTIONS = (
    "How much did we spend per model? [here](http://evil.example) <img src=x onerror=alert(1)>",
    "how do I cut my LLM costs? ![](http://evil.example/q.png)",
)
# What a renderer makes of a link, an image, raw HTML or a bare URL it links
_ACTIVE = re.compile(r"<a\b|<img\b|<script\b|<b>|href=|src=", re.IGNORECASE)


def _csv(path: Path) -> Path:
    lines = ["ts,model,input_tokens,output_tokens,cost_usd"]
    for i in range(400):
        model = MODELS[i % len(MODELS)].replace('"', '""')
        lines.append(f'2025-03-0{1 + i % 7}T{i % 24:02d}:00:00Z,"{model}",{100 + i},{20 + i % 50},0.01')
    path.write_text("\n".join(lines) + "\n")
    return path


async def _report(
    server: LiveServer, account: Account, question: str
) -> tuple[dict[str, Any], str, str | None]:
    ws, _ = await open_ws(server.ws_url, account.access_token)
    async with ws:
        ack = await send_message(ws, question)
        events = await collect_run(ws, ack["run_id"], timeout=60)
    assert events[-1]["type"] == "agent_completed", events[-1]
    report_id = events[-1]["data"]["result"]["report_id"]
    headers = {"Authorization": f"Bearer {account.access_token}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as http:
        stored = (await http.get(f"/api/reports/{report_id}")).json()
        download = await http.get(f"/api/reports/{report_id}.md")
        table = await http.get(f"/api/reports/{report_id}.csv")
    assert download.status_code == 200
    assert download.text == stored["markdown"]
    if table.status_code == 404:
        return stored, download.text, None
    assert table.status_code == 200, table.text
    assert table.headers["content-type"].startswith("text/csv")
    return stored, download.text, table.text


async def test_names_and_question_from_the_data_are_escaped(server: LiveServer, tmp_path: Path) -> None:
    account = await signup(server.url)
    headers = {"Authorization": f"Bearer {account.access_token}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=60) as http:
        with _csv(tmp_path / "usage.csv").open("rb") as handle:
            created = await http.post(
                "/api/datasets", files={"file": ("usage.csv", handle)}, data={"name": DATASET}
            )
    assert created.status_code == 201, created.text

    tables = []
    for question in QUESTIONS:
        stored, markdown, table = await _report(server, account, question)
        html = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"]).render(markdown)
        assert not _ACTIVE.search(html), _ACTIVE.findall(html)
        for raw in ("[click](", "![x](", "<b>", "<script", "[data](", "[here](", "<img", "![](", "http://"):
            unescaped = re.compile(r"(?<!\\)" + re.escape(raw))  # the same text, markup not escaped
            assert not unescaped.search(markdown), (raw, markdown)
        assert "www.evil" not in markdown  # a bare www. link is autolinked by GFM renderers
        # the names are there, shown as themselves
        assert r"\[click\](http\://evil.example)" in markdown, markdown
        assert "[click](http://evil.example)![x](http://evil.example/a.png)" in html, html
        if table is not None:
            tables.append(table)
        assert stored["markdown"] == markdown

    assert tables, "no report had a table to export"
    for table in tables:
        cells = [cell for row in csv.reader(io.StringIO(table)) for cell in row]
        assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")], cells
        assert "'" + FORMULA in cells, cells
        assert "'@SUM(1+1)" in cells, cells
        # not a formula (it starts with `[`): kept as it is, CSV has no markup
        assert any(c.startswith("[click](http://evil.example)![x]") for c in cells), cells
