"""Builds every service of one app from its settings; nothing is created at import time."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import httpx

from tokenwise.agents.base import NoThreadContext, RunContext, RunOutcome, ThreadContext, UsageSource
from tokenwise.agents.language import language_model
from tokenwise.bus import build_bus
from tokenwise.bus.base import EventBus
from tokenwise.config import Role, Settings
from tokenwise.db.database import Database
from tokenwise.limits.quota import (
    ConnectionQuota,
    LocalQuota,
    LocalRunRate,
    RedisQuota,
    RedisRunRate,
    RunRate,
)
from tokenwise.limits.redis_throttle import RedisThrottle
from tokenwise.limits.throttle import LocalThrottle, Throttle, ThrottleLimits
from tokenwise.metrics import Metrics
from tokenwise.runs.event_log import EventLog
from tokenwise.runs.executor import Executor, Pipeline
from tokenwise.runs.queue import RunJob, RunQueue
from tokenwise.runs.worker import Worker
from tokenwise.security.keys import KeyRing
from tokenwise.security.keysource import KeySource, LocalKeySource, NoKeySource, RemoteKeySource
from tokenwise.security.secretbox import SecretBox
from tokenwise.security.tokens import TokenIssuer, TokenVerifier
from tokenwise.services.accounts import Accounts
from tokenwise.services.active_users import ActiveUsers
from tokenwise.services.api_keys import ApiKeys
from tokenwise.services.chat import Chat, ThreadTurns
from tokenwise.services.connections import ConnectionRegistry
from tokenwise.services.connectors import Connectors
from tokenwise.services.price_overrides import PriceOverrides
from tokenwise.services.runs import Runs
from tokenwise.services.tickets import Tickets
from tokenwise.usage.bounds import Bounds
from tokenwise.usage.datasets import Datasets
from tokenwise.usage.import_quota import import_quota
from tokenwise.usage.prices import PriceList, load_prices
from tokenwise.usage.scheduling import FairSlots

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    db: Database
    http: httpx.AsyncClient
    metrics: Metrics
    keys: KeySource
    verifier: TokenVerifier
    bus: EventBus
    event_log: EventLog
    chat: Chat
    runs: Runs
    queue: RunQueue
    worker: Worker | None
    tickets: Tickets
    connections: ConnectionRegistry
    quota: ConnectionQuota
    datasets: Datasets
    prices: PriceList
    price_overrides: PriceOverrides
    api_keys: ApiKeys
    connectors: Connectors
    throttle: Throttle
    run_rate: RunRate  # runs a minute per user, checked before a message is stored
    keyring: KeyRing | None = None
    issuer: TokenIssuer | None = None
    accounts: Accounts | None = None
    stopping: bool = field(default=False)
    started: bool = field(default=False)

    @classmethod
    def build(cls, settings: Settings) -> Services:
        """Wire the services for the configured role (auth, api, worker, or all in one process)."""
        from tokenwise.agents.supervisor import run_pipeline
        from tokenwise.agents.tooling import with_step_delay

        db = Database(
            settings.resolved_database_url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
        )
        http = httpx.AsyncClient()
        names = ThrottleLimits.__dataclass_fields__
        sign_in = ThrottleLimits(**{name: getattr(settings, name) for name in names})
        # Sign-in limits hold across processes when they share Redis.
        throttle: Throttle = (
            LocalThrottle(sign_in)
            if settings.bus_url in ("", "memory://")
            else RedisThrottle(settings.bus_url, sign_in)
        )
        keyring = issuer = accounts = None
        if settings.serves_auth:
            keyring = KeyRing.from_directory(
                settings.resolved_key_dir, generate=settings.is_development, signing_kid=settings.signing_kid
            )
            issuer = TokenIssuer(
                keyring,
                issuer=settings.jwt_issuer,
                audience=settings.jwt_audience,
                ttl_s=settings.access_token_ttl_s,
            )
            accounts = Accounts(db, issuer, refresh_ttl_s=settings.refresh_token_ttl_s, throttle=throttle)
        keys: KeySource
        if keyring is not None:
            keys = LocalKeySource(keyring, reload=settings.resolved_key_dir)
        elif settings.role is Role.WORKER:
            keys = NoKeySource()  # a worker verifies no tokens
        else:
            if not settings.auth_url:
                raise ValueError("role=api needs TOKENWISE_AUTH_URL, the auth service's base URL")
            keys = RemoteKeySource(
                f"{settings.auth_url.rstrip('/')}/auth/.well-known/jwks.json",
                http,
                ttl_s=settings.jwks_cache_ttl_s,
            )
        bus = build_bus(settings.bus_url)
        if settings.role in (Role.API, Role.WORKER) and settings.bus_url in ("", "memory://"):
            log.warning(
                "role=%s on the in-process bus: runs executed by other processes reach this one's clients "
                "only when they resume; set TOKENWISE_BUS_URL=redis://… for a cluster",
                settings.role.value,
            )
        event_log = EventLog(db, bus)
        chat = Chat(db, bus, max_active_runs=settings.max_active_runs_per_user)

        prices = load_prices(settings.prices_file)
        price_overrides = PriceOverrides(db, prices)
        datasets = Datasets(
            db,
            settings.resolved_blob_dir,
            max_upload_bytes=settings.max_upload_bytes,
            max_event_batch=settings.max_event_batch,
            prices=prices,
            prices_for=price_overrides.book_for,
            bounds=Bounds(
                max_rows=settings.max_dataset_rows,
                max_decompressed_bytes=settings.max_decompressed_bytes,
                max_ratio=settings.max_decompression_ratio,
            ),
            slots=FairSlots(settings.import_slots, settings.import_slots_per_user),
            quota=import_quota(settings),
        )

        connector_key = settings.connector_key.get_secret_value() if settings.connector_key else None
        box = (
            SecretBox.configured(connector_key, settings.data_dir / "keys", generate=settings.is_development)
            if settings.serves_api
            else SecretBox(None)
        )
        connectors = Connectors(
            db,
            datasets,
            box,
            http,
            interval_s=settings.connector_interval_s,
            max_pages=settings.connector_max_pages,
            timeout_s=settings.connector_timeout_s,
            allow_http=settings.is_development,
        )

        def usage_for(user_id: str) -> UsageSource:
            return datasets.usage_for(user_id)

        language = language_model(
            settings.llm_base_url,
            settings.llm_model,
            settings.llm_api_key.get_secret_value() if settings.llm_api_key else None,
            timeout_s=settings.llm_timeout_s,
            http=http,
        )

        async def worded(context: RunContext) -> RunOutcome:
            return await run_pipeline(context, language=language)

        metrics = Metrics()
        pipeline: Pipeline = worded
        if settings.test_step_delay_ms:  # TEST ONLY; Settings refuses it outside development
            pipeline = with_step_delay(worded, settings.test_step_delay_ms / 1000)

        def thread_for(job: RunJob) -> ThreadContext:
            # a new thread has no earlier turns: no query on the way to the answer
            if job.opens_thread:
                return NoThreadContext()
            return ThreadTurns(chat, job.user_id, job.thread_id, job.run_id)

        # The per-user connection limit holds across processes when they share Redis.
        quota: ConnectionQuota = (
            LocalQuota(settings.max_connections_per_user)
            if settings.bus_url in ("", "memory://")
            else RedisQuota(settings.bus_url, settings.max_connections_per_user)
        )
        run_rate: RunRate = (
            LocalRunRate(settings.runs_per_minute_per_user)
            if settings.bus_url in ("", "memory://")
            else RedisRunRate(settings.bus_url, settings.runs_per_minute_per_user)
        )
        queue = RunQueue(db, lease_s=settings.lease_s)
        worker: Worker | None = None
        published: list[Worker] = []
        executor = Executor(
            db,
            event_log,
            queue,
            bus,
            pipeline,
            usage_for,
            thread_for,
            recovery=settings.recovery,
            on_finished=metrics.run_finished,
            on_published=lambda run_id: published[0].published(run_id) if published else None,
            fault=settings.fault_injection,
        )
        if settings.runs_worker:
            worker = Worker(
                queue,
                executor,
                event_log,
                bus,
                concurrency=settings.worker_concurrency,
                per_user=settings.worker_runs_per_user,
                lease_s=settings.lease_s,
                poll_s=settings.worker_poll_s,
                # a worker beside others hands its runs over; the embedded one has nobody to hand to
                hand_back=settings.role is Role.WORKER,
            )
            published.append(worker)
        return cls(
            settings=settings,
            db=db,
            http=http,
            metrics=metrics,
            keys=keys,
            verifier=TokenVerifier(
                keys, issuer=settings.jwt_issuer, audience=settings.jwt_audience, users=ActiveUsers(db)
            ),
            bus=bus,
            event_log=event_log,
            chat=chat,
            runs=Runs(chat, queue, bus, executor, worker),
            queue=queue,
            worker=worker,
            tickets=Tickets(db, ttl_s=settings.ws_ticket_ttl_s),
            connections=ConnectionRegistry(settings.max_connections_per_user, quota=quota),
            quota=quota,
            datasets=datasets,
            prices=prices,
            price_overrides=price_overrides,
            api_keys=ApiKeys(db),
            connectors=connectors,
            throttle=throttle,
            run_rate=run_rate,
            keyring=keyring,
            issuer=issuer,
            accounts=accounts,
        )

    async def start(self) -> None:
        await self.bus.start()
        self.event_log.start()
        if self.worker is not None:
            await self.worker.start()
        if self.settings.serves_api:
            self.connectors.start()
        try:
            await self.keys.check()
        except Exception as exc:
            log.warning("auth keys not available yet: %s", exc)
        self.started = True

    async def drain(self, grace_s: float) -> None:
        """Stop taking work: the worker finishes or hands back its runs; stored events go out."""
        self.stopping = True
        if self.worker is not None:
            await self.worker.drain(grace_s)
        await self.event_log.flush()

    async def stop(self) -> None:
        await self.connectors.stop()
        if self.worker is not None:
            if not self.stopping:
                await self.worker.drain(self.settings.shutdown_grace_s)
            await self.worker.stop()
        await self.event_log.stop()
        await self.quota.close()
        await self.run_rate.close()
        await self.datasets.quota.close()
        await self.throttle.close()
        await self.bus.close()
        await self.http.aclose()
        self.datasets.engine.close()  # runs have ended: no query holds a cursor of it
        await self.db.dispose()
