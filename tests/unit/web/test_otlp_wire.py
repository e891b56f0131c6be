"""The OTLP receiver's wire rules without a server: content types, bounded decompression, rpc Status."""

from __future__ import annotations

import gzip
import zlib

import pytest
from google.rpc import status_pb2

from tokenwise.errors import MalformedBody, TooLarge, UnsupportedMediaType
from tokenwise.web.otlp_routes import Encoding, _rpc_status, encoding_of, inflate


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("application/x-protobuf", Encoding.PROTOBUF),
        ("application/protobuf", Encoding.PROTOBUF),
        ("application/json", Encoding.JSON),
        ("Application/JSON; charset=utf-8", Encoding.JSON),
        ("text/plain", None),
        (None, None),
    ],
)
def test_content_types(content_type: str | None, expected: Encoding | None) -> None:
    assert encoding_of(content_type) is expected


def test_gzip_deflate_identity_and_concatenated_members() -> None:
    data = b"x" * 10_000
    assert inflate(data, None, 20_000) == data
    assert inflate(gzip.compress(data), "gzip", 20_000) == data
    assert inflate(zlib.compress(data), "deflate", 20_000) == data
    assert inflate(gzip.compress(b"ab") + gzip.compress(b"cd"), "GZIP", 10) == b"abcd"


def test_a_gzip_bomb_stops_at_the_limit() -> None:
    bomb = gzip.compress(b"\0" * (50 * 1024 * 1024))  # 50 MiB of zeros in ~50 KiB
    assert len(bomb) < 100 * 1024
    with pytest.raises(TooLarge) as raised:
        inflate(bomb, "gzip", 1024 * 1024)
    assert raised.value.limit_bytes == 1024 * 1024


def test_bad_and_truncated_compression_and_unknown_codings() -> None:
    with pytest.raises(MalformedBody):
        inflate(b"not gzip at all", "gzip", 1000)
    with pytest.raises(MalformedBody, match="truncated"):
        inflate(gzip.compress(b"y" * 1000)[:-12], "gzip", 10_000)
    with pytest.raises(UnsupportedMediaType):
        inflate(b"...", "br", 1000)


def test_rpc_status_is_a_google_rpc_status() -> None:
    status = status_pb2.Status.FromString(_rpc_status(16, "the API key is not valid é" * 10))
    assert (status.code, status.message) == (16, "the API key is not valid é" * 10)
