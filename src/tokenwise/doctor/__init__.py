"""`tokenwise doctor`: examine a deployment layer by layer and name the first layer that fails.

    report = await diagnose(Options("https://tokenwise.example.com", email=..., password=...))
    report.verdict.fault      # infrastructure | configuration | application | usage | None
    report.verdict.exit_code  # 0 healthy, 10/20/30 by class, 2 usage, 3 incomplete

Layers, one module each: network (DNS, TCP), tls, health (HTTP), auth, transit (headers through proxies),
upgrade (credential methods), connection (ping, idle), golden (a real run and a resume); verdict judges.
"""

from tokenwise.doctor.context import Options
from tokenwise.doctor.model import (
    EXIT_CODES,
    EXIT_INCOMPLETE,
    SCHEMA,
    Check,
    Fault,
    Layer,
    Report,
    Status,
    Verdict,
)
from tokenwise.doctor.runner import diagnose
from tokenwise.doctor.target import TargetError

__all__ = [
    "EXIT_CODES",
    "EXIT_INCOMPLETE",
    "SCHEMA",
    "Check",
    "Fault",
    "Layer",
    "Options",
    "Report",
    "Status",
    "TargetError",
    "Verdict",
    "diagnose",
]
