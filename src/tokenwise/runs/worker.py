"""A worker: claims queued runs, executes them under a renewed lease, and sweeps up after dead peers.

The same worker runs inside `make run` (woken by an in-process signal the moment a message is stored)
and as `tokenwise worker` processes (woken over the bus, with a poll as the fallback). Its loops:

- claim: lease queued runs while it has free slots, fairly (each user's oldest first, users in turn) and
  at most `per_user` of one user's runs executing at once: that user's further runs wait queued, so a
  flood shares the CPU and the event loop with everyone else's runs no more than that;
- heartbeat (every third of the lease): renew the leases held; a run whose lease was lost is abandoned
  without writing another event, a run whose stop was requested is cancelled;
- sweep: runs whose holder's lease expired are taken over (ended as interrupted, or continued), final
  events committed but maybe never published are published, expired credentials are purged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from tokenwise.agents.base import RunOutcome
from tokenwise.bus.base import EventBus, Signals
from tokenwise.config import WORKER_RUNS_PER_USER
from tokenwise.errors import ServiceUnavailable
from tokenwise.runs.event_log import EventLog
from tokenwise.runs.executor import Executor
from tokenwise.runs.queue import RunJob, RunQueue
from tokenwise.runs.recorder import RunRecorder, end

log = logging.getLogger(__name__)
WAKE = "runs.wake"
CANCEL = "runs.cancel"
_PURGE_EVERY_S = 300.0


def worker_id() -> str:
    """Unique per process start: a restarted worker never renews its previous life's leases."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class _Held:
    job: RunJob
    recorder: RunRecorder
    task: asyncio.Task[None] | None = None
    abandoned: bool = field(default=False)


