"""Layer 8, golden path: a real run, watched like a client watches it.

Send a question, time the first event, drop the connection on purpose after a few events, reconnect with
the same credential method and `resume`: then the run's events must hold the five critical types, obey the
ordering contract (`session.contract`), end with a report, and match what the server stored, with nothing
lost or repeated across the reconnect.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, cast

import httpx
import websockets

from tokenwise.client import ClientError, Connection, ConnectionClosed, Event, ServerError
from tokenwise.doctor.context import Context
from tokenwise.doctor.fixes import bug_fix, dependency_down, error_id_of, refused_upgrade
from tokenwise.doctor.model import Check, Fault, Layer, failed, passed, skipped, warned
from tokenwise.doctor.probe import handshake, offer_for
from tokenwise.session.contract import missing_critical, violations

QUESTION = "tokenwise doctor: where does our LLM spend go, and how do we cut it?"
DISCONNECT_AFTER = 3  # events read before the deliberate disconnect


class _Stop(Exception):
    """The run cannot be followed further; the failing check is already recorded."""


async def check(ctx: Context, layer: Layer) -> None:
    if ctx.token is None or not ctx.methods:
        layer.add(skipped("golden_path", "needs a credential method that opens a connection (layer 6)"))
        return
    with contextlib.suppress(_Stop):
        await _golden_path(ctx, layer)


async def _golden_path(ctx: Context, layer: Layer) -> None:
    conn = await _open(ctx, layer, "message")
    started = time.perf_counter()
    before: list[dict[str, Any]] = []
    first_event_s: float | None = None
    try:
        try:
            ack = await conn.send_message(QUESTION, client_message_id=f"doctor-{uuid.uuid4().hex}")
        except (ClientError, TimeoutError) as exc:
            layer.add(_broken("message", "the chat message got no ack", exc))
            raise _Stop from exc
        layer.add(passed("message", f"ack for run {ack.run_id}", run_id=ack.run_id, thread_id=ack.thread_id))
        try:
            async with contextlib.aclosing(_generator(conn.events(ack.run_id))) as stream:
                async for event in stream:
                    first_event_s = first_event_s or time.perf_counter() - started
                    before.append(event.frame)
                    if event.final or len(before) >= DISCONNECT_AFTER:
                        break
        except (ClientError, TimeoutError) as exc:
            layer.add(_broken("first_event", "the run's events stopped", exc, seen=len(before)))
            raise _Stop from exc
    finally:
        with contextlib.suppress(websockets.WebSocketException, OSError):
            await conn.close()  # the deliberate disconnect, mid-run
    assert first_event_s is not None
    layer.add(
        passed(
            "first_event",
            f"first event {first_event_s * 1000:.0f} ms after sending",
            ms=round(first_event_s * 1000, 1),
        )
    )
    after = await _resume(ctx, layer, ack.run_id, before)
    events = before + after
    _judge(layer, events)
    await _resume_check(ctx, layer, ack.run_id, before, after, events)


async def _resume(
    ctx: Context, layer: Layer, run_id: str, before: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    if before[-1].get("data", {}).get("final"):
        return []
    conn = await _open(ctx, layer, "resume")
    after: list[dict[str, Any]] = []
    try:
        async with contextlib.aclosing(_generator(conn.resume(run_id, int(before[-1]["seq"])))) as stream:
            async for event in stream:
                after.append(event.frame)
    except (ClientError, TimeoutError) as exc:
        layer.add(_broken("resume", f"resuming after seq {before[-1]['seq']} failed", exc, seen=len(after)))
        raise _Stop from exc
    finally:
        with contextlib.suppress(websockets.WebSocketException, OSError):
            await conn.close()
    return after


def _judge(layer: Layer, events: list[dict[str, Any]]) -> None:
    missing = missing_critical(events)
    if missing:
        layer.add(
            failed(
                "critical_events",
                f"the run never showed {', '.join(missing)}",
                Fault.APPLICATION,
                "a server bug in the agent pipeline: every successful run shows the five critical types",
                missing=missing,
                types=[event.get("type") for event in events],
            )
        )
    else:
        layer.add(passed("critical_events", f"all five critical event types among {len(events)} events"))
    problems = violations(events)
    if problems:
        layer.add(
            failed(
                "ordering",
                f"the events break the ordering contract: {problems[0]}",
                Fault.APPLICATION,
                "a server bug in event ordering or delivery (docs/protocol.md, Ordering contract)",
                violations=problems[:20],
            )
        )
    else:
        layer.add(passed("ordering", "the events obey the ordering contract"))
    layer.add(_report(events[-1]))


def _report(final: dict[str, Any]) -> Check:
    data = final.get("data", {})
    if final.get("type") == "agent_completed" and isinstance(data.get("result"), dict):
        report = data["result"]
        return passed(
            "report",
            f"final report: {report.get('report_type', '?')}, {report.get('title', '')!r}",
            report_type=report.get("report_type"),
            title=report.get("title"),
        )
    if final.get("type") == "agent_error":
        error_id = data.get("error_id")
        return failed(
            "report",
            f"the run ended with agent_error {data.get('code')}: {data.get('message')}",
            Fault.APPLICATION,
            f"a server bug: search the server log for error_id={error_id}"
            if error_id
            else "see the server log for the run's traceback",
            code=data.get("code"),
            error_id=error_id,
        )
    return failed(
        "report",
        "the final event carries no report",
        Fault.APPLICATION,
        "a server bug in the reporting agent",
    )


async def _resume_check(
    ctx: Context,
    layer: Layer,
    run_id: str,
    before: list[dict[str, Any]],
    after: list[dict[str, Any]],
    events: list[dict[str, Any]],
) -> None:
    if not after:
        layer.add(
            warned("resume", f"the run ended within {len(before)} events: no disconnect to resume from")
        )
        return
    seqs = [int(event["seq"]) for event in events]
    evidence: dict[str, Any] = {"disconnected_after_seq": before[-1]["seq"], "resumed": len(after)}
    lost = sorted(set(range(1, max(seqs) + 1)) - set(seqs))
    duplicated = sorted({seq for seq in seqs if seqs.count(seq) > 1})
    stored = await _stored(ctx, run_id)
    if stored is not None:
        evidence["stored"] = len(stored)
    if lost or duplicated or (stored is not None and stored != [event["event_id"] for event in events]):
        layer.add(
            failed(
                "resume",
                f"after the reconnect: lost {lost or 'none'}, duplicated {duplicated or 'none'}"
                + (
                    ""
                    if stored is None
                    else f"; the server stored {len(stored)} events, the client got {len(events)}"
                ),
                Fault.APPLICATION,
                "a server bug in resume (docs/protocol.md, Delivery guarantees)",
                lost=lost,
                duplicated=duplicated,
                **evidence,
            )
        )
        return
    layer.add(
        passed(
            "resume",
            f"disconnected after seq {before[-1]['seq']}, resumed {len(after)} events: "
            "none lost, none repeated" + ("" if stored is None else ", identical to the stored run"),
            **evidence,
        )
    )


async def _stored(ctx: Context, run_id: str) -> list[str] | None:
    """The event ids the server stored for the run, or None when they cannot be read."""
    assert ctx.token is not None
    try:
        answer = await ctx.get(
            f"/api/runs/{run_id}/events?after_seq=0", {"Authorization": f"Bearer {ctx.token}"}
        )
    except httpx.HTTPError:
        return None
    body = answer.json()
    if answer.status != 200 or not isinstance(body, dict):
        return None
    return [str(event.get("event_id")) for event in body.get("events", [])]


async def _open(ctx: Context, layer: Layer, name: str) -> Connection:
    assert ctx.token is not None
    method = ctx.methods[0]
    try:
        offer = await offer_for(ctx, method, ctx.token)
    except ClientError as exc:
        layer.add(failed(name, exc.message, Fault.INFRASTRUCTURE, "see layer 6"))
        raise _Stop from exc
    outcome = await handshake(ctx, method.value, offer, keep=True)
    if not outcome.ok:
        diagnosis = refused_upgrade(outcome, ctx.target.origin)
        layer.add(failed(name, diagnosis.summary, diagnosis.fault, diagnosis.fix, **outcome.evidence()))
        raise _Stop
    return outcome.connection(read_timeout_s=max(30.0, ctx.options.timeout_s))


def _generator(events: AsyncIterator[Event]) -> AsyncGenerator[Event, None]:
    """The client's event iterators are async generators; say so, to close them when leaving early."""
    return cast(AsyncGenerator[Event, None], events)


