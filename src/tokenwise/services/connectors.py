"""Connectors: store a provider admin key (encrypted), pull the provider's report on a schedule or on demand.

A sync claims the connector (status `syncing`; a claim older than `_STALE_CLAIM` is taken over), pulls
the pages from its cursor (`connectors.pulls`), merges them into the connector's stored buckets
(`data_dir/connectors/<user>/<id>.json`, one report page) and re-imports that page into the connector's
dataset through the ordinary ingestion of report pages. The admin key leaves this module only in the
request header: it is scrubbed from every message that is stored, logged or returned.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import json
import logging
import os
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import or_, select, update

from tokenwise.connectors import pulls
from tokenwise.connectors.pulls import Kind, PageError
from tokenwise.db.database import Database
from tokenwise.db.tables import ConnectorRow, utcnow
from tokenwise.errors import Conflict, NotFound, TokenwiseError
from tokenwise.security.secretbox import SecretBox, UndecryptableSecret
from tokenwise.usage.datasets import Datasets

log = logging.getLogger(__name__)
_STALE_CLAIM = timedelta(minutes=30)
_MAX_TICK_S = 60.0
REFUSED = "the admin key was refused"


class SyncFailed(Exception):
    """A sync that failed for a reason the user can act on; the message is safe to store and show."""


def connector_json(row: ConnectorRow, rows_imported: int) -> dict[str, Any]:
    """A connector as the API shows it: never the admin key, in any form."""
    return {
        "id": row.id,
        "kind": row.kind,
        "name": row.name,
        "base_url": row.base_url,
        "status": row.status,
        "last_sync_at": row.last_sync_at.isoformat() if row.last_sync_at else None,
        "last_error": row.last_error,
        "cursor": row.cursor,
        "dataset_id": row.dataset_id,
        "rows_imported": rows_imported,
        "created_at": row.created_at.isoformat(),
    }


class Connectors:
    def __init__(
        self,
        db: Database,
        datasets: Datasets,
        box: SecretBox,
        http: httpx.AsyncClient,
        *,
        interval_s: float,
        max_pages: int,
        timeout_s: float,
        allow_http: bool,
    ) -> None:
        self._db, self._datasets, self._box, self._http = db, datasets, box, http
        self.interval_s, self.max_pages, self.timeout_s = interval_s, max_pages, timeout_s
        self.allow_http = allow_http
        self.clock: Callable[[], datetime] = utcnow  # replaceable: tests move time on
        self._root = datasets.data_dir / "connectors"
        self._task: asyncio.Task[None] | None = None

    async def create(
        self, user_id: str, kind: Kind, name: str, admin_key: str, base_url: str | None
    ) -> ConnectorRow:
        url = pulls.check_base_url(base_url or pulls.DEFAULT_BASE_URLS[kind.provider],
                                   allow_http=self.allow_http)  # fmt: skip
        row = ConnectorRow(
            id=str(uuid.uuid4()), user_id=user_id, kind=kind.value, name=name,
            admin_key=self._box.encrypt(admin_key), base_url=url, status="new", created_at=utcnow(),
        )  # fmt: skip
        async with self._db.session() as session:
            session.add(row)
        log.info("connector %s (%s) created for user %s", row.id, kind.value, user_id)
        return row

    async def list(self, user_id: str) -> builtins.list[ConnectorRow]:
        async with self._db.session() as session:
            rows = await session.scalars(
                select(ConnectorRow).where(ConnectorRow.user_id == user_id).order_by(ConnectorRow.created_at)
            )
            return list(rows)

    async def get(self, user_id: str, connector_id: str) -> ConnectorRow:
        async with self._db.session() as session:
            row = await session.get(ConnectorRow, connector_id)
        if row is None or row.user_id != user_id:
            raise NotFound(f"no connector {connector_id}", field="connector_id", connector_id=connector_id)
        return row

    async def rows_imported(self, row: ConnectorRow) -> int:
        if row.dataset_id is None:
            return 0
        try:
            return (await self._datasets.get(row.user_id, row.dataset_id)).row_count
        except NotFound:
            return 0

    async def delete(self, user_id: str, connector_id: str) -> None:
        """Delete the connector, its stored buckets and its dataset."""
        row = await self.get(user_id, connector_id)
        async with self._db.session() as session:
            stored = await session.get(ConnectorRow, row.id)
            if stored is not None:
                await session.delete(stored)
        if row.dataset_id is not None:
            with contextlib.suppress(NotFound):
                await self._datasets.delete(user_id, row.dataset_id)
        self._pulled(row).unlink(missing_ok=True)
        log.info("connector %s deleted by user %s", row.id, user_id)

    async def sync(self, user_id: str, connector_id: str) -> ConnectorRow:
        """Sync now; the connector afterwards (a provider failure is in its `status` and `last_error`)."""
        row = await self.get(user_id, connector_id)
        self._box.require()
        if not await self._claim(row.id):
            raise Conflict("a sync of this connector is already running", connector_id=row.id)
        return await self._run(row)

    async def _claim(self, connector_id: str) -> bool:
        now = utcnow()
        async with self._db.session() as session:
            claimed = await session.execute(
                update(ConnectorRow)
                .where(
                    ConnectorRow.id == connector_id,
                    or_(ConnectorRow.status != "syncing", ConnectorRow.sync_started_at < now - _STALE_CLAIM),
                )
                .values(status="syncing", sync_started_at=now)
            )
        return getattr(claimed, "rowcount", 0) == 1

    async def _run(self, row: ConnectorRow) -> ConnectorRow:
        values: dict[str, Any]
        try:
            admin_key = self._box.decrypt(row.admin_key)
        except UndecryptableSecret:
            values = {"status": "error", "last_error": "the stored admin key cannot be decrypted with this "
                      "server's TOKENWISE_CONNECTOR_KEY: create the connector again"}  # fmt: skip
        else:
            try:
                values = await self._pull(row, admin_key)
            except SyncFailed as exc:
                values = {"status": "error", "last_error": _scrub(str(exc), admin_key)}
            except TokenwiseError as exc:  # the pulled report did not import
                values = {"status": "error", "last_error": _scrub(exc.message, admin_key)}
            except Exception:
                failure = "the sync failed unexpectedly (see the server log)"
                await self._store(row.id, {"status": "error", "last_error": failure})
                raise
            except BaseException:
                await self._store(row.id, {"status": "error", "last_error": "the sync was interrupted"})
                raise
        if values["status"] == "error":
            log.warning("connector %s: sync failed: %s", row.id, values["last_error"])
        else:
            log.info("connector %s: synced, cursor %s", row.id, values["cursor"])
        return await self._store(row.id, values)

    async def _store(self, connector_id: str, values: dict[str, Any]) -> ConnectorRow:
        async with self._db.session() as session:
            stored = await session.get(ConnectorRow, connector_id)
            if stored is None:
                raise NotFound(f"no connector {connector_id}", field="connector_id")
            for key, value in values.items():
                setattr(stored, key, value)
            return stored

    async def _pull(self, row: ConnectorRow, admin_key: str) -> dict[str, Any]:
        kind = Kind(row.kind)
        now = self.clock()
        since = pulls.window_start(row.cursor, now)
        pulled = await self._fetch(row, kind, admin_key, since, now)
        path = self._pulled(row)
        stored = json.loads(path.read_text())["data"] if path.exists() else []
        merged = pulls.merge(kind, stored, pulled)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        try:
            tmp.write_text(json.dumps(pulls.page_file(merged)))
            dataset = await self._datasets.store_pull(
                row.user_id, tmp if merged else None, dataset_id=row.dataset_id, name=row.name
            )
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return {
            "status": "ok", "last_error": None, "last_sync_at": utcnow(),
            "cursor": pulls.next_cursor(kind, pulled, since, now),
            "dataset_id": dataset.id if dataset is not None else None,
        }  # fmt: skip

    async def _fetch(
        self, row: ConnectorRow, kind: Kind, admin_key: str, since: datetime, now: datetime
    ) -> builtins.list[pulls.Bucket]:
        url = row.base_url + pulls.ENDPOINTS[kind].path
        buckets: builtins.list[pulls.Bucket] = []
        page: str | None = None
        for _ in range(self.max_pages):
            try:
                query = pulls.params(kind, since, now, page)
                headers = pulls.headers(kind, admin_key)
                response = await self._http.get(url, params=query, headers=headers, timeout=self.timeout_s)
            except httpx.TimeoutException as exc:
                raise SyncFailed(f"the provider did not answer within {self.timeout_s:g} s") from exc
            except httpx.HTTPError as exc:
                raise SyncFailed(f"could not reach {row.base_url} ({type(exc).__name__})") from exc
            if response.status_code in (401, 403):
                raise SyncFailed(f"{REFUSED} (HTTP {response.status_code} from the provider)")
            if response.status_code != 200:
                raise SyncFailed(f"the provider answered HTTP {response.status_code}{_reason(response)}")
            try:
                result = pulls.read_page(kind, response.json())
            except (ValueError, PageError) as exc:
                message = str(exc) if isinstance(exc, PageError) else "the provider's answer is not JSON"
                raise SyncFailed(message) from exc
            buckets.extend(result.buckets)
            if (page := result.next_page) is None:
                break
        # At the page limit the rest waits for the next sync: the cursor stops after the last bucket.
        return buckets

    def _pulled(self, row: ConnectorRow) -> Path:
        return self._root / row.user_id / f"{row.id}.json"

    def start(self) -> None:
        """Start the schedule (nothing when the interval is 0)."""
        if self.interval_s > 0 and self._task is None:
            self._task = asyncio.create_task(self._schedule(), name="connector-schedule")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _schedule(self) -> None:
        while True:
            await asyncio.sleep(min(self.interval_s, _MAX_TICK_S))
            try:
                await self.sync_due()
            except Exception:  # the schedule outlives one bad round (the database down, say)
                log.exception("connector schedule: a round failed")

    async def sync_due(self) -> int:
        """Sync every connector whose last attempt is older than the interval; returns how many ran."""
        if not self._box.available:
            return 0
        due = utcnow() - timedelta(seconds=self.interval_s)
        async with self._db.session() as session:
            ids = list(
                await session.scalars(
                    select(ConnectorRow.id).where(
                        or_(ConnectorRow.sync_started_at.is_(None), ConnectorRow.sync_started_at <= due)
                    )
                )
            )
        ran = 0
        for connector_id in ids:
            if await self._claim(connector_id):
                async with self._db.session() as session:
                    row = await session.get(ConnectorRow, connector_id)
                if row is None:
                    continue
                try:
                    await self._run(row)
                except Exception:  # recorded on the connector; the others still run
                    log.exception("connector %s: sync failed unexpectedly", connector_id)
                ran += 1
        return ran


def _reason(response: httpx.Response) -> str:
    """`: <the provider's error message>` when its body has one (short; scrubbed by the caller)."""
    try:
        body = response.json()
    except ValueError:
        return ""
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return f": {message[:200]}" if isinstance(message, str) and message else ""


def _scrub(message: str, secret: str) -> str:
    """`message` without the secret (a provider may echo the key in its error)."""
    return message.replace(secret, "[redacted]") if secret else message
