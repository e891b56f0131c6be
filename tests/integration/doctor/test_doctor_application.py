"""A genuine bug inside message handling (the test-only fault injection): application, with its error id."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from support.clients import signup
from support.doctor import credentials, run_doctor
from support.live import ServerProcess

pytestmark = pytest.mark.slow


def test_a_bug_in_message_handling_is_application_with_the_error_id_that_is_in_the_log(
    tmp_path: Path,
) -> None:
    server = ServerProcess(tmp_path, TOKENWISE_FAULT_INJECTION="message_handling").start()
    try:
        account = asyncio.run(signup(server.url))
        run = run_doctor(server.url, *credentials(account), "--idle", "1")
    finally:
        server.stop()

    assert run.exit_code == 30, run.verdict
    assert run.verdict["class"] == "application"
    assert run.verdict["layer_key"] == "golden_path"
    assert run.verdict["check"] == "message"
    evidence = run.verdict["evidence"]
    assert evidence["close_code"] == 1011
    error_id = evidence["error_id"]
    assert evidence["close_reason"] == f"internal_error:{error_id}"
    assert error_id in run.verdict["summary"]
    assert f"error_id={error_id}" in run.verdict["fix"]
    # Everything before the golden path is fine: the fault is in the application, not on the way.
    for key in ("network", "http", "auth", "transit", "upgrade", "connection"):
        assert run.layer(key)["status"] == "pass", key
    # The same error id is in the server's log, with the traceback.
    log = server.log()
    assert f"[error_id={error_id}]" in log
    assert "Traceback" in log
    assert "InjectedFault" in log