def _broken(name: str, what: str, exc: BaseException, **evidence: Any) -> Check:
    """A run that could not be followed: a 1011 is a bug, a cut without a close frame the network's."""
    if isinstance(exc, ConnectionClosed):
        evidence.update(close_code=exc.code, close_reason=exc.reason)
        if exc.code == 1011 and (error_id := error_id_of(exc.reason)):
            evidence["error_id"] = error_id
            return failed(
                name,
                f"{what}: the server closed the connection with 1011 {exc.reason} (error_id {error_id})",
                Fault.APPLICATION,
                bug_fix(exc.reason),
                **evidence,
            )
        if exc.code in (1005, 1006):
            return failed(
                name,
                f"{what}: the connection was cut without a close frame",
                Fault.INFRASTRUCTURE,
                "a proxy or load balancer cut the connection mid-run: check its timeouts and WebSockets",
                **evidence,
            )
        return failed(
            name,
            f"{what}: the server closed the connection with {exc.code} {exc.reason!r}",
            Fault.APPLICATION,
            "see docs/protocol.md (close codes) for this code",
            **evidence,
        )
    if isinstance(exc, ServerError):
        evidence.update(code=exc.code, details=exc.details)
        if exc.code == "service_unavailable":
            diagnosis = dependency_down(str(exc.details.get("dependency") or ""), f"{what}: {exc.message}")
            return failed(name, diagnosis.summary, diagnosis.fault, diagnosis.fix, **evidence)
        return failed(name, f"{what}: {exc.message}", Fault.APPLICATION, "see the server log", **evidence)
    if isinstance(exc, TimeoutError):
        return failed(
            name,
            f"{what}: nothing arrived in time",
            Fault.APPLICATION,
            "the run stalled: check the server log and /health/ready",
            **evidence,
        )
    message = exc.message if isinstance(exc, ClientError) else str(exc)
    return failed(name, f"{what}: {message}", Fault.APPLICATION, "see the server log", **evidence)
