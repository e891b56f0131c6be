"""Datasets: a user's imported usage files, stored as normalized Parquet under the data directory.

    data_dir/datasets/<user_id>/<dataset_id>.parquet     one imported file
    data_dir/datasets/<user_id>/<stream_id>/part-*.parquet   the user's workload-event stream

A dataset belongs to one user: any other user gets NotFound. An import is all or nothing: the Parquet
file is renamed into place only when every row is valid, and removed again if the database row cannot
be written.

The model a user names at import fills the `model` column of rows that have none, and is kept as the
dataset's `model`. Naming it later (`set_model`) does not rewrite the file: the analysis applies
`DatasetUsage.default_models()` as `COALESCE(model, default)`. With neither, `model` stays NULL and the
agents ask for it.

Questions cover only the datasets the user includes (`included`, true by default; `set_included`): the
others stay stored, still count when a later import looks for rows it already has, and are named in
answers as left out. `dataset_json` also says a dataset's grain: `bucketed` (time buckets of a usage or
cost report, not requests) and `request_counts` (whether such a report counts its requests).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tokenwise.analysis.sql import Engine
from tokenwise.db.database import Database
from tokenwise.db.tables import DatasetRow
from tokenwise.errors import Conflict, InvalidInput, NotFound, TooLarge
from tokenwise.usage import bounds as bounds_mod
from tokenwise.usage import formats
from tokenwise.usage import ingest as ingest_mod
from tokenwise.usage.bounds import Bounds
from tokenwise.usage.import_quota import CountedImports, ImportQuota
from tokenwise.usage.normalize import Options
from tokenwise.usage.overlap import Known, keys_path
from tokenwise.usage.preview import preview_file
from tokenwise.usage.prices import PriceList, load_prices
from tokenwise.usage.scheduling import FairSlots

if TYPE_CHECKING:
    from tokenwise.usage.dataset_usage import DatasetUsage

STREAM_NAME = "workload events"
_STREAM_NAMESPACE = uuid.UUID("6f1d4c1e-8a43-4c55-9b3e-1f0e3a6c2d7b")


def dataset_json(row: DatasetRow) -> dict[str, Any]:
    """A dataset as the API shows it, mapping included."""
    details = row.details or {}
    bucketed, request_counts = formats.grain(row.detected_format)
    if details.get("bucketed") and not bucketed:  # bucketed by its `bucket_start` column, not its format
        bucketed, request_counts = True, False
    return {
        "id": row.id,
        "name": row.name,
        "source_format": row.source_format,
        "detected_format": row.detected_format,
        "row_count": row.row_count,
        "mapping": row.mapping,
        "model": row.model,
        "keep_prompt_text": row.keep_prompt_text,
        "period": {
            "start": row.period_start.isoformat() if row.period_start else None,
            "end": row.period_end.isoformat() if row.period_end else None,
        },
        "bytes": row.bytes,
        "created_at": row.created_at.isoformat(),
        "notes": details.get("notes", []),
        "columns": details.get("columns", []),
        "timestamps": details.get("timestamps"),
        "content_hash": row.content_hash,
        "skipped_rows": details.get("skipped_rows", {"request_id": 0, "bucket": 0, "total": 0}),
        "included": row.included is not False,
        # Rows are time buckets of a usage or cost report, not requests; and whether requests are counted.
        "bucketed": bucketed,
        "request_counts": request_counts,
    }


class Datasets:
    """Import, list, read and delete one user's datasets; append workload events to their stream."""

    def __init__(
        self,
        db: Database,
        data_dir: Path,
        *,
        max_upload_bytes: int,
        max_event_batch: int,
        prices: PriceList | None = None,
        prices_for: Callable[[str], Awaitable[PriceList]] | None = None,
        bounds: Bounds | None = None,
        slots: FairSlots | None = None,
        quota: ImportQuota | None = None,
    ) -> None:
        self.db = db
        self._direct = db.direct
        self.bounds = bounds or Bounds()  # decompressed bytes and rows of one file (rows: of one dataset)
        # Imports are CPU-bound DuckDB work in threads: a few at a time, shared fairly between users.
        self.slots = slots or FairSlots(total=2, per_user=1)
        self.quota: ImportQuota = quota or CountedImports.local(2, 5 * 1024**3)
        self.prices = prices if prices is not None else load_prices()
        self.prices_for = prices_for  # a user's own book (their price overrides); None: `prices` for all
        # One DuckDB database for every user's questions (each query takes its own cursor).
        self.engine = Engine()
        self.data_dir = data_dir.resolve()
        self.root = self.data_dir / "datasets"
        self.work_dir = self.data_dir / "tmp"
        self.max_upload_bytes = max_upload_bytes
        self.max_event_batch = max_event_batch
        self._stream_locks: dict[str, asyncio.Lock] = {}
        # One import at a time per user: each sees what the previous one stored (content hash, overlaps).
        self._import_locks: dict[str, asyncio.Lock] = {}

    def check_size(self, size: int) -> None:
        """Raise TooLarge when `size` bytes exceed the upload limit."""
        if size > self.max_upload_bytes:
            raise TooLarge(
                f"the file is over the upload limit of {human_bytes(self.max_upload_bytes)} "
                f"({self.max_upload_bytes} bytes)",
                limit_bytes=self.max_upload_bytes,
            )

    async def list(self, user_id: str) -> list[DatasetRow]:
        # read at the start of every run (the agents' UsageSource): plain SQL, not the ORM
        return await self._direct.rows(DatasetRow, "user_id = :user_id", {"user_id": user_id}, "created_at")

    async def get(self, user_id: str, dataset_id: str) -> DatasetRow:
        """The user's dataset; NotFound when it does not exist or belongs to someone else."""
        async with self.db.session() as session:
            return await _owned(session, user_id, dataset_id)

    async def delete(self, user_id: str, dataset_id: str) -> None:
        """Delete the dataset's row and its file(s)."""
        async with self.db.session() as session:
            row = await _owned(session, user_id, dataset_id)
            await session.delete(row)
        target = self.data_dir / row.path
        self._remove(target)
        if target.suffix == ".parquet":
            self._remove(keys_path(target))

    async def set_model(self, user_id: str, dataset_id: str, model: str | None) -> DatasetRow:
        """Name (or clear) the model the analysis applies to the dataset's rows that have none."""
        async with self.db.session() as session:
            row = await _owned(session, user_id, dataset_id)
            row.model = model
        return row

    async def set_included(self, user_id: str, dataset_id: str, included: bool) -> DatasetRow:
        """Whether questions cover the dataset (its rows stay stored either way)."""
        async with self.db.session() as session:
            row = await _owned(session, user_id, dataset_id)
            row.included = included
        return row

    async def rename(self, user_id: str, dataset_id: str, name: str) -> DatasetRow:
        """Give the dataset a new name (names need not be unique; the id is)."""
        async with self.db.session() as session:
            row = await _owned(session, user_id, dataset_id)
            row.name = name
        return row

    async def preview(
        self,
        path: Path,
        filename: str | None,
        mapping: dict[str, str | None] | None = None,
        *,
        user_id: str = "",
    ) -> dict[str, Any]:
        """Detected format, mapping, columns and the first rows, for confirming before an import."""
        self.check_size(await asyncio.to_thread(os.path.getsize, path))
        async with self.slots.hold(user_id):
            return await asyncio.to_thread(
                preview_file, path, filename, mapping, self.work_dir, bounds=self.bounds
            )

    async def import_file(
        self,
        user_id: str,
        path: Path,
        filename: str | None,
        model: str | None = None,
        mapping: dict[str, str | None] | None = None,
        keep_prompt_text: bool = False,
        name: str | None = None,
        content_hash: str | None = None,
    ) -> DatasetRow:
        """Validate and store the file at `path` as a new dataset of `user_id`; all or nothing.

        `content_hash` is the SHA-256 (hex) of the bytes as uploaded, computed here when not given. The
        same file twice is refused (Conflict naming the dataset that has it); rows another dataset of the
        user already holds are not stored again (see `usage.overlap`)."""
        self.check_size(await asyncio.to_thread(os.path.getsize, path))
        model = model.strip() if model and model.strip() else None
        digest = content_hash if content_hash else await asyncio.to_thread(sha256_of, path)
        async with self._import_locks.setdefault(user_id, asyncio.Lock()):
            others = await self.list(user_id)
            if same := next((row for row in others if row.content_hash == digest), None):
                raise _already_uploaded(same)
            return await self._import(
                user_id, path, filename, model, mapping, keep_prompt_text, name, digest, others
            )

    async def _import(
        self,
        user_id: str,
        path: Path,
        filename: str | None,
        model: str | None,
        mapping: dict[str, str | None] | None,
        keep_prompt_text: bool,
        name: str | None,
        digest: str,
        others: builtins.list[DatasetRow],
    ) -> DatasetRow:
        dataset_id = str(uuid.uuid4())
        relative = Path("datasets") / user_id / f"{dataset_id}.parquet"
        options = Options(default_model=model, keep_prompt_text=keep_prompt_text)
        known = Known(
            files=tuple(file for row in others for file in self.files_of(row)),
            bucket_files=tuple(keys_path(self.data_dir / row.path) for row in others),
        )
        async with self.slots.hold(user_id):
            result = await asyncio.to_thread(
                ingest_mod.ingest,
                path,
                self.data_dir / relative,
                filename=filename,
                options=options,
                override=mapping,
                work_dir=self.work_dir,
                known=known,
                bounds=self.bounds,
            )
        details = _details(result)
        row = DatasetRow(
            id=dataset_id,
            user_id=user_id,
            name=(name or filename or path.name)[:255],
            source_format=result.kind,
            detected_format=result.detection.format_name,
            row_count=result.row_count,
            mapping=result.detection.mapping,
            details=details,
            model=model,
            keep_prompt_text=keep_prompt_text,
            period_start=result.period_start,
            period_end=result.period_end,
            bytes=result.bytes,
            path=relative.as_posix(),
            content_hash=digest,
        )
        written = self.data_dir / relative
        try:
            return await self._insert(row, written, keys_path(written))
        except IntegrityError as exc:
            # Another server process imported the same file meanwhile: the unique index refused this one.
            async with self.db.session() as session:
                same = await session.scalar(
                    select(DatasetRow).where(DatasetRow.user_id == user_id, DatasetRow.content_hash == digest)
                )
            if same is None:
                raise
            raise _already_uploaded(same) from exc

    async def store_pull(
        self, user_id: str, path: Path | None, *, dataset_id: str | None, name: str
    ) -> DatasetRow | None:
        """Replace the rows of a connector's dataset with the report page at `path` (None: no buckets).

        The dataset keeps its id; its file is swapped for the new one. Rows that the user's other datasets
        hold (an uploaded copy of the same report) are not stored again. None: nothing left to store."""
        async with self._import_locks.setdefault(user_id, asyncio.Lock()):
            rows = await self.list(user_id)
            current = next((row for row in rows if row.id == dataset_id), None)
            others = [row for row in rows if row.id != dataset_id]
            new_id = current.id if current is not None else str(uuid.uuid4())
            relative = Path("datasets") / user_id / f"{new_id}-{uuid.uuid4().hex[:12]}.parquet"
            result: ingest_mod.IngestResult | None = None
            if path is not None:
                known = Known(
                    files=tuple(file for row in others for file in self.files_of(row)),
                    bucket_files=tuple(keys_path(self.data_dir / row.path) for row in others),
                )
                async with self.slots.hold(user_id):
                    try:
                        result = await asyncio.to_thread(
                            ingest_mod.ingest, path, self.data_dir / relative, kind="json",
                            work_dir=self.work_dir, known=known, bounds=self.bounds,
                        )  # fmt: skip
                    except Conflict:
                        result = None  # every bucket is in another dataset already
            if result is None:
                if current is not None:
                    await self.delete(user_id, current.id)
                return None
            return await self._swap(user_id, current, new_id, name, relative, result)

    async def _swap(
        self,
        user_id: str,
        current: DatasetRow | None,
        new_id: str,
        name: str,
        relative: Path,
        result: ingest_mod.IngestResult,
    ) -> DatasetRow:
        written = self.data_dir / relative
        fields: dict[str, Any] = {
            "source_format": result.kind, "detected_format": result.detection.format_name,
            "row_count": result.row_count, "mapping": result.detection.mapping, "details": _details(result),
            "period_start": result.period_start, "period_end": result.period_end, "bytes": result.bytes,
            "path": relative.as_posix(),
        }  # fmt: skip
        if current is None:
            row = DatasetRow(id=new_id, user_id=user_id, name=name[:255], keep_prompt_text=False, **fields)
            return await self._insert(row, written, keys_path(written))
        old = self.data_dir / current.path
        try:
            async with self.db.session() as session:
                row = await _owned(session, user_id, current.id)
                for key, value in fields.items():
                    setattr(row, key, value)
        except BaseException:
            _discard(written)
            _discard(keys_path(written))
            raise
        self._remove(old)
        self._remove(keys_path(old))
        return row

    async def _insert(self, row: DatasetRow, *written: Path) -> DatasetRow:
        try:
            async with self.db.session() as session:
                session.add(row)
        except BaseException:
            for path in written:
                _discard(path)
            raise
        return row

    async def append_events(
        self, user_id: str, records: Sequence[Any], model: str | None = None
    ) -> tuple[DatasetRow, int]:
        """Validate a batch of request records and append it to the user's stream; returns (stream, rows)."""
        if not records:
            raise InvalidInput("records: send at least one record", field="records")
        if len(records) > self.max_event_batch:
            raise InvalidInput(
                f"records: at most {self.max_event_batch} records per batch, got {len(records)}",
                field="records",
            )
        for index, record in enumerate(records):
            if not isinstance(record, Mapping):
                raise InvalidInput(
                    f"record {index}: expected an object", field=f"records[{index}]", record=index
                )
        stream_id = str(uuid.uuid5(_STREAM_NAMESPACE, user_id))
        relative_dir = Path("datasets") / user_id / stream_id
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        part = self.data_dir / relative_dir / f"part-{stamp}-{uuid.uuid4().hex[:8]}.parquet"
        lock = self._stream_locks.setdefault(user_id, asyncio.Lock())
        async with self.slots.hold(user_id):
            result = await asyncio.to_thread(_ingest_records, list(records), part, model, self.work_dir)
        async with lock:
            try:
                stream = await self._grow_stream(user_id, stream_id, relative_dir, result, model)
            except BaseException:
                _discard(part)
                raise
        return stream, result.row_count

    async def _grow_stream(
        self,
        user_id: str,
        stream_id: str,
        relative_dir: Path,
        result: ingest_mod.IngestResult,
        model: str | None,
    ) -> DatasetRow:
        async with self.db.session() as session:
            row = await session.get(DatasetRow, stream_id)
            if row is None:
                row = DatasetRow(
                    id=stream_id,
                    user_id=user_id,
                    name=STREAM_NAME,
                    source_format="events",
                    detected_format="workload_events",
                    row_count=0,
                    mapping={},
                    details={
                        "notes": ["Records sent to POST /api/workload/events, one part file per batch."]
                    },
                    model=model,
                    keep_prompt_text=False,
                    bytes=0,
                    path=relative_dir.as_posix(),
                )
                session.add(row)
            # The stream is one dataset: its rows together stay within the rows one dataset may hold.
            bounds_mod.check_stream_rows(row.row_count or 0, result.row_count, self.bounds)
            row.row_count = (row.row_count or 0) + result.row_count
            row.bytes = (row.bytes or 0) + result.bytes
            row.mapping = {**(row.mapping or {}), **result.detection.mapping}
            row.period_start = _earliest(row.period_start, result.period_start)
            row.period_end = _latest(row.period_end, result.period_end)
        return row

    def files_of(self, row: DatasetRow) -> builtins.list[Path]:
        """The dataset's Parquet file(s), absolute; a stream's part files in the order they arrived."""
        target = self.data_dir / row.path
        if target.is_dir():
            return sorted(target.glob("part-*.parquet"))
        return [target] if target.exists() else []

    def usage_for(self, user_id: str) -> DatasetUsage:
        from tokenwise.usage.dataset_usage import DatasetUsage

        return DatasetUsage(self, user_id)

    def _remove(self, target: Path) -> None:
        if not target.resolve().is_relative_to(self.root):
            return  # never delete outside the datasets directory, whatever the row says
        if target.is_dir():
            shutil.rmtree(target, ignore_errors=True)
        else:
            target.unlink(missing_ok=True)


