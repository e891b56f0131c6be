"""End-to-end fixtures: `target` is the in-process server, or the deployment at TOKENWISE_E2E_URL.

Same semantics as tests/mission_critical: `target.url` (base URL), `target.email`, `target.password`
(TOKENWISE_E2E_EMAIL / TOKENWISE_E2E_PASSWORD, else a freshly registered user), `target.ws_url`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mission_critical.deployment import Target, serve_target


@pytest.fixture(scope="session")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """The server under test and an existing user on it."""
    yield from serve_target(tmp_path_factory)
