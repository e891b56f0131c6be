"""Database tables. These are storage types only; the wire format lives in `tokenwise.protocol`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    true,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every engine (SQLite drops the zone on the way back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON}


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RefreshTokenRow(Base):
    """One refresh token; rotation marks it used, reuse of a used one revokes its whole family."""

    __tablename__ = "refresh_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    family_id: Mapped[str] = mapped_column(String(36), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class WsTicketRow(Base):
    """A single-use WebSocket ticket. Stored so that any API replica can redeem it."""

    __tablename__ = "ws_tickets"

    ticket_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    expires_at: Mapped[datetime]
    # The connection lives no longer than the access token the ticket was bought with.
    token_expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class ThreadRow(Base):
    __tablename__ = "threads"

    # A UUID, or an id the client chose for a new thread (up to 128 of [A-Za-z0-9_.:-]).
    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class MessageRow(Base):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("user_id", "client_message_id", name="uq_messages_client_message_id"),
        Index("ix_messages_thread_created", "thread_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    thread_id: Mapped[str] = mapped_column(ForeignKey("threads.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))  # "user" or "assistant"
    content: Mapped[str] = mapped_column(Text)
    run_id: Mapped[str | None] = mapped_column(String(36))
    client_message_id: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RunRow(Base):
    """A run, and the queue entry for it: queued -> running (leased by one worker) -> an end status.

    The lease says who may write the run's events: `epoch` goes up by one at every claim, and every
    write of the holder is conditional on it (fencing), so a worker that lost its lease cannot write.
    """

    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_status_lease", "status", "lease_expires_at"),
        Index("ix_runs_created_at", "created_at"),  # the runs stored lately (runs/event_log.py)
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    thread_id: Mapped[str] = mapped_column(ForeignKey("threads.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    message_id: Mapped[str] = mapped_column(String(36))
    status: Mapped[str] = mapped_column(String(16))  # queued, running, completed, failed, cancelled
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    error_code: Mapped[str | None] = mapped_column(String(64))
    report: Mapped[dict[str, Any] | None]
    report_markdown: Mapped[str | None] = mapped_column(Text)
    question: Mapped[str | None] = mapped_column(Text)  # what the worker runs the pipeline on
    # The last agent of the pipeline to run (`POST /api/agents/{agent}`); None: the whole pipeline.
    stop_after: Mapped[str | None] = mapped_column(String(32))
    opens_thread: Mapped[bool] = mapped_column(Boolean, default=False)
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_expires_at: Mapped[datetime | None]
    epoch: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested_at: Mapped[datetime | None]
    # False from the commit of the final event until it was published: swept and re-published.
    final_published: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # The results of the agents completed so far, for a takeover that continues the run.
    checkpoint: Mapped[dict[str, Any] | None]


class RunEventRow(Base):
    """A run event exactly as it was sent (`body` is the JSON envelope), keyed by (run_id, seq)."""

    __tablename__ = "run_events"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    type: Mapped[str] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text)


class DatasetRow(Base):
    """One imported usage file (or a user's event stream): its normalized Parquet file(s) and how it was read.

    `path` is relative to the data directory: a `.parquet` file, or a directory of part files (the stream).
    `content_hash` is the SHA-256 of the file as uploaded: one user cannot import the same file twice
    (NULL for the stream, and for datasets imported before it was kept).
    """

    __tablename__ = "datasets"
    __table_args__ = (Index("ux_datasets_user_content_hash", "user_id", "content_hash", unique=True),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    source_format: Mapped[str] = mapped_column(String(16))  # csv, jsonl, json, parquet, events
    detected_format: Mapped[str] = mapped_column(String(64))
    row_count: Mapped[int] = mapped_column(BigInteger, default=0)
    mapping: Mapped[dict[str, Any]]
    details: Mapped[dict[str, Any] | None]  # notes, columns found, how timestamps were read
    model: Mapped[str | None] = mapped_column(String(200))
    keep_prompt_text: Mapped[bool] = mapped_column(Boolean, default=False)
    period_start: Mapped[datetime | None]
    period_end: Mapped[datetime | None]
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    path: Mapped[str] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    content_hash: Mapped[str | None] = mapped_column(String(64))
    # Whether questions cover this dataset (the user's choice on the data page; `tokenwise datasets exclude`).
    included: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())


class PriceOverrideRow(Base):
    """A user's own price of one model, over the server's price book ($ per 1M tokens, like prices.json)."""

    __tablename__ = "price_overrides"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    model: Mapped[str] = mapped_column(String(100), primary_key=True)  # lower case, as the book keys it
    input: Mapped[float] = mapped_column(Float)
    cached_input: Mapped[float | None] = mapped_column(Float)
    output: Mapped[float] = mapped_column(Float)
    batch_discount: Mapped[float | None] = mapped_column(Float)
    # Fields of the book's model entries beyond the four above (cache-write prices), by their JSON name.
    extra: Mapped[dict[str, Any] | None]
    provider: Mapped[str | None] = mapped_column(String(50))
    source: Mapped[str | None] = mapped_column(String(500))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKeyRow(Base):
    """A machine's API key: only the SHA-256 of the secret is kept; `revoked_at` ends it for good."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))  # the secret's first characters, to tell keys apart
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class ConnectorRow(Base):
    """A scheduled pull of one provider report into one dataset of the user.

    `admin_key` is the provider's admin key encrypted with Fernet (`security.secretbox`), never plain.
    `cursor` is the start (UTC, ISO 8601) of the first bucket the next sync pulls again: the bucket that
    was still open at the last sync, or the end of the last one fetched. `sync_started_at` is the last
    attempt, and claims the connector while a sync runs (`status` "syncing").
    """

    __tablename__ = "connectors"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))  # openai_usage, openai_costs, anthropic_usage, ...
    name: Mapped[str] = mapped_column(String(100))
    admin_key: Mapped[str] = mapped_column(Text)
    base_url: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(16), default="new")  # new, syncing, ok, error
    last_sync_at: Mapped[datetime | None]  # the last successful sync
    last_error: Mapped[str | None] = mapped_column(Text)
    cursor: Mapped[str | None] = mapped_column(String(40))
    dataset_id: Mapped[str | None] = mapped_column(String(36))
    sync_started_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
