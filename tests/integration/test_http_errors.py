"""HTTP mistakes get specific errors; refused upgrades are not logged as server errors."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from support.clients import signup
from support.live import LiveServer


async def test_a_body_that_is_not_json_is_invalid_json(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.post(
            "/auth/login", content=b"{not json", headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_json"


async def test_unknown_route_is_a_json_404(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.get("/api/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_a_refused_upgrade_logs_no_error(server: LiveServer) -> None:
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Collect(level=logging.ERROR)
    logging.getLogger("uvicorn.error").addHandler(handler)
    try:
        await signup(server.url)
        with pytest.raises(InvalidStatus) as caught:
            async with connect(server.ws_url, additional_headers={"Authorization": "Bearer nope"}):
                pass
        assert caught.value.response.status_code == 401
        await asyncio.sleep(0.5)  # the server finishes the refused connection after the client has its 401
    finally:
        logging.getLogger("uvicorn.error").removeHandler(handler)
    assert [r.getMessage() for r in records if r.levelno >= logging.ERROR] == []
