"""Client frames: every accepted spelling parses to the same command; mistakes name their field."""

from __future__ import annotations

import json

import pytest

from tokenwise.session import frames
from tokenwise.session.frames import ProtocolError, parse_frame


@pytest.mark.parametrize("kind", frames.MESSAGE_TYPES)
@pytest.mark.parametrize("key", frames.TEXT_KEYS)
@pytest.mark.parametrize("nest", [None, "payload", "data"])
def test_every_message_spelling_is_a_user_message(kind: str, key: str, nest: str | None) -> None:
    fields = {key: "  cut spend  ", "thread_id": "t-1", "client_message_id": "c-1"}
    raw = {"type": kind, **fields} if nest is None else {"type": kind, nest: fields}
    frame = parse_frame(json.dumps(raw))
    assert frame == frames.UserMessage(content="cut spend", thread_id="t-1", client_message_id="c-1")


def test_the_replaced_platforms_dialect_is_accepted() -> None:
    assert {"execute_agent", "EXECUTE_AGENT", "agent_request", "agent", "user_input", "user", "chat"} <= set(
        frames.MESSAGE_TYPES
    )
    frame = parse_frame(
        json.dumps(
            {"type": "EXECUTE_AGENT", "payload": {"request": "cut spend", "thread_id": "crm:42_a.b-c"}}
        )
    )
    assert frame == frames.UserMessage(content="cut spend", thread_id="crm:42_a.b-c")
    # A run id at either place, too.
    assert parse_frame('{"type": "stop_agent", "payload": {"run_id": "r"}}') == frames.StopAgent(run_id="r")
    assert parse_frame('{"type": "heartbeat"}') == frames.Heartbeat()


@pytest.mark.parametrize("thread_id", ["", "has space", "x" * 129, "slash/ed", "ünïcode", "line\n"])
def test_a_thread_id_a_client_may_not_choose_is_refused(thread_id: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_frame(json.dumps({"type": "chat", "message": "x", "thread_id": thread_id}))
    assert (caught.value.code, caught.value.field) == ("invalid_message", "thread_id")


def test_the_longest_thread_id_a_client_may_choose() -> None:
    frame = parse_frame(json.dumps({"type": "user", "text": "x", "data": {"thread_id": "t" * 128}}))
    assert isinstance(frame, frames.UserMessage)
    assert frame.thread_id == "t" * 128


def test_top_level_fields_win_over_nested_ones() -> None:
    frame = parse_frame(
        json.dumps({"type": "user_message", "content": "top", "payload": {"content": "inner"}})
    )
    assert isinstance(frame, frames.UserMessage)
    assert frame.content == "top"


@pytest.mark.parametrize(
    ("text", "code", "field"),
    [
        ("{not json", "invalid_json", None),
        ("[1, 2]", "invalid_message", "type"),
        ('{"content": "x"}', "invalid_message", "type"),
        ('{"type": "teleport"}', "unknown_type", "type"),
        ('{"type": "user_message"}', "invalid_message", "content"),
        ('{"type": "user_message", "content": "   "}', "invalid_message", "content"),
        ('{"type": "user_message", "content": "x", "thread_id": 7}', "invalid_message", "thread_id"),
        ('{"type": "resume", "after_seq": 3}', "invalid_message", "run_id"),
        ('{"type": "resume", "run_id": "r", "after_seq": -1}', "invalid_message", "after_seq"),
        ('{"type": "get_thread_history", "thread_id": "t", "limit": 0}', "invalid_message", "limit"),
        ('{"type": "auth"}', "invalid_message", "token"),
    ],
)
def test_mistakes_are_named(text: str, code: str, field: str | None) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_frame(text)
    assert caught.value.code == code
    assert caught.value.field == field
    frame = caught.value.frame()
    assert frame["type"] == "error"
    assert frame["code"] == code


def test_content_longer_than_the_limit_is_refused() -> None:
    text = json.dumps({"type": "user_message", "content": "x" * (frames.MAX_CONTENT_CHARS + 1)})
    with pytest.raises(ProtocolError) as caught:
        parse_frame(text)
    assert caught.value.field == "content"


def test_control_frames_parse() -> None:
    assert parse_frame('{"type": "ping"}') == frames.Ping()
    assert parse_frame('{"type": "resume", "run_id": "r", "after_seq": 4}') == frames.Resume(
        run_id="r", after_seq=4
    )
    assert parse_frame('{"type": "stop_agent", "data": {"run_id": "r"}}') == frames.StopAgent(run_id="r")
    assert parse_frame('{"type": "auth_refresh", "token": "t"}') == frames.AuthRefresh(token="t")
    history = parse_frame('{"type": "get_thread_history", "thread_id": "t"}')
    assert history == frames.GetThreadHistory(thread_id="t", limit=50)
