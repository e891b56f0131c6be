"""The TEST-ONLY step delay: refused outside development, and confined to the runs it slows."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from tokenwise.agents.base import RunContext, RunOutcome
from tokenwise.agents.tooling import STEP_DELAY_S, checkpoint, with_step_delay
from tokenwise.config import Settings


def test_the_step_delay_is_refused_outside_development(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="refused outside development"):
        Settings(data_dir=tmp_path, environment="production", test_step_delay_ms=100)
    assert Settings(data_dir=tmp_path, test_step_delay_ms=100).test_step_delay_ms == 100
    assert Settings(data_dir=tmp_path, environment="production").test_step_delay_ms == 0


async def test_the_delay_applies_to_the_wrapped_run_only() -> None:
    seen: list[float] = []

    async def pipeline(ctx: RunContext) -> RunOutcome:
        started = time.perf_counter()
        await checkpoint()
        seen.append(time.perf_counter() - started)
        return RunOutcome(status="completed", report={}, markdown="")

    slowed = with_step_delay(pipeline, 0.05)
    ctx = RunContext.__new__(RunContext)  # the pipeline above reads nothing from it
    await asyncio.create_task(slowed(ctx))
    await asyncio.create_task(pipeline(ctx))
    assert seen[0] >= 0.04
    assert seen[1] < 0.04
    assert STEP_DELAY_S.get() == 0.0