def _ingest_records(
    records: list[Any], part: Path, model: str | None, work_dir: Path
) -> ingest_mod.IngestResult:
    work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", dir=work_dir, delete=False, encoding="utf-8") as f:
        temp = Path(f.name)
        for record in records:
            f.write(json.dumps(record, default=str))
            f.write("\n")
    try:
        return ingest_mod.ingest(
            temp,
            part,
            kind="jsonl",
            options=Options(default_model=model),
            position=lambda index: (f"record {index}", {"record": index}),
            work_dir=work_dir,
        )
    finally:
        temp.unlink(missing_ok=True)


def _details(result: ingest_mod.IngestResult) -> dict[str, Any]:
    """The dataset record's details of an import: columns, timestamps, notes, rows already stored."""
    description = result.describe()
    notes = list(description["notes"])
    if note := ingest_mod.skipped_note(result.skipped):
        notes.append(note)
    skipped = result.skipped
    details = {k: description[k] for k in ("columns", "timestamps", "format_title")}
    details["notes"] = notes
    details["bucketed"] = result.bucket_keys
    details["skipped_rows"] = {"request_id": skipped.request_id, "bucket": skipped.bucket,
                               "total": skipped.total}  # fmt: skip
    return details


async def _owned(session: AsyncSession, user_id: str, dataset_id: str) -> DatasetRow:
    """The user's dataset in `session`; NotFound (naming the field) for any other id."""
    row = await session.get(DatasetRow, dataset_id)
    if row is None or row.user_id != user_id:
        raise NotFound(f"no dataset {dataset_id}", field="dataset_id", dataset_id=dataset_id)
    return row


def _already_uploaded(row: DatasetRow) -> Conflict:
    return Conflict(
        f"this file was already uploaded: it is dataset '{row.name}' ({row.id}); delete that dataset "
        "to import the file again",
        field="file",
        dataset_id=row.id,
        dataset_name=row.name,
    )


def sha256_of(path: Path) -> str:
    """The SHA-256 (hex) of the file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _discard(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return min(x for x in (a, b) if x is not None) if (a or b) else None


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return max(x for x in (a, b) if x is not None) if (a or b) else None


def human_bytes(size: int) -> str:
    """`536870912` -> `512 MiB`."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:g} {unit}"
    return f"{size} bytes"


__all__ = ["STREAM_NAME", "Datasets", "dataset_json", "human_bytes", "sha256_of"]
