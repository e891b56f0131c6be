"""Storage faults under a real `tokenwise serve` on SQLite: seen by /health/ready, refused as 503, named at
start-up.

The database file is deleted, replaced, made read-only and its disk filled under a running server
process. A read-only file and a full disk need root to be real (root writes through chmod): as root the
server runs in its own mount namespace (`unshare -m`) on a small tmpfs, which the test fills and
bind-mounts read-only from inside that namespace (`nsenter`), so no mount outlives the server. Without
root, the read-only case uses chmod and the full disk is shown with a free-space minimum above the
disk's real free space.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from websockets.exceptions import ConnectionClosed

from support.clients import open_ws, recv_json, signup
from support.live import wait_healthy
from support.servers import free_port
from tokenwise.db.database import Database
from tokenwise.db.migrate import upgrade
from tokenwise.errors import ServiceUnavailable

pytestmark = pytest.mark.slow

MiB = 1024 * 1024
TOKENWISE = [sys.executable, "-m", "tokenwise"]


def _can_mount() -> bool:
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("nsenter"):
        return False
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /mnt && umount /mnt"],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


CAN_MOUNT = _can_mount()


class Serve:
    """`tokenwise serve` on `data_dir`, as its own process; `tmpfs_bytes`: in its own mount namespace,
    with `data_dir` a tmpfs of that size (migrated there first)."""

    def __init__(self, data_dir: Path, *, tmpfs_bytes: int | None = None, **env: str) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.env = {
            **os.environ,
            "TOKENWISE_DATA_DIR": str(data_dir),
            "TOKENWISE_PORT": str(self.port),
            "TOKENWISE_HOST": "127.0.0.1",
            **env,
        }
        self.log_path = data_dir.parent / f"{data_dir.name}-{self.port}.log"
        data_dir.mkdir(parents=True, exist_ok=True)
        serve = [*TOKENWISE, "serve", "--log-level", "warning"]
        if tmpfs_bytes is None:
            subprocess.run([*TOKENWISE, "migrate"], env=self.env, check=True, capture_output=True)
            command = serve
        else:
            script = (
                f'mount -t tmpfs -o size={tmpfs_bytes} tmpfs "$0" && "$1" -m tokenwise migrate >/dev/null && '
                'exec "$@"'
            )
            command = ["unshare", "-m", "sh", "-c", script, str(data_dir), *serve]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        wait_healthy(self.url, timeout=60)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def inside(self, script: str) -> None:
        """Run a shell script in the server's mount namespace (where its tmpfs is)."""
        subprocess.run(
            ["nsenter", "-t", str(self.process.pid), "-m", "sh", "-c", script, str(self.data_dir)],
            check=False,
            capture_output=True,
        )

    def ready(self) -> httpx.Response:
        return httpx.get(f"{self.url}/health/ready", timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def servers() -> Iterator[list[Serve]]:
    started: list[Serve] = []
    yield started
    for server in started:
        server.stop()


def database_check(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["failing"] == ["database"], body
    check: dict[str, str] = body["checks"]["database"]
    assert check["status"] == "failing", body
    return check


def start_fails(data_dir: Path, *args: str) -> str:
    """Run `tokenwise serve <args>` expecting it to refuse to start; its output."""
    env = {**os.environ, "TOKENWISE_DATA_DIR": str(data_dir), "TOKENWISE_PORT": str(free_port())}
    done = subprocess.run([*TOKENWISE, "serve", *args], env=env, capture_output=True, text=True, timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Traceback" not in output, output
    assert "cannot start" in output, output
    return output


def until(condition: object, timeout: float = 10.0) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


async def test_a_deleted_database_makes_the_server_unready_and_refuses_writes(
    tmp_path: Path, servers: list[Serve]
) -> None:
    data_dir = tmp_path / "data"
    server = Serve(data_dir)
    servers.append(server)
    database = data_dir / "tokenwise.db"
    assert server.ready().status_code == 200, server.ready().text
    account = await signup(server.url)
    ws, _ = await open_ws(server.url.replace("http", "ws") + "/ws", account.access_token)

    for path in data_dir.glob("tokenwise.db*"):
        path.unlink()

    check = database_check(server.ready())
    assert str(database) in check["message"], check
    assert "deleted or replaced" in check["message"], check
    assert "restart" in check["message"], check
    bearer = {"Authorization": f"Bearer {account.access_token}"}
    async with httpx.AsyncClient(base_url=server.url, timeout=20) as http:
        writes = [
            await http.post(
                "/auth/register", json={"email": "late@example.com", "password": "correct-horse-1"}
            ),
            await http.post("/auth/login", json={"email": account.email, "password": account.password}),
            await http.post("/api/threads", json={"title": "lost"}, headers=bearer),
        ]
        for response in writes:
            assert response.status_code == 503, (response.request.url, response.text)
            error = response.json()["error"]
            assert (error["code"], error["dependency"]) == ("service_unavailable", "database"), error
            assert "deleted or replaced" in error["message"], error
            assert str(database) not in error["message"], error  # the path is for operators only
        assert (await http.get("/health")).json()["checks"]["database"] == "failing"

    # A live socket's next message: an error frame and 1013, never 1011.
    await ws.send(json.dumps({"type": "user_message", "content": "still there?"}))
    frames = [await recv_json(ws, timeout=20)]
    while frames[-1]["type"] != "error" and len(frames) < 10:
        frames.append(await recv_json(ws, timeout=20))
    assert frames[-1].get("code") == "service_unavailable", frames
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(ws.recv(), 20)
    assert ws.close_code == 1013, (ws.close_code, ws.close_reason)

    assert not database.exists()  # no empty database was created in its place
    until(lambda: "was deleted or replaced" in server.log())
    lines = [line for line in server.log().splitlines() if "was deleted or replaced" in line]
    assert len(lines) == 1, lines  # once, however many requests saw it
    assert str(database) in lines[0]
    assert "no longer ready" in lines[0]
    assert "Traceback" not in server.log()

    # The restart names the real cause, with the command that fixes it.
    server.stop()
    output = start_fails(data_dir, "--demo-user")
    assert f"{database} does not exist" in output, output
    assert "tokenwise migrate" in output, output


async def test_a_replaced_database_file_is_refused(tmp_path: Path) -> None:
    """The path names another file (restored under the server, or swapped): as if deleted."""
    path = tmp_path / "tokenwise.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    database = Database(f"sqlite+aiosqlite:///{path}")
    try:
        await database.check_ready()
        shutil.copy(path, tmp_path / "copy.db")
        (tmp_path / "copy.db").replace(path)  # same content, another inode
        with pytest.raises(ServiceUnavailable) as refused:
            async with database.session() as session:
                await session.execute(text("SELECT count(*) FROM users"))
        assert "deleted or replaced" in refused.value.message
        with pytest.raises(ServiceUnavailable) as unready:
            await database.check_ready()
        assert f"database file {path} was deleted or replaced" in unready.value.message
        assert "another file" in unready.value.message
    finally:
        await database.dispose()


async def test_a_free_space_minimum_above_the_free_space_makes_the_server_unready(
    tmp_path: Path, servers: list[Serve]
) -> None:
    """What a full disk looks like to readiness, on any machine: fewer free bytes than the minimum."""
    free = shutil.disk_usage(tmp_path).free
    server = Serve(tmp_path / "data", TOKENWISE_MIN_FREE_DISK_BYTES=str(free * 2))
    servers.append(server)
    check = database_check(server.ready())
    assert "TOKENWISE_MIN_FREE_DISK_BYTES" in check["message"], check
    assert str(tmp_path / "data" / "tokenwise.db") in check["message"], check
    assert httpx.get(f"{server.url}/health", timeout=10).status_code == 200  # alive, not ready


@pytest.mark.skipif(not CAN_MOUNT, reason="a real full disk needs root and mount namespaces (unshare -m)")
async def test_a_full_disk_and_a_read_only_filesystem_make_the_server_unready(
    tmp_path: Path, servers: list[Serve]
) -> None:
    data_dir = tmp_path / "data"
    server = Serve(data_dir, tmpfs_bytes=16 * MiB, TOKENWISE_MIN_FREE_DISK_BYTES=str(MiB))
    servers.append(server)
    assert server.ready().status_code == 200, server.ready().text
    account = await signup(server.url)
    bearer = {"Authorization": f"Bearer {account.access_token}"}

    server.inside('dd if=/dev/zero of="$0/filler" bs=64k')  # until the tmpfs is full
    check = database_check(server.ready())
    assert "bytes free" in check["message"], check
    assert str(data_dir / "tokenwise.db") in check["message"], check
    async with httpx.AsyncClient(base_url=server.url, timeout=20) as http:
        for title in ("a", "b", "c"):  # SQLite's disk full is 503 too, never 500
            response = await http.post("/api/threads", json={"title": title * 150}, headers=bearer)
            assert response.status_code in (201, 503), response.text
    server.inside('rm "$0/filler"')
    until(lambda: server.ready().status_code == 200)

    server.inside('mount --bind "$0" "$0" && mount -o remount,bind,ro "$0"')  # read-only, even for root
    check = database_check(server.ready())
    assert "not writable" in check["message"], check
    assert str(data_dir) in check["message"], check
    server.inside('umount "$0"')
    until(lambda: server.ready().status_code == 200)
    assert "Traceback" not in server.log()


def test_start_up_errors_name_their_cause(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    output = start_fails(missing, "--demo-user")
    assert f"data directory {missing} does not exist" in output, output

    empty = tmp_path / "empty"
    empty.mkdir()
    output = start_fails(empty, "--demo-user")
    assert f"{empty / 'tokenwise.db'} does not exist" in output, output
    assert "tokenwise migrate" in output, output
    assert not (empty / "tokenwise.db").exists()  # the failed start created no empty database

    (empty / "tokenwise.db").write_bytes(b"")  # a file, never migrated
    output = start_fails(empty, "--demo-user")
    assert "has no tables" in output, output
    assert "tokenwise migrate" in output, output

    (empty / "tokenwise.db").write_bytes(b"this is not a database" * 100)
    output = start_fails(empty)
    assert "cannot be read" in output, output


@pytest.mark.skipif(
    os.geteuid() == 0 and not CAN_MOUNT,
    reason="root writes through chmod; a read-only mount needs unshare -m",
)
def test_start_up_on_a_read_only_database_names_it(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    env = {**os.environ, "TOKENWISE_DATA_DIR": str(data_dir)}
    subprocess.run([*TOKENWISE, "migrate"], env=env, check=True, capture_output=True)
    serve = [*TOKENWISE, "serve", "--demo-user"]
    if CAN_MOUNT:
        script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'
        command = ["unshare", "-m", "sh", "-c", script, str(data_dir), *serve]
    else:
        (data_dir / "tokenwise.db").chmod(0o444)
        data_dir.chmod(0o555)
        command = serve
    try:
        env["TOKENWISE_PORT"] = str(free_port())
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
    finally:
        data_dir.chmod(0o755)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Traceback" not in output, output
    assert f"{data_dir / 'tokenwise.db'} is not writable" in output, output
