"""Over-size bodies and headers, slow headers and idle connections against a real server process.

The server runs as its own process so its memory (VmRSS) can be read while 20 clients push 200 MiB
bodies at it, and so its sockets are the ones a real attacker would hold.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support.live import ServerProcess

HEADER_TIMEOUT_S = 1.0
KEEP_ALIVE_S = 1
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(
        tmp_path_factory.mktemp("hostile"),
        TOKENWISE_HEADER_TIMEOUT_S=str(HEADER_TIMEOUT_S),
        TOKENWISE_KEEP_ALIVE_TIMEOUT_S=str(KEEP_ALIVE_S),
    ).start()
    yield server
    server.stop()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def connect(process: ServerProcess) -> socket.socket:
    return socket.create_connection(("127.0.0.1", process.port), timeout=10)


def read_response(sock: socket.socket, timeout: float = 10.0) -> bytes:
    """Everything the server sends until it closes (or `timeout` passes)."""
    sock.settimeout(timeout)
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except (TimeoutError, ConnectionResetError):
        pass
    return b"".join(chunks)


def closed_by_server(sock: socket.socket, within: float) -> bool:
    sock.settimeout(within)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return True


def post_oversize(process: ServerProcess, *, declared: bool, total: int = 200 * MiB) -> bytes:
    """POST a `total`-byte JSON body to /auth/login, declared up front or chunked; the server's answer."""
    sock = connect(process)
    head = "POST /auth/login HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
    head += f"content-length: {total}\r\n\r\n" if declared else "transfer-encoding: chunked\r\n\r\n"
    sock.sendall(head.encode())
    piece = b'{"email":"' + b"a" * (MiB - 20)
    sent = 0
    try:
        while sent < total:
            sock.sendall(piece if declared else f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            sent += len(piece)
    except (BrokenPipeError, ConnectionResetError):
        pass  # refused and closed before the body was sent: that is the point
    answer = read_response(sock)
    sock.close()
    return answer


def test_an_oversize_login_body_is_413_with_the_limit(process: ServerProcess) -> None:
    answer = post_oversize(process, declared=True)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert body["error"]["code"] == "too_large"
    assert body["error"]["limit_bytes"] == 64 * 1024
    assert "65536 bytes" in body["error"]["message"]


def test_a_chunked_oversize_body_is_refused_while_read(process: ServerProcess) -> None:
    answer = post_oversize(process, declared=False, total=8 * MiB)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"limit_bytes":65536' in answer


def test_json_routes_have_their_own_limit(process: ServerProcess) -> None:
    response = httpx.post(f"{process.url}/api/threads", content=b"x" * (600 * 1024), timeout=10)
    assert response.status_code == 413
    assert response.json()["error"]["limit_bytes"] == 512 * 1024


def test_memory_stays_flat_under_20_concurrent_oversize_bodies(process: ServerProcess) -> None:
    assert process.process is not None
    pid = process.process.pid
    httpx.post(f"{process.url}/auth/login", json={"email": "a@example.com", "password": "x"}, timeout=10)
    before = rss_kib(pid)
    peak = before
    answers: list[bytes] = []

    def one(declared: bool) -> None:
        answers.append(post_oversize(process, declared=declared))

    threads = [threading.Thread(target=one, args=(i % 2 == 0,)) for i in range(20)]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        peak = max(peak, rss_kib(pid))
        time.sleep(0.02)
    assert len(answers) == 20
    assert all(answer.startswith(b"HTTP/1.1 413") for answer in answers), [a[:40] for a in answers]
    assert (peak - before) < 40 * 1024, f"RSS grew by {(peak - before) / 1024:.1f} MiB"


def test_a_header_block_over_the_limit_is_431_and_closed(process: ServerProcess) -> None:
    sock = connect(process)
    sock.sendall(b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\nx-big: " + b"a" * (20 * 1024) + b"\r\n\r\n")
    answer = read_response(sock)
    assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
    assert b"connection: close" in answer.lower()


@pytest.mark.parametrize("size", [9 * 1024, 15 * 1024])
def test_an_upgrade_with_a_long_header_line_is_answered_431_and_closed(
    process: ServerProcess, size: int
) -> None:
    sock = connect(process)
    sock.sendall(
        b"GET /ws HTTP/1.1\r\nhost: 127.0.0.1\r\nupgrade: websocket\r\nconnection: Upgrade\r\n"
        b"sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n"
        b"x-big: " + b"a" * size + b"\r\n\r\n"
    )
    answer = read_response(sock, timeout=5)
    assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
    sock.close()


def test_an_upgrade_with_too_many_headers_is_431(process: ServerProcess) -> None:
    sock = connect(process)
    extra = b"".join(b"x-h%d: v\r\n" % i for i in range(200))
    sock.sendall(
        b"GET /ws HTTP/1.1\r\nhost: 127.0.0.1\r\nupgrade: websocket\r\nconnection: Upgrade\r\n"
        b"sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n" + extra + b"\r\n"
    )
    assert read_response(sock, timeout=5).startswith(b"HTTP/1.1 431")
    sock.close()


def test_headers_that_never_finish_are_closed(process: ServerProcess) -> None:
    """Slowloris: 20 connections, a header byte every 0.2 s; every one closed soon after the deadline."""
    socks = [connect(process) for _ in range(20)]
    for sock in socks:
        sock.sendall(b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\n")
    started = time.monotonic()
    open_socks = list(socks)
    while open_socks and time.monotonic() - started < HEADER_TIMEOUT_S + 3:
        for sock in list(open_socks):
            try:
                sock.sendall(b"x")
            except OSError:
                open_socks.remove(sock)
        time.sleep(0.2)
    answers = [read_response(sock, timeout=2) for sock in socks]
    assert all(answer == b"" or answer.startswith(b"HTTP/1.1 408") for answer in answers)
    for sock in socks:
        assert closed_by_server(sock, within=0.5)
        sock.close()


def test_a_connection_that_sends_nothing_is_closed(process: ServerProcess) -> None:
    sock = connect(process)
    assert closed_by_server(sock, within=HEADER_TIMEOUT_S + 3)
    sock.close()


def test_an_idle_keep_alive_connection_times_out(process: ServerProcess) -> None:
    sock = connect(process)
    sock.sendall(b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
    sock.settimeout(5)
    assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    started = time.monotonic()
    assert closed_by_server(sock, within=KEEP_ALIVE_S + 3)
    assert time.monotonic() - started >= KEEP_ALIVE_S - 0.2
    sock.close()


def test_a_keep_alive_connection_is_still_served(process: ServerProcess) -> None:
    with httpx.Client(base_url=process.url, timeout=10) as client:
        for _ in range(3):
            assert client.get("/health").status_code == 200
