"""A real run over a real WebSocket: the five critical events, in the contract's order, and a report."""

from __future__ import annotations

import httpx

from support.clients import collect_run, open_ws, send_message, signup
from support.live import LiveServer
from tokenwise.session.contract import missing_critical, violations


async def test_run_shows_critical_events_in_contract_order(server: LiveServer) -> None:
    account = await signup(server.url)
    ws, welcome = await open_ws(server.ws_url, account.access_token)
    async with ws:
        assert welcome["user_id"] == account.user_id
        assert welcome["protocol_version"] == 1
        ack = await send_message(
            ws, "Where is our LLM spend going and how do we cut it 30%?", client_message_id="m-1"
        )
        events = await collect_run(ws, ack["run_id"])
    assert ack["client_message_id"] == "m-1"
    assert violations(events) == []
    assert missing_critical(events) == []
    agents = [e["agent_name"] for e in events if e["type"] == "agent_started"]
    assert agents == ["supervisor", "triage", "data_helper", "data", "optimization", "actions", "reporting"]
    final = events[-1]
    markdown = "".join(e["data"]["delta"] for e in events if e["type"] == "partial_result")
    assert final["data"]["result"]["report_type"] == "guidance"
    async with httpx.AsyncClient(base_url=server.url) as http:
        run = (
            await http.get(
                f"/api/runs/{ack['run_id']}", headers={"Authorization": f"Bearer {account.access_token}"}
            )
        ).json()
    assert run["status"] == "completed"
    assert run["last_seq"] == len(events)
    assert run["report"]["report_type"] == "guidance"
    assert markdown.startswith("# ")
