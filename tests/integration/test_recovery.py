"""A run left `running` by a process that died is ended at the next start, so no client waits forever."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import httpx
from sqlalchemy import insert

from support.clients import open_ws, signup
from support.live import LiveServer, test_settings
from tokenwise.db.database import Database
from tokenwise.db.tables import MessageRow, RunEventRow, RunRow, ThreadRow, utcnow
from tokenwise.session.contract import violations
from tokenwise.session.events import RunEvent


async def _leave_a_run_running(database_url: str, user_id: str) -> str:
    """What a killed process leaves behind: a run marked running with two of its events stored."""
    db = Database(database_url)
    events = [
        RunEvent.create(
            user_id=user_id, run_id="run-1", thread_id="th-1", seq=seq, type=kind, agent_name=agent, data={}
        )
        for seq, (kind, agent) in enumerate([("agent_started", "supervisor"), ("agent_started", "triage")], 1)
    ]
    async with db.session() as session:
        await session.execute(
            insert(ThreadRow).values(
                id="th-1", user_id=user_id, title="t", created_at=utcnow(), updated_at=utcnow()
            )
        )
        await session.execute(
            insert(MessageRow).values(
                id="m-1",
                thread_id="th-1",
                user_id=user_id,
                role="user",
                content="q",
                run_id="run-1",
                created_at=utcnow(),
            )
        )
        await session.execute(
            insert(RunRow).values(
                id="run-1",
                thread_id="th-1",
                user_id=user_id,
                message_id="m-1",
                status="running",
                created_at=utcnow(),
                last_seq=0,
            )
        )
        await session.execute(
            insert(RunEventRow),
            [{"run_id": e.run_id, "seq": e.seq, "type": e.type, "body": e.body} for e in events],
        )
    await db.dispose()
    return "run-1"


async def test_an_interrupted_run_gets_its_final_event_at_the_next_start(
    tmp_path: Path, start_server: Callable[..., LiveServer]
) -> None:
    first = start_server(data_dir=tmp_path)
    account = await signup(first.url)
    await asyncio.to_thread(first.stop)
    run_id = await _leave_a_run_running(first.settings.resolved_database_url, account.user_id)

    second = LiveServer(test_settings(tmp_path)).start()
    try:
        headers = {"Authorization": f"Bearer {account.access_token}"}
        async with httpx.AsyncClient(base_url=second.url, headers=headers) as http:
            run = (await http.get(f"/api/runs/{run_id}")).json()
            events = (await http.get(f"/api/runs/{run_id}/events")).json()["events"]
        assert run["status"] == "failed"
        assert run["error_code"] == "interrupted"
        assert [(e["seq"], e["type"], e["agent_name"]) for e in events[2:]] == [
            (3, "agent_error", "triage"),
            (4, "agent_error", "supervisor"),
        ]
        assert events[-1]["data"]["code"] == "interrupted"
        assert violations(events) == []  # the triage step that was under way is closed too
        ws, _ = await open_ws(second.ws_url, account.access_token)
        async with ws:
            await ws.send(f'{{"type": "resume", "run_id": "{run_id}", "after_seq": 3}}')
            resumed = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert (resumed["seq"], resumed["data"]["final"]) == (4, True)
    finally:
        await asyncio.to_thread(second.stop)
