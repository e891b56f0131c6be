"""The doctor's findings: checks grouped in layers, and the verdict. These shapes are the `--json` schema."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

SCHEMA = "tokenwise.doctor/1"


class Status(StrEnum):
    PASS = "pass"  # noqa: S105 - a status, not a password
    WARN = "warn"  # works, but something is worth fixing; never changes the exit code
    FAIL = "fail"
    SKIP = "skip"  # not run: no credentials, or an earlier failure makes it meaningless


class Fault(StrEnum):
    """Whose problem a failure is, and so who fixes it."""

    INFRASTRUCTURE = "infrastructure"  # DNS, TCP, TLS, proxies and load balancers
    CONFIGURATION = "configuration"  # Tokenwise settings: keys, issuer, audience, origins, URLs
    APPLICATION = "application"  # a bug: 1011 with an error id, missing or mis-ordered events
    USAGE = "usage"  # the doctor was asked wrongly: bad credentials, an expired --token


EXIT_CODES: dict[Fault | None, int] = {
    None: 0,
    Fault.USAGE: 2,
    Fault.INFRASTRUCTURE: 10,
    Fault.CONFIGURATION: 20,
    Fault.APPLICATION: 30,
}
EXIT_INCOMPLETE = 3  # healthy as far as it went, but the authenticated layers were skipped


@dataclass
class Check:
    """One thing checked. A failing check names its fault class and the likely fix."""

    name: str
    status: Status
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)
    fault: Fault | None = None
    fix: str | None = None
    duration_ms: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status.value,
            "summary": self.summary,
            "duration_ms": _ms(self.duration_ms),
            "evidence": self.evidence,
            "fault": self.fault.value if self.fault else None,
            "fix": self.fix,
        }


def passed(name: str, summary: str, **evidence: Any) -> Check:
    return Check(name, Status.PASS, summary, evidence)


def warned(name: str, summary: str, *, fix: str | None = None, **evidence: Any) -> Check:
    return Check(name, Status.WARN, summary, evidence, fix=fix)


def failed(name: str, summary: str, fault: Fault, fix: str, **evidence: Any) -> Check:
    return Check(name, Status.FAIL, summary, evidence, fault, fix)


def skipped(name: str, summary: str, **evidence: Any) -> Check:
    return Check(name, Status.SKIP, summary, evidence)


@dataclass
class Layer:
    number: int
    key: str
    title: str
    checks: list[Check] = field(default_factory=list)
    duration_ms: float = 0.0

    @property
    def status(self) -> Status:
        statuses = {check.status for check in self.checks}
        if Status.FAIL in statuses:
            return Status.FAIL
        if not statuses or statuses == {Status.SKIP}:
            return Status.SKIP
        return Status.WARN if Status.WARN in statuses else Status.PASS

    @property
    def failure(self) -> Check | None:
        return next((check for check in self.checks if check.status is Status.FAIL), None)

    def add(self, check: Check) -> Check:
        self.checks.append(check)
        return check

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "key": self.key,
            "title": self.title,
            "status": self.status.value,
            "duration_ms": _ms(self.duration_ms),
            "checks": [check.to_json() for check in self.checks],
        }


@dataclass
class Verdict:
    status: str  # healthy | failed | incomplete
    summary: str
    fault: Fault | None = None
    layer: Layer | None = None
    check: Check | None = None
    fix: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if self.status == "incomplete":
            return EXIT_INCOMPLETE
        return EXIT_CODES[self.fault]

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "class": self.fault.value if self.fault else None,
            "layer": self.layer.number if self.layer else None,
            "layer_key": self.layer.key if self.layer else None,
            "check": self.check.name if self.check else None,
            "summary": self.summary,
            "evidence": self.check.evidence if self.check else {},
            "fix": self.fix,
            "warnings": self.warnings,
            "exit_code": self.exit_code,
        }


@dataclass
class Report:
    url: str
    started_at: str
    layers: list[Layer]
    verdict: Verdict
    duration_ms: float

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "url": self.url,
            "started_at": self.started_at,
            "duration_ms": _ms(self.duration_ms),
            "verdict": self.verdict.to_json(),
            "layers": [layer.to_json() for layer in self.layers],
        }


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
