"""The mission-critical suite's target: the in-process server, or a deployment (see README.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from mission_critical.deployment import Connections, Target, serve_target
from support.clients import Account


@pytest.fixture(scope="session")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """The server under test and an existing user on it."""
    yield from serve_target(tmp_path_factory)


@pytest.fixture
async def account(target: Target) -> Account:
    """The target's user, freshly signed in."""
    return await target.login()


@pytest.fixture
async def connections(target: Target) -> AsyncIterator[Connections]:
    """WebSockets opened through this fixture are closed afterwards, and every close code is checked."""
    opened = Connections(target)
    yield opened
    await opened.close_all()
    assert opened.undocumented_closes() == [], "closes with codes the golden path must never see"
