"""Typed settings, read from `TOKENWISE_*` environment variables and an optional `.env` file."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from tokenwise.faults import FaultPoint


class Role(StrEnum):
    """Which services one `tokenwise serve` process runs."""

    ALL = "all"  # auth + api + an in-process worker: the embedded default
    AUTH = "auth"
    API = "api"  # WebSockets, SSE and REST; executes no runs
    WORKER = "worker"  # claims runs from the queue and executes the pipeline


class Recovery(StrEnum):
    """What a worker does with a run whose holder died (its lease expired)."""

    INTERRUPT = "interrupt"  # close its open steps and end it with the supervisor's agent_error
    CONTINUE = "continue"  # run it on from the agent after the last one that completed


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


# The default of worker_runs_per_user, and of a Worker built without it.
WORKER_RUNS_PER_USER = 3


class Settings(BaseSettings):
    """Everything the app can be told. Build one per app; there is no module-level instance."""

    model_config = SettingsConfigDict(env_prefix="TOKENWISE_", env_file=".env", extra="ignore")

    environment: Environment = Environment.DEVELOPMENT
    role: Role = Role.ALL
    host: str = "127.0.0.1"
    # `PORT` (the convention of most hosting platforms) is honoured as well as `TOKENWISE_PORT`.
    port: int = Field(default=8000, validation_alias=AliasChoices("TOKENWISE_PORT", "PORT"))
    public_url: str | None = None  # how clients reach this server; derived from host/port when unset

    data_dir: Path = Path("var")
    database_url: str | None = None  # default: SQLite file in data_dir
    db_pool_size: int = Field(default=10, ge=1)  # PostgreSQL connections per process (+ db_max_overflow)
    db_max_overflow: int = Field(default=10, ge=0)
    # SQLite: /health/ready fails (503) while the disk of the database file has less free space than
    # this (0: only when it is full). docs/operations.md#storage-faults
    min_free_disk_bytes: int = Field(default=64 * 1024 * 1024, ge=0)
    # The live tail across processes and the control messages: memory:// (one process) or redis://...
    bus_url: str = "memory://"
    blob_dir: Path | None = None  # where dataset files live; a directory every process shares when scaled

    # Runs: the queue, the workers' leases and what happens to a run whose worker died.
    max_active_runs_per_user: int = Field(default=5, ge=1)  # queued + running, cluster-wide
    # Runs a user may start a minute (a token bucket, burst = this figure); cluster-wide on Redis.
    runs_per_minute_per_user: int = Field(default=60, ge=1)
    worker_concurrency: int = Field(default=32, ge=1)  # runs one worker executes at once
    # Runs of one user one worker executes at once: a user's further runs wait queued until one of theirs
    # ends, so a flood shares the CPU less with everyone else's runs (>= max_active_runs_per_user: off).
    worker_runs_per_user: int = Field(default=WORKER_RUNS_PER_USER, ge=1)
    lease_s: float = Field(default=6.0, ge=0.5)  # a run's lease; renewed every third of it
    worker_poll_s: float = Field(default=2.0, gt=0)  # queue poll when no wake-up arrives
    recovery: Recovery = Recovery.INTERRUPT

    # Auth: keys, issuer and audience. The API verifies tokens against the auth service's JWKS.
    auth_url: str | None = None  # base URL of the auth service when role=api
    jwt_issuer: str = "tokenwise"
    jwt_audience: str = "tokenwise-api"
    key_dir: Path | None = None  # directory of EC P-256 private keys (*.pem); generated in development
    signing_kid: str | None = None  # which key signs; default: the newest file
    access_token_ttl_s: int = Field(default=900, ge=1)
    refresh_token_ttl_s: int = Field(default=30 * 24 * 3600, ge=60)
    ws_ticket_ttl_s: int = Field(default=60, ge=1, le=60)
    jwks_cache_ttl_s: int = Field(default=300, ge=1)

    # WebSocket protocol limits.
    allowed_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    max_message_bytes: int = Field(default=64 * 1024, ge=1024)
    heartbeat_interval_s: float = Field(default=20.0, gt=0)
    auth_timeout_s: float = Field(default=10.0, gt=0)
    max_connections_per_user: int = Field(default=20, ge=1)
    messages_per_second: float = Field(default=10.0, gt=0)
    message_burst: int = Field(default=30, ge=1)
    sse_heartbeat_s: float = Field(default=15.0, gt=0)
    shutdown_grace_s: float = Field(default=10.0, ge=0)
    # Slow consumers (web/ws_backpressure.py): a client owed more than ws_send_buffer_bytes beyond the
    # kernel's buffers for ws_slow_consumer_s, or 4x that at once, is closed with 4408 slow_consumer.
    ws_send_buffer_bytes: int = Field(default=1024 * 1024, ge=16 * 1024)
    ws_slow_consumer_s: float = Field(default=10.0, gt=0)
    # After its 4408 close frame, how long a slow consumer has to read what it was owed; then dropped.
    ws_close_grace_s: float = Field(default=5.0, gt=0)

    # Usage data: upload limit, records per workload-events batch, a prices file merged over the shipped one.
    max_upload_bytes: int = Field(default=512 * 1024 * 1024, ge=1024)
    max_event_batch: int = Field(default=1000, ge=1)
    # One file's cost (usage/bounds.py): a .gz is refused once it decompresses past max_decompression_ratio
    # times its size (from 16 MiB on) or max_decompressed_bytes (413); over max_dataset_rows rows, 422.
    max_decompressed_bytes: int = Field(default=2 * 1024**3, ge=1024 * 1024)
    max_decompression_ratio: int = Field(default=100, ge=2)
    max_dataset_rows: int = Field(default=20_000_000, ge=1)  # per dataset: a file, or the events stream
    prices_file: Path | None = None
    # Import quotas per user (usage/import_quota.py; cluster-wide with bus_url=redis://): uploads, previews,
    # events batches and OTLP exports in progress at once, and body bytes received per UTC day (429).
    max_imports_per_user: int = Field(default=2, ge=1)
    max_import_bytes_per_user_per_day: int = Field(default=5 * 1024**3, ge=1024)
    # Import work (DuckDB, CPU-bound) per process: import_slots at once, at most import_slots_per_user of
    # them one user's, so one user's flood never queues another user's import (usage/scheduling.py).
    import_slots: int = Field(default=2, ge=1)
    import_slots_per_user: int = Field(default=1, ge=1)

    # Hostile input (docs/operations.md#limits-and-quotas). Request bodies, enforced while they are read
    # (413): /auth/*, other JSON routes, workload event batches; uploads use max_upload_bytes.
    max_auth_body_bytes: int = Field(default=64 * 1024, ge=1024)
    max_json_body_bytes: int = Field(default=512 * 1024, ge=1024)  # a 32,000-character message, escaped
    max_events_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    # Request headers: a block over max_header_bytes is 431; headers unfinished after header_timeout_s are
    # closed (408); an idle keep-alive connection is closed after keep_alive_timeout_s.
    max_header_bytes: int = Field(default=16 * 1024, ge=4096)
    header_timeout_s: float = Field(default=10.0, gt=0)
    keep_alive_timeout_s: int = Field(default=5, ge=1)
    # Open connections (HTTP and WebSocket) per TCP peer address; over it, 503 and closed. 0 = no cap.
    # Behind a proxy every client has the proxy's address: raise it or set 0 and cap at the proxy.
    max_connections_per_address: int = Field(default=256, ge=0)
    # Sign-in throttling, in Redis when bus_url is redis://… (every process spends from the same buckets),
    # else in this process (limits/throttle.py): token buckets (burst = the per-minute
    # figure) per account and per client address that failed sign-ins spend; login_lock_after failures in
    # a row lock the account for login_lock_s, whatever password comes. Over any of them: 429 + Retry-After.
    login_per_minute_per_account: int = Field(default=10, ge=1)
    login_per_minute_per_address: int = Field(default=30, ge=1)
    login_lock_after: int = Field(default=10, ge=1)
    login_lock_s: float = Field(default=300.0, gt=0)
    register_burst_per_address: int = Field(default=60, ge=1)
    register_per_hour_per_address: int = Field(default=120, ge=1)
    refresh_per_minute_per_address: int = Field(default=60, ge=1)
    tickets_per_minute_per_user: int = Field(default=120, ge=1)

    # Connectors (scheduled pulls of the providers' usage/cost reports). The admin keys they store are
    # encrypted with this Fernet key (comma-separated: the first encrypts, all decrypt, for rotation);
    # unset: a key generated once in data_dir/keys/ (development only). 0 disables the schedule.
    connector_key: SecretStr | None = None
    connector_interval_s: float = Field(default=3600, ge=0)
    connector_max_pages: int = Field(default=100, ge=1)  # pages per sync; the rest waits for the next one
    connector_timeout_s: float = Field(default=30.0, gt=0)  # per request to the provider

    # Optional OpenAI-compatible language model: words the triage restatement and the report's narrative,
    # never a figure. Off unless both the base URL (e.g. https://api.openai.com/v1) and the model are set.
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: SecretStr | None = None
    llm_timeout_s: float = Field(default=10.0, gt=0)

    demo_user: bool = False  # create the demo user at start (make run)
    # Test-only: raise a genuine exception at this point (faults.py); refused in production.
    fault_injection: FaultPoint | None = None
    # TEST ONLY: a pause at every pipeline checkpoint, so browser tests can watch a run mid-flight.
    test_step_delay_ms: int = Field(default=0, ge=0, le=5000)

    @model_validator(mode="before")
    @classmethod
    def _split_origins(cls, data: object) -> object:
        if isinstance(data, dict):
            origins = data.get("allowed_origins")
            if isinstance(origins, str):
                data["allowed_origins"] = [o.strip() for o in origins.split(",") if o.strip()]
        return data

    @model_validator(mode="after")
    def _test_settings_only_in_development(self) -> Settings:
        if self.test_step_delay_ms and self.environment is not Environment.DEVELOPMENT:
            raise ValueError("TOKENWISE_TEST_STEP_DELAY_MS is for tests: refused outside development")
        return self

    @model_validator(mode="after")
    def _no_faults_in_production(self) -> Settings:
        if self.fault_injection is not None and self.environment is Environment.PRODUCTION:
            raise ValueError(
                "TOKENWISE_FAULT_INJECTION is for tests: refused when TOKENWISE_ENVIRONMENT=production"
            )
        return self

    @model_validator(mode="after")
    def _separate_roles_share_a_bus(self) -> Settings:
        # An API process without a worker gets its runs' events from other processes: over the
        # in-process bus they would reach clients only when a client resumes. Refused in production.
        split = self.role in (Role.API, Role.WORKER) and self.bus_url in ("", "memory://")
        if split and self.environment is Environment.PRODUCTION:
            raise ValueError(
                f"role={self.role.value} runs beside other processes: set TOKENWISE_BUS_URL=redis://… "
                "(the in-process bus memory:// reaches no other process)"
            )
        return self

    @property
    def is_development(self) -> bool:
        return self.environment is Environment.DEVELOPMENT

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'tokenwise.db').resolve()}"

    @property
    def resolved_key_dir(self) -> Path:
        return self.key_dir if self.key_dir is not None else self.data_dir / "keys"

    @property
    def resolved_public_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host  # noqa: S104
        return f"http://{host}:{self.port}"

    @property
    def serves_auth(self) -> bool:
        return self.role in (Role.ALL, Role.AUTH)

    @property
    def serves_api(self) -> bool:
        return self.role in (Role.ALL, Role.API)

    @property
    def runs_worker(self) -> bool:
        return self.role in (Role.ALL, Role.WORKER)

    @property
    def resolved_blob_dir(self) -> Path:
        return self.blob_dir if self.blob_dir is not None else self.data_dir
