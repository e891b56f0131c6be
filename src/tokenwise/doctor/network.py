"""Layer 1, DNS and TCP: does the name resolve, and does a TCP connection open (and how fast)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time

from tokenwise.doctor.context import Context
from tokenwise.doctor.model import Fault, Layer, failed, passed


async def check(ctx: Context, layer: Layer) -> None:
    host, port = ctx.target.host, ctx.target.port
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), ctx.options.timeout_s
        )
    except (OSError, TimeoutError) as exc:
        layer.add(
            failed(
                "dns",
                f"{host} does not resolve: {exc.strerror if isinstance(exc, OSError) else 'timed out'}",
                Fault.INFRASTRUCTURE,
                "check the host name and its DNS record (and /etc/hosts or the resolver of this machine)",
                host=host,
            )
        ).duration_ms = _ms(started)
        ctx.halted = "the host name does not resolve"
        return
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    layer.add(
        passed("dns", f"{host} → {', '.join(addresses)}", host=host, addresses=addresses)
    ).duration_ms = _ms(started)

    attempts: dict[str, str] = {}
    for address in addresses:
        started = time.perf_counter()
        try:
            _reader, writer = await asyncio.wait_for(
                asyncio.open_connection(address, port), ctx.options.timeout_s
            )
        except (OSError, TimeoutError) as exc:
            attempts[address] = _reason(exc)
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        elapsed = _ms(started)
        check_ = passed(
            "tcp", f"connected to {address}:{port} in {elapsed:.1f} ms", address=address, port=port
        )
        check_.evidence["connect_ms"] = round(elapsed, 2)
        if attempts:
            check_.evidence["failed_addresses"] = attempts
        check_.duration_ms = elapsed
        layer.add(check_)
        return
    layer.add(
        failed(
            "tcp",
            f"no TCP connection to port {port}: "
            + "; ".join(f"{address}: {reason}" for address, reason in attempts.items()),
            Fault.INFRASTRUCTURE,
            "refused: nothing listens there (is the server or its proxy running, on this port?); timed out: "
            "a firewall or security group drops the traffic",
            port=port,
            attempts=attempts,
        )
    )
    ctx.halted = "no TCP connection"


def _reason(exc: OSError | TimeoutError) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    return os.strerror(exc.errno) if exc.errno else str(exc)


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
