"""Builds every service of one app from its settings; nothing is created at import time."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import httpx

from tokenwise.agents.base import RunContext, RunOutcome, UsageSource
from tokenwise.agents.language import language_model
from tokenwise.bus.base import EventBus
from tokenwise.bus.memory import MemoryBus
from tokenwise.config import Settings
from tokenwise.db.database import Database
from tokenwise.errors import ServiceUnavailable
from tokenwise.metrics import Metrics
from tokenwise.security.keys import KeyRing
from tokenwise.security.keysource import KeySource, LocalKeySource, RemoteKeySource
from tokenwise.security.secretbox import SecretBox
from tokenwise.security.tokens import TokenIssuer, TokenVerifier
from tokenwise.services.accounts import Accounts
from tokenwise.services.api_keys import ApiKeys
from tokenwise.services.chat import Chat
from tokenwise.services.connections import ConnectionRegistry
from tokenwise.services.connectors import Connectors
from tokenwise.services.event_log import EventLog
from tokenwise.services.price_overrides import PriceOverrides
from tokenwise.services.runs import Pipeline, Runs
from tokenwise.services.tickets import Tickets
from tokenwise.usage.datasets import Datasets
from tokenwise.usage.prices import PriceList, load_prices

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
    tickets: Tickets
    connections: ConnectionRegistry
    datasets: Datasets
    prices: PriceList
    price_overrides: PriceOverrides
    api_keys: ApiKeys
    connectors: Connectors
    keyring: KeyRing | None = None
    issuer: TokenIssuer | None = None
    accounts: Accounts | None = None
    stopping: bool = field(default=False)

    @classmethod
    def build(cls, settings: Settings) -> Services:
        """Wire the services for the configured role (auth, api or both)."""
        from tokenwise.agents.supervisor import run_pipeline
        from tokenwise.agents.tooling import with_step_delay

        db = Database(settings.resolved_database_url)
        http = httpx.AsyncClient()
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
            accounts = Accounts(db, issuer, refresh_ttl_s=settings.refresh_token_ttl_s)
        keys: KeySource
        if keyring is not None:
            keys = LocalKeySource(keyring)
        else:
            if not settings.auth_url:
                raise ValueError("role=api needs TOKENWISE_AUTH_URL, the auth service's base URL")
            keys = RemoteKeySource(
                f"{settings.auth_url.rstrip('/')}/auth/.well-known/jwks.json",
                http,
                ttl_s=settings.jwks_cache_ttl_s,
            )
        bus = MemoryBus()
        event_log = EventLog(db, bus)
        chat = Chat(db)

        prices = load_prices(settings.prices_file)
        price_overrides = PriceOverrides(db, prices)
        datasets = Datasets(
            db,
            settings.data_dir,
            max_upload_bytes=settings.max_upload_bytes,
            max_event_batch=settings.max_event_batch,
            prices=prices,
            prices_for=price_overrides.book_for,
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
        return cls(
            settings=settings,
            db=db,
            http=http,
            metrics=metrics,
            keys=keys,
            verifier=TokenVerifier(keys, issuer=settings.jwt_issuer, audience=settings.jwt_audience),
            bus=bus,
            event_log=event_log,
            chat=chat,
            runs=Runs(db, event_log, bus, chat, pipeline, usage_for, metrics.run_finished),
            tickets=Tickets(db, ttl_s=settings.ws_ticket_ttl_s),
            connections=ConnectionRegistry(settings.max_connections_per_user),
            datasets=datasets,
            prices=prices,
            price_overrides=price_overrides,
            api_keys=ApiKeys(db),
            connectors=connectors,
            keyring=keyring,
            issuer=issuer,
            accounts=accounts,
        )

    async def start(self) -> None:
        self.event_log.start()
        if self.settings.serves_api and isinstance(self.bus, MemoryBus):
            try:
                if recovered := await self.runs.recover_interrupted():
                    log.warning("ended %d run(s) interrupted by the previous shutdown", recovered)
            except ServiceUnavailable as exc:
                log.warning("could not check for interrupted runs: %s", exc.message)
        if self.settings.serves_api:
            self.connectors.start()
        try:
            await self.keys.check()
        except Exception as exc:
            log.warning("auth keys not available yet: %s", exc)

    async def stop(self) -> None:
        await self.connectors.stop()
        await self.runs.stop(self.settings.shutdown_grace_s)
        await self.event_log.stop()
        await self.bus.close()
        await self.http.aclose()
        self.datasets.engine.close()  # runs have ended: no query holds a cursor of it
        await self.db.dispose()
