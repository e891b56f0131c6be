"""End-to-end fixtures: `target` is the in-process server, or the deployment at TOKENWISE_E2E_URL.

Same semantics as tests/mission_critical: `target.url` (base URL), `target.email`, `target.password`
(TOKENWISE_E2E_EMAIL / TOKENWISE_E2E_PASSWORD, else a freshly registered user), `target.ws_url`.
"""

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