class Worker:
    def __init__(
        self,
        queue: RunQueue,
        executor: Executor,
        event_log: EventLog,
        bus: EventBus,
        *,
        concurrency: int,
        lease_s: float,
        poll_s: float,
        hand_back: bool,
        owner: str | None = None,
        per_user: int = WORKER_RUNS_PER_USER,
    ) -> None:
        self._queue, self._executor, self._log, self._bus = queue, executor, event_log, bus
        self.concurrency, self.lease_s, self.poll_s, self.hand_back = concurrency, lease_s, poll_s, hand_back
        self.owner = owner or worker_id()
        self.per_user = per_user  # runs of one user executing at once (takeovers aside)
        self._held: dict[str, _Held] = {}
        self._users: Counter[str] = Counter()  # runs held per user (the entries of _held)
        self._published: set[str] = set()
        self._wake = asyncio.Event()
        self._claiming = True
        self._loops: list[asyncio.Task[None]] = []
        self._signals: list[Signals] = []
        self._endings: set[asyncio.Future[None]] = set()
        self._reserved = 0  # slots promised to runs being stored with this worker's lease (adopt)
        self._last_purge = float("-inf")

    # ---- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Sweep once (a restart ends what its previous life left), then run the loops."""
        try:
            await self.sweep()
        except ServiceUnavailable as exc:
            log.warning("worker: could not sweep at start: %s", exc.message)
        for channel, handle in ((WAKE, self._on_wake), (CANCEL, self._on_cancel)):
            listener = await self._bus.listen(channel)
            self._signals.append(listener)
            self._loops.append(asyncio.create_task(self._listen(listener, handle), name=f"worker-{channel}"))
        # The heartbeat runs from here on: the runs the first sweep took over keep their leases.
        for loop, name in (
            (self._claim_forever, "claim"),
            (self._heartbeat_forever, "heartbeat"),
            (self._sweep_forever, "sweep"),
        ):
            self._loops.append(asyncio.create_task(loop(), name=f"worker-{name}"))
        if started := self._tasks():
            # What the previous life left is ended (or under way) before this process serves anyone.
            await asyncio.wait(started, timeout=5.0)

    def wake(self) -> None:
        self._wake.set()

    def reserve(self) -> bool:
        """Promise a slot to a run about to be stored with this worker's lease; False when full."""
        if not self._claiming or len(self._held) + self._reserved >= self.concurrency:
            return False
        self._reserved += 1
        return True

    def admits(self, user_id: str) -> bool:
        """Whether a run of this user may start now: it executes fewer than `per_user` runs here (or the
        worker is draining, and runs whatever it was given)."""
        return self._users[user_id] < self.per_user or not self._claiming

    def adopt(self, job: RunJob, *, reserved: bool = True) -> None:
        """Start a run stored with this worker's lease (its reserved slot, unless not `reserved`)."""
        if reserved:
            self._reserved -= 1
        self._start(job)

    def unreserve(self) -> None:
        self._reserved -= 1

    async def drain(self, grace_s: float) -> None:
        """Stop claiming; let held runs finish within `grace_s`; then hand them back to another worker
        (or, with no other worker to take them - `hand_back` off - stop them: each still ends)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_s
        if not self.hand_back:
            # The embedded worker is the only one: the runs acknowledged before the stop are its to
            # run, so it keeps claiming until the queue is empty (the API takes no new message now).
            while loop.time() < deadline and (self._tasks() or await self._queue.has_queued()):
                self._wake.set()
                await asyncio.sleep(0.05)
        self._claiming = False
        self._wake.set()
        while self._tasks() and loop.time() < deadline:
            await asyncio.wait(self._tasks(), timeout=deadline - loop.time())
        if self.hand_back and self._held:
            held = dict(self._held)
            for entry in held.values():
                self._abandon(entry)
            await self._log.flush()
            with contextlib.suppress(ServiceUnavailable):
                await self._queue.release(self.owner, {run_id: e.job.epoch for run_id, e in held.items()})
            log.info("worker: handed back %d run(s)", len(held))
        pending = self._tasks()
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=5.0)
        if self._endings:
            await asyncio.wait(list(self._endings), timeout=5.0)
        await self._mark_published()

    async def stop(self) -> None:
        for task in self._loops:
            task.cancel()
        for task in self._loops:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._loops.clear()
        for listener in self._signals:
            await listener.close()
        self._signals.clear()

    def running(self) -> int:
        return len(self._held)

    # ---- claiming and executing --------------------------------------------------------------

    def _tasks(self) -> list[asyncio.Task[None]]:
        return [e.task for e in self._held.values() if e.task is not None and not e.task.done()]

    async def _claim_forever(self) -> None:
        while True:
            self._wake.clear()
            free = self.concurrency - len(self._held) - self._reserved
            if self._claiming and free > 0:
                try:
                    # The users' runs held here: a user at `per_user` gets none now, and is claimed
                    # for when one of its runs ends (the wake-up in `_start`).
                    busy = dict(self._users)
                    jobs = await self._queue.claim(self.owner, free, per_user=self.per_user, busy=busy)
                except ServiceUnavailable:
                    jobs = []
                    await asyncio.sleep(min(1.0, self.poll_s))
                except Exception:
                    log.exception("worker: claiming failed")
                    jobs = []
                    await asyncio.sleep(self.poll_s)
                for job in jobs:
                    self._start(job)
                if jobs and len(jobs) == free:
                    continue
            # asyncio.timeout, not wait_for: on 3.11 wait_for loses a cancellation that lands as the
            # event is set (a drain sets it), and the loop would then never stop.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_s):
                    await self._wake.wait()

    def _start(self, job: RunJob) -> None:
        holder: list[_Held] = []
        entry = _Held(job, self._executor.recorder(job, on_fenced=lambda: self._abandon(holder[0])))
        holder.append(entry)
        task = asyncio.create_task(self._executor.execute(job, entry.recorder), name=f"run-{job.run_id}")
        entry.task = task
        if (previous := self._held.get(job.run_id)) is not None:
            self._drop(previous)  # taken over from this worker's own earlier claim: counted once
        self._held[job.run_id] = entry
        self._users[job.user_id] += 1

        def done(finished: asyncio.Task[None]) -> None:
            # A slot is free, or one of a user's `per_user`: runs may wait queued for it (else a wake-up
            # comes with the next run stored queued).
            waiting = len(self._held) >= self.concurrency or self._users[job.user_id] >= self.per_user
            self._drop(entry)
            if waiting:
                self._wake.set()
            if finished.cancelled() and entry.recorder.final is None and not entry.recorder.fenced:
                # Cancelled before its first step, the task never entered execute: end the run here.
                end(entry.recorder, "cancelled", "the run was stopped before it started")
                outcome = RunOutcome("cancelled", {}, "", error_code="cancelled")
                ending = asyncio.ensure_future(self._executor.finish(job, entry.recorder, outcome))
                self._endings.add(ending)
                ending.add_done_callback(self._endings.discard)
            elif not finished.cancelled() and (error := finished.exception()) is not None:
                log.error("run %s: executor failed", job.run_id, exc_info=error)

        task.add_done_callback(done)
        if job.cancel_requested:
            task.cancel()  # stopped before any worker took it: it ends `cancelled` without a step

    def _abandon(self, entry: _Held) -> None:
        """Another holder owns the run (or will): stop this task without recording anything more."""
        if entry.abandoned:
            return
        entry.abandoned = True
        entry.recorder.fenced = True
        self._drop(entry)
        if entry.task is not None and not entry.task.done():
            entry.task.cancel()

    def _drop(self, entry: _Held) -> None:
        if self._held.get(entry.job.run_id) is entry:
            del self._held[entry.job.run_id]
            self._users[entry.job.user_id] -= 1
            if not self._users[entry.job.user_id]:
                del self._users[entry.job.user_id]

    def cancel(self, run_id: str) -> bool:
        """Stop a run this worker holds (it ends `cancelled`); False when it is not held here."""
        entry = self._held.get(run_id)
        if entry is None or entry.task is None or entry.task.done():
            return False
        entry.task.cancel()
        return True

    def published(self, run_id: str) -> None:
        self._published.add(run_id)

    # ---- the control plane --------------------------------------------------------------------

    async def _listen(self, listener: Signals, handle: Callable[[str], None]) -> None:
        async for message in listener:
            handle(message)

    def _on_wake(self, _message: str) -> None:
        self._wake.set()

    def _on_cancel(self, run_id: str) -> None:
        self.cancel(run_id)

    # ---- heartbeat and sweep -------------------------------------------------------------------

    async def _every(self, interval_s: float, step: Callable[[], Awaitable[None]], name: str) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await step()
            except ServiceUnavailable:
                pass  # the database is away; leases are renewed and runs swept once it is back
            except Exception:
                log.exception("worker: %s failed", name)

    async def _heartbeat_forever(self) -> None:
        await self._every(self.lease_s / 3, self.heartbeat, "heartbeat")

    async def _sweep_forever(self) -> None:
        await self._every(max(0.2, self.lease_s / 6), self.sweep, "sweep")

    async def heartbeat(self) -> None:
        held = {run_id: entry.job.epoch for run_id, entry in self._held.items()}
        renewal = await self._queue.renew(self.owner, held)
        for run_id in renewal.lost:
            entry = self._held.get(run_id)
            # A run whose end is being recorded is not renewed (it is no longer `running`); its end is
            # fenced by its epoch anyway, so only a run still under way has lost anything.
            if entry is not None and entry.recorder.final is None:
                log.warning("worker: lost the lease of run %s; abandoning it", run_id)
                self._abandon(entry)
        for run_id in renewal.cancel:
            self.cancel(run_id)
        await self._mark_published()

    async def _mark_published(self) -> None:
        if self._published:
            done, self._published = self._published, set()
            try:
                await self._queue.mark_published(done)
            except ServiceUnavailable:
                self._published |= done
                raise

    async def sweep(self) -> None:
        if self._claiming:
            free = max(1, self.concurrency - len(self._held))
            handed = await self._queue.take_over(self.owner, free, handed_back=True)
            dead = await self._queue.take_over(self.owner, max(1, free - len(handed)))
            for job in handed:
                log.info("worker: took over run %s (epoch %d) from a draining worker", job.run_id, job.epoch)
                self._start(job)
            for job in dead:
                log.warning("worker: took over run %s (epoch %d) from a dead holder", job.run_id, job.epoch)
                self._start(job)
        await self._republish()
        loop = asyncio.get_running_loop()
        if loop.time() - self._last_purge > _PURGE_EVERY_S:
            self._last_purge = loop.time()
            if purged := await self._queue.purge_expired_credentials():
                log.info("worker: purged %d expired ticket(s) and refresh token(s)", purged)

    async def _republish(self) -> None:
        """Final events whose holder died between committing and publishing them."""
        for run_id, user_id, last_seq in await self._queue.unpublished():
            stored = await self._log.read(user_id, run_id, last_seq - 1)
            if stored and stored[-1].final:
                await self._executor.publish_final(stored[-1])
            else:
                self.published(run_id)
        await self._mark_published()
