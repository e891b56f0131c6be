"""Streaming multipart uploads: the file part goes straight to a temporary file, never into memory.

The size limit is enforced as the bytes arrive (and up front from Content-Length), so an over-size
upload is refused without being stored. Text fields are small and kept in memory. With a `Meter`, every
byte of the body counts against the user's import bytes of the day, refused the same way once over.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from fastapi import Request
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from tokenwise.errors import InvalidInput, TooLarge
from tokenwise.usage.datasets import human_bytes
from tokenwise.usage.import_quota import Meter

MAX_FIELD_BYTES = 1024 * 1024
# Multipart framing and the text fields travel with the file: allow them on top of the file limit.
ENVELOPE_BYTES = 2 * MAX_FIELD_BYTES


@dataclass
class Upload:
    """A received multipart form: its text fields and the (first) file, saved under `path`."""

    fields: dict[str, str] = field(default_factory=dict)
    path: Path | None = None
    filename: str | None = None
    size: int = 0
    sha256: str | None = None  # of the file's bytes as uploaded, hashed as they arrive


class _Receiver:
    def __init__(self, limit: int, work_dir: Path) -> None:
        self.limit, self.work_dir = limit, work_dir
        self.upload = Upload()
        self.handle: IO[bytes] | None = None
        self._digest = hashlib.sha256()
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""
        self._name = ""
        self._value = bytearray()
        self._is_file = False

    def on_part_begin(self) -> None:
        self._disposition, self._name, self._value, self._is_file = b"", "", bytearray(), False

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name, self._header_value = b"", b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        self._name = options.get(b"name", b"").decode(errors="replace")
        if b"filename" in options and self.upload.path is None:
            filename = options[b"filename"].decode(errors="replace")
            self.upload.filename = Path(filename.replace("\\", "/")).name or "upload"
            self.work_dir.mkdir(parents=True, exist_ok=True)
            suffix = "".join(Path(self.upload.filename).suffixes[-2:])
            suffix = suffix if re.fullmatch(r"[A-Za-z0-9.]{1,16}", suffix) else ""
            self.handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed by receive_upload
                prefix="upload-", suffix=suffix, dir=self.work_dir, delete=False
            )
            self.upload.path = Path(self.handle.name)
            self._is_file = True

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._is_file:
            assert self.handle is not None
            self.upload.size += end - start
            if self.upload.size > self.limit:
                raise _OverLimit
            self.handle.write(data[start:end])
            self._digest.update(data[start:end])
        else:
            self._value += data[start:end]
            if len(self._value) > MAX_FIELD_BYTES:
                raise InvalidInput(
                    f"form field {self._name!r} is over {MAX_FIELD_BYTES} bytes", field=self._name
                )

    def on_part_end(self) -> None:
        if self._is_file:
            assert self.handle is not None
            self.handle.close()
            self._is_file = False
            self.upload.sha256 = self._digest.hexdigest()
        elif self._name:
            self.upload.fields[self._name] = self._value.decode(errors="replace")


class _OverLimit(Exception):
    pass


@asynccontextmanager
async def receive_upload(
    request: Request, *, limit: int, work_dir: Path, meter: Meter | None = None
) -> AsyncIterator[Upload]:
    """Stream a multipart/form-data body to disk; the saved file is removed when the block ends."""
    too_large = TooLarge(
        f"the upload is over the limit of {human_bytes(limit)} ({limit} bytes)", limit_bytes=limit
    )
    content_type, params = parse_options_header(request.headers.get("content-type"))
    if content_type != b"multipart/form-data" or b"boundary" not in params:
        raise InvalidInput("send the file as multipart/form-data in the field 'file'", field="file")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + ENVELOPE_BYTES:
        raise too_large
    if meter is not None and declared and declared.isdigit():
        meter.expect(int(declared))
    receiver = _Receiver(limit, work_dir)
    parser = MultipartParser(
        params[b"boundary"],
        {
            "on_part_begin": receiver.on_part_begin,
            "on_part_data": receiver.on_part_data,
            "on_part_end": receiver.on_part_end,
            "on_header_field": receiver.on_header_field,
            "on_header_value": receiver.on_header_value,
            "on_header_end": receiver.on_header_end,
            "on_headers_finished": receiver.on_headers_finished,
        },
    )
    try:
        try:
            async for chunk in request.stream():
                if meter is not None:
                    await meter.received(len(chunk))
                parser.write(chunk)
            parser.finalize()
        except _OverLimit:
            raise too_large from None
        except FormParserError as exc:
            raise InvalidInput(f"malformed multipart body: {exc}", field="file") from exc
        finally:
            if receiver.handle is not None:
                receiver.handle.close()
        yield receiver.upload
    finally:
        if receiver.upload.path is not None:
            with suppress(OSError):
                receiver.upload.path.unlink()
