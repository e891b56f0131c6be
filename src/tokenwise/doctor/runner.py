"""Run the layers in order, each on what the earlier ones learnt, and judge."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import httpx

from tokenwise.doctor import auth, connection, golden, health, network, tls, transit, upgrade
from tokenwise.doctor.context import Context, Options, Progress
from tokenwise.doctor.model import Layer, Report, Status, skipped
from tokenwise.doctor.target import parse_target, trust
from tokenwise.doctor.verdict import judge

LayerCheck = Callable[[Context, Layer], Awaitable[None]]

LAYERS: list[tuple[int, str, str, LayerCheck]] = [
    (1, "network", "DNS and TCP", network.check),
    (2, "tls", "TLS", tls.check),
    (3, "http", "HTTP", health.check),
    (4, "auth", "Auth", auth.check),
    (5, "transit", "Header transit", transit.check),
    (6, "upgrade", "Upgrade", upgrade.check),
    (7, "connection", "Connection", connection.check),
    (8, "golden_path", "Golden path", golden.check),
]
AUTH_LAYER = 4


async def diagnose(
    options: Options,
    *,
    progress: Progress | None = None,
    on_layer: Callable[[Layer], None] | None = None,
) -> Report:
    """Examine the deployment at `options.url`. Raises TargetError for an unusable URL or CA file."""
    target = parse_target(options.url)
    context = trust(options.ca_file)
    report_progress = progress or (lambda _text: None)
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    started = time.perf_counter()
    layers: list[Layer] = []
    async with httpx.AsyncClient(verify=context, timeout=options.timeout_s, trust_env=False) as http:
        ctx = Context(options, target, context, http, report_progress)
        for number, key, title, run in LAYERS:
            layer = Layer(number, key, title)
            report_progress(f"{number}. {title}")
            if ctx.halted:
                layer.add(skipped(key, f"not examined: {ctx.halted}"))
            else:
                layer_started = time.perf_counter()
                await run(ctx, layer)
                layer.duration_ms = (time.perf_counter() - layer_started) * 1000
            if number == AUTH_LAYER and layer.status is Status.FAIL:
                ctx.token = None  # the API refuses it: nothing further can authenticate
            layers.append(layer)
            if on_layer is not None:
                on_layer(layer)
    verdict = judge(layers, credentials=options.has_credentials)
    return Report(target.base_url, started_at, layers, verdict, (time.perf_counter() - started) * 1000)
