"""`tokenwise doctor` in tests: the real CLI in a subprocess (`run_doctor`), or in-process."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import pytest

from support.clients import Account
from tokenwise.doctor import Layer, Options, Report, diagnose


@dataclass
class DoctorRun:
    """`python -m tokenwise doctor … --json` as a user runs it: its exit code and its JSON report."""

    exit_code: int
    report: dict[str, Any]
    stderr: str

    @property
    def verdict(self) -> dict[str, Any]:
        verdict: dict[str, Any] = self.report["verdict"]
        return verdict

    def layer(self, key: str) -> dict[str, Any]:
        return next(layer for layer in self.report["layers"] if layer["key"] == key)

    def check(self, layer: str, name: str) -> dict[str, Any]:
        return next(check for check in self.layer(layer)["checks"] if check["name"] == name)


def run_doctor(url: str, *args: str, timeout: float = 120) -> DoctorRun:
    completed = subprocess.run(
        [sys.executable, "-m", "tokenwise", "doctor", url, "--json", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    try:
        report = json.loads(completed.stdout)
    except ValueError:
        pytest.fail(f"no JSON report (exit {completed.returncode}):\n{completed.stdout}\n{completed.stderr}")
    return DoctorRun(completed.returncode, report, completed.stderr)


def credentials(account: Account) -> tuple[str, ...]:
    return ("--email", account.email, "--password", account.password)


def diagnose_now(url: str, account: Account | None = None, **options: Any) -> Report:
    """The doctor in-process (faster, for the cases that need no real CLI)."""
    options.setdefault("idle_s", 2.0)
    if account is not None:
        options.update(email=account.email, password=account.password)
    return asyncio.run(diagnose(Options(url, **options)))


def layer_of(report: Report, key: str) -> Layer:
    return next(layer for layer in report.layers if layer.key == key)
