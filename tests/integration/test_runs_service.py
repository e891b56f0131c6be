"""The run service on real storage: a run stopped at any moment still ends with its final event."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tokenwise.config import Settings
from tokenwise.db.migrate import upgrade
from tokenwise.services.container import Services
from tokenwise.session.contract import violations


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    # Each step takes a few milliseconds, as a real one does: the run has not ended by the time the stop
    # comes, even "10 loop turns" after it started (a run on the built-in agents can end within 10).
    settings = Settings(data_dir=tmp_path, test_step_delay_ms=5)
    upgrade(settings.resolved_database_url)
    built = Services.build(settings)
    await built.start()
    yield built
    await built.stop()


async def _ended(services: Services, user_id: str, run_id: str) -> list[dict[str, object]]:
    for _ in range(200):
        run = await services.chat.get_run(user_id, run_id)
        if run.status not in ("queued", "running"):
            return [event.envelope() for event in await services.event_log.read(user_id, run_id, 0)]
        await asyncio.sleep(0.01)
    raise AssertionError(f"run {run_id} never ended")


@pytest.mark.parametrize("steps_before_stop", [0, 1, 3, 10])
async def test_a_run_stopped_at_any_step_ends_cancelled_within_the_contract(
    services: Services, steps_before_stop: int
) -> None:
    assert services.accounts is not None
    user = await services.accounts.register("stop@example.com", "long-enough-1")
    submission = await services.chat.submit(user.id, "how do I cut LLM spend?")
    await services.runs.wake()
    for _ in range(steps_before_stop):  # 0: cancelled before its task ran a single step
        await asyncio.sleep(0)
    await services.runs.cancel(user.id, submission.run_id)
    events = await _ended(services, user.id, submission.run_id)
    assert violations(events) == []
    final = events[-1]
    assert final["type"] == "agent_error"
    assert final["data"] == {**final["data"], "code": "cancelled", "final": True}  # type: ignore[dict-item]
    run = await services.chat.get_run(user.id, submission.run_id)
    assert (run.status, run.last_seq) == ("cancelled", len(events))
