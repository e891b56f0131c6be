"""Usage data over HTTP: upload and preview files, list/read/delete datasets, stream events.

Every import (upload, preview, events batch) holds one of the user's import slots while it runs
(`Datasets.quota`): over the quota it is refused with 429 before its body is read or anything stored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field, StrictBool, StringConstraints

from tokenwise import jsonlimits
from tokenwise.errors import InvalidInput
from tokenwise.usage.datasets import dataset_json
from tokenwise.web.deps import AppServices, CurrentClaims, IngestCaller, ReadCaller
from tokenwise.web.uploads import Upload, receive_upload

router = APIRouter(prefix="/api", tags=["datasets"])
ModelName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
# A name is shown in lists and answers: one line of printable text.
DatasetName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=255, pattern=r"^[^\x00-\x1f\x7f]+$"),
]


class WorkloadEvents(BaseModel):
    """A batch of request records (same fields as a usage file's columns) for the user's event stream."""

    records: list[Any] = Field(min_length=1)
    model: ModelName | None = None  # the model of records that name none


class DatasetChange(BaseModel):
    """`{"name"}` renames; `{"model"}` names (null: clears) the model of rows that have none; `{"included"}`
    chooses whether questions cover the dataset; any of them together."""

    model: ModelName | None = None
    name: DatasetName | None = None
    included: StrictBool | None = None


def _mapping(upload: Upload) -> dict[str, str | None] | None:
    text = upload.fields.get("mapping", "").strip()
    if not text:
        return None
    try:
        mapping = jsonlimits.loads(text)  # a mapping is flat: deep nesting is refused before parsing
    except ValueError as exc:
        raise InvalidInput(f"mapping: not valid JSON ({exc})", field="mapping") from exc
    if not isinstance(mapping, dict) or not all(
        isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in mapping.items()
    ):
        raise InvalidInput('mapping: expected a JSON object {"field": "source column"}', field="mapping")
    return mapping


def _flag(upload: Upload, name: str) -> bool:
    return upload.fields.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _saved(upload: Upload) -> Path:
    if upload.path is None:
        raise InvalidInput("send the usage file in the multipart field 'file'", field="file")
    return upload.path


@router.post("/datasets", status_code=201)
async def upload_dataset(request: Request, claims: IngestCaller, services: AppServices) -> dict[str, Any]:
    """Import a usage file: CSV, JSONL or Parquet (multipart: file, model?, mapping?, keep_prompt_text?)."""
    datasets = services.datasets
    async with (
        datasets.quota.importing(claims.user_id) as meter,
        receive_upload(
            request, limit=datasets.max_upload_bytes, work_dir=datasets.work_dir, meter=meter
        ) as upload,
    ):
        row = await datasets.import_file(
            claims.user_id,
            _saved(upload),
            upload.filename,
            model=upload.fields.get("model"),
            mapping=_mapping(upload),
            keep_prompt_text=_flag(upload, "keep_prompt_text"),
            name=upload.fields.get("name") or None,
            content_hash=upload.sha256,
        )
    return dataset_json(row)


@router.post("/datasets/preview")
async def preview_dataset(request: Request, claims: CurrentClaims, services: AppServices) -> dict[str, Any]:
    """What an import would do: detected format, mapping, columns, the first rows (nothing is stored)."""
    datasets = services.datasets
    # A preview stores nothing: it holds an import slot while it runs, its bytes are not counted.
    async with (
        datasets.quota.importing(claims.user_id),
        receive_upload(request, limit=datasets.max_upload_bytes, work_dir=datasets.work_dir) as upload,
    ):
        return await datasets.preview(
            _saved(upload), upload.filename, _mapping(upload), user_id=claims.user_id
        )


@router.get("/datasets")
async def list_datasets(claims: ReadCaller, services: AppServices) -> dict[str, Any]:
    return {"datasets": [dataset_json(row) for row in await services.datasets.list(claims.user_id)]}


@router.get("/datasets/{dataset_id}")
async def get_dataset(dataset_id: str, claims: ReadCaller, services: AppServices) -> dict[str, Any]:
    return dataset_json(await services.datasets.get(claims.user_id, dataset_id))


@router.patch("/datasets/{dataset_id}")
async def change_dataset(
    dataset_id: str, body: DatasetChange, claims: CurrentClaims, services: AppServices
) -> dict[str, Any]:
    """Rename the dataset, name (or clear) the model of its rows that have none, include or exclude it."""
    changes = body.model_fields_set
    if not changes:
        raise InvalidInput(
            'send {"name": ...} to rename, {"model": ...} to set the model, or {"included": true|false} '
            "to choose whether questions cover the dataset",
            field="body",
        )
    if "name" in changes and body.name is None:
        raise InvalidInput("name: a dataset needs a name", field="name")
    if "included" in changes and body.included is None:
        raise InvalidInput("included: expected true or false", field="included")
    datasets = services.datasets
    if body.name is not None:
        row = await datasets.rename(claims.user_id, dataset_id, body.name)
    if "model" in changes:
        row = await datasets.set_model(claims.user_id, dataset_id, body.model)
    if body.included is not None:
        row = await datasets.set_included(claims.user_id, dataset_id, body.included)
    return dataset_json(row)


@router.delete("/datasets/{dataset_id}", status_code=204)
async def delete_dataset(dataset_id: str, claims: CurrentClaims, services: AppServices) -> Response:
    await services.datasets.delete(claims.user_id, dataset_id)
    return Response(status_code=204)


@router.post("/workload/events", status_code=201)
async def workload_events(
    request: Request, body: WorkloadEvents, claims: IngestCaller, services: AppServices
) -> dict[str, Any]:
    """Append a batch of request records to the user's event stream; all or nothing per batch."""
    datasets = services.datasets
    async with datasets.quota.importing(claims.user_id) as meter:
        await meter.received(len(await request.body()))  # read already, to parse it: cached
        stream, accepted = await datasets.append_events(claims.user_id, body.records, body.model)
    return {"accepted": accepted, "dataset_id": stream.id, "row_count": stream.row_count}
