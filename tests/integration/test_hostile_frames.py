"""No client frame reaches 1011: fuzzed and hostile frames over a real server get an error frame.

The properties run over one connection per user (many frames each), so ten thousand frames take seconds.
After every batch a ping must be answered: the connection is still serving, whatever came before.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from support.clients import signup
from support.live import LiveServer, test_settings

TYPES = [
    "user_message",
    "chat_message",
    "message",
    "start_agent",
    "auth",
    "auth_refresh",
    "resume",
    "stop_agent",
    "get_thread_history",
    "diagnostics",
    "heartbeat",
    "nonsense",
]
FIELDS = ["content", "message", "text", "thread_id", "client_message_id", "run_id", "after_seq", "limit"]
FIELDS += ["token", "data", "payload", "type", "user_request"]
# ("ping" is left out: its pong marks the end of a batch.)
# Closes a client may cause on purpose; 1011 (a bug) never.
ALLOWED_CLOSES = {1000, 1008, 1009, 4401, 4429}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(
        test_settings(
            tmp_path_factory.mktemp("frames"),
            messages_per_second=100_000.0,
            message_burst=100_000,
            max_active_runs_per_user=1,
        )
    ).start()
    yield server
    server.stop()


class Client:
    """A synchronous chat connection that reconnects when a frame made the server close it."""

    def __init__(self, live: LiveServer) -> None:
        self.live = live
        self.token = asyncio.run(signup(live.url)).access_token
        self.closes: list[tuple[int, str]] = []
        self.ws = self._open()

    def _open(self) -> ClientConnection:
        ws = connect(
            self.live.ws_url, additional_headers={"Authorization": f"Bearer {self.token}"}, legacy=True
        )
        welcome = json.loads(ws.recv(timeout=10))
        assert welcome["type"] == "connection_established"
        return ws

    def send_and_sync(self, frames: list[str | bytes]) -> list[dict[str, Any]]:
        """Send the frames, then a ping; every frame received up to the pong (reconnect on a close)."""
        received: list[dict[str, Any]] = []
        try:
            for frame in frames:
                self.ws.send(frame)
            self.ws.send('{"type":"ping"}')
            while (answer := json.loads(self.ws.recv(timeout=20)))["type"] != "pong":
                received.append(answer)
        except ConnectionClosed as closed:
            code, reason = (closed.rcvd.code, closed.rcvd.reason) if closed.rcvd else (1006, "no close frame")
            self.closes.append((code, reason))
            self.ws = self._open()
        assert all(code != 1011 for code, _ in self.closes), self.closes
        assert all(code in ALLOWED_CLOSES for code, _ in self.closes), self.closes
        return received

    def close(self) -> None:
        self.ws.close()


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
frame_objects = st.fixed_dictionaries(
    {"type": st.sampled_from(TYPES) | st.integers() | st.none()},
    optional={name: json_values for name in FIELDS if name != "type"},
)
deep = st.builds(
    lambda depth, opener, typed: (
        ('{"type":"resume","run_id":' if typed else "") + opener * depth + ("}" if typed else "")
    ),
    st.integers(min_value=30, max_value=5000),
    st.sampled_from(["[", '{"a":', '[{"b":']),
    st.booleans(),
)
frame_texts = st.one_of(
    frame_objects.map(json.dumps),
    json_values.map(json.dumps),
    st.text(max_size=200),
    deep,
)


@pytest.fixture(scope="module")
def client(live: LiveServer) -> Iterator[Client]:
    one = Client(live)
    yield one
    one.close()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frame=frame_texts)
def test_any_frame_gets_an_error_frame_or_an_answer_never_1011(client: Client, frame: str) -> None:
    for answer in client.send_and_sync([frame]):
        assert answer.get("code") != "internal_error", answer


def _random_frame(rng: random.Random) -> str:
    choice = rng.random()
    if choice < 0.05:
        return rng.choice(["[", "{", '{"a":[']) * rng.randint(100, 3000)
    if choice < 0.1:
        return "".join(chr(rng.randint(0, 0x2FFF)) for _ in range(rng.randint(0, 60)))
    frame: dict[str, Any] = {"type": rng.choice(TYPES)}
    pool: list[Any] = [
        None,
        True,
        -1,
        0,
        2**63,
        2**64 + 1,
        -(2**63) - 1,
        1e308,
        "",
        "x" * 300,
        "a\u0000b",
        [],
        {},
        [[[]]],
        {"content": 5},
        "00000000-0000-0000-0000-000000000000",
    ]
    for name in rng.sample(FIELDS, rng.randint(0, 4)):
        frame[name] = rng.choice(pool)
    return json.dumps(frame)


@pytest.mark.slow
def test_ten_thousand_fuzzed_frames_close_nothing_with_1011(live: LiveServer) -> None:
    rng = random.Random(11)
    clients = [Client(live) for _ in range(4)]
    answers = 0
    for batch in range(200):
        who = clients[batch % len(clients)]
        for answer in who.send_and_sync([_random_frame(rng) for _ in range(50)]):
            answers += 1
            assert answer.get("code") != "internal_error", answer
    assert answers > 5000
    for one in clients:
        one.close()
        assert all(code != 1011 for code, _ in one.closes)


def _deep(depth: int = 970) -> str:
    return '{"type":"resume","run_id":' + "[" * depth + "]" * depth + "}"


def test_a_deeply_nested_frame_before_authentication_is_4401_not_1011(live: LiveServer) -> None:
    with connect(live.ws_url) as ws:
        ws.send(_deep())
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4401
    assert "nested deeper than" in closed.value.rcvd.reason


def test_a_deeply_nested_frame_is_invalid_json(client: Client) -> None:
    (answer,) = client.send_and_sync([_deep()])
    assert answer["code"] == "invalid_json"
    assert "nested deeper than 32 levels" in answer["message"]


@pytest.mark.parametrize("after_seq", [2**63, 2**64, -1])
def test_resume_after_seq_out_of_range_is_invalid_message(client: Client, after_seq: int) -> None:
    frame = json.dumps({"type": "resume", "run_id": "r", "after_seq": after_seq})
    (answer,) = client.send_and_sync([frame])
    assert answer["code"] == "invalid_message"
    assert answer["field"] == "after_seq"


def test_run_events_after_seq_out_of_range_is_422(live: LiveServer, client: Client) -> None:
    headers = {"Authorization": f"Bearer {client.token}"}
    for path in ("events", "stream"):
        response = httpx.get(
            f"{live.url}/api/runs/some-run/{path}", params={"after_seq": 2**63}, headers=headers, timeout=10
        )
        assert response.status_code == 422, response.text
        assert response.json()["error"]["field"] == "after_seq"
    response = httpx.get(
        f"{live.url}/api/runs/some-run/stream", headers={**headers, "Last-Event-ID": str(2**64)}, timeout=10
    )
    assert response.status_code == 422


def test_invalid_utf8_closes_with_1007_and_a_reason(client: Client, live: LiveServer) -> None:
    with connect(live.ws_url, additional_headers={"Authorization": f"Bearer {client.token}"}) as ws:
        ws.recv(timeout=10)
        ws.send(b'{"type":"ping","x":"\xff\xfe"}', text=True)
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (
        1007,
        "invalid_utf8: text frames must be UTF-8",
    )


def test_an_unmasked_frame_closes_with_1002_and_a_reason(client: Client, live: LiveServer) -> None:
    with connect(live.ws_url, additional_headers={"Authorization": f"Bearer {client.token}"}) as ws:
        ws.recv(timeout=10)
        raw: socket.socket = ws.socket
        raw.sendall(b"\x81\x02hi")  # a client frame must be masked
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1002
    assert closed.value.rcvd.reason
