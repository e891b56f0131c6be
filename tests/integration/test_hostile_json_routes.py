"""No JSON body reaches a 500: hostile bodies to every JSON route of a real server get a JSON 4xx.

The routes are the server's own: every operation of its `/openapi.json` with a JSON request body, plus
the agent routes, which read their body themselves. Bodies are sent over real HTTP (httpx) with a valid
Bearer token: random JSON, the route's own fields with values of the wrong type, huge integers, NaN,
deep nesting, invalid UTF-8, truncated JSON, nothing at all.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.clients import Account, signup
from support.live import LiveServer, test_settings
from tokenwise.jsonlimits import MAX_DEPTH, too_deep

# Routes that read their JSON body themselves, so the OpenAPI schema has no request body for them.
AGENT_ROUTES = [("POST", "/api/agents/execute", ["message", "thread_id", "agent", "client_message_id"])]
AGENT_ROUTES += [("POST", "/api/agents/triage", ["message", "content", "text", "thread_id"])]


class Target:
    """The live server, one signed-in user, and ids for the routes' path parameters."""

    def __init__(self, live: LiveServer, account: Account) -> None:
        self.live = live
        self.http = httpx.Client(
            base_url=live.url, timeout=30, headers={"Authorization": f"Bearer {account.access_token}"}
        )
        thread = self.http.post("/api/threads", json={"title": "hostile"})
        assert thread.status_code == 201, thread.text
        events = self.http.post(
            "/api/workload/events",
            json={
                "records": [
                    {
                        "timestamp": "2025-01-01T00:00:00Z",
                        "model": "gpt-4o",
                        "input_tokens": 10,
                        "output_tokens": 5,
                    }
                ]
            },
        )
        assert events.status_code == 201, events.text
        self.params = {"thread_id": thread.json()["id"], "dataset_id": events.json()["dataset_id"]}
        self.routes = self._routes()

    def _routes(self) -> list[tuple[str, str, list[str]]]:
        spec = self.http.get("/openapi.json").json()
        schemas = spec["components"]["schemas"]
        routes = list(AGENT_ROUTES)
        for path, operations in spec["paths"].items():
            for method, operation in operations.items():
                content = operation.get("requestBody", {}).get("content", {})
                if "application/json" not in content:
                    continue
                schema = content["application/json"]["schema"]
                if "$ref" in schema:
                    schema = schemas[schema["$ref"].rsplit("/", 1)[1]]
                routes.append((method.upper(), path, sorted(schema.get("properties", {}))))
        return routes

    def url(self, path: str, real_ids: bool) -> str:
        def fill(match: re.Match[str]) -> str:
            return self.params.get(match.group(1), "x") if real_ids else uuid.uuid4().hex

        return re.sub(r"\{(\w+)\}", fill, path)

    def send(self, method: str, path: str, body: bytes, content_type: str | None) -> httpx.Response:
        headers = {"Content-Type": content_type} if content_type else {}
        return self.http.request(method, path, content=body, headers=headers)


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    live = LiveServer(
        test_settings(
            tmp_path_factory.mktemp("hostile-json"),
            max_active_runs_per_user=1,  # bodies that happen to be valid start runs: keep them cheap
            connector_interval_s=0,  # a connector a valid body creates is never pulled
            login_per_minute_per_address=100_000,
            login_per_minute_per_account=100_000,
            register_burst_per_address=100_000,
            register_per_hour_per_address=100_000,
            refresh_per_minute_per_address=100_000,
        )
    ).start()
    account = asyncio.run(signup(live.url))
    target = Target(live, account)
    yield target
    target.http.close()
    live.stop()


def check(response: httpx.Response, what: str) -> None:
    """Never a 5xx; every 4xx is a JSON `{"error": {"code", "message"}}`."""
    assert response.status_code < 500, f"{what}: {response.status_code} {response.text[:500]}"
    if response.status_code >= 400:
        body = response.json()
        assert isinstance(body["error"]["code"], str), f"{what}: {body}"
        assert isinstance(body["error"]["message"], str), f"{what}: {body}"


def deep(levels: int, opener: str = "[") -> bytes:
    closer = {"[": "]", "{": "}"}[opener]
    if opener == "{":
        return ('{"a":' * levels + "1" + "}" * levels).encode()
    return (opener * levels + closer * levels).encode()


HOSTILE_BODIES: dict[str, bytes] = {
    "10,000 nested arrays": deep(10_000),
    "10,000 nested objects": deep(10_000, "{"),
    "990 nested arrays": deep(990),
    "100 nested arrays": deep(100),
    "an unclosed array 5,000 deep": b"[" * 5000,
    "invalid UTF-8": b'{"email": "\xff\xfe\xfa", "title": "\xc3\x28"}',
    "a lone surrogate escape": b'{"title": "\\ud800", "message": "\\udfff", "email": "\\ud83d"}',
    "a 5,000-digit integer": b'{"limit": ' + b"9" * 5000 + b"}",
    "a 4,000-digit integer": b"[" + b"9" * 4000 + b"]",
    "NaN and Infinity": b'{"input": NaN, "output": Infinity, "included": -Infinity}',
    "empty": b"",
    "whitespace": b" \n\t ",
    "null": b"null",
    "a string": b'"hello"',
    "truncated": b'{"email": "a@b.c", "pass',
    "a BOM": b'\xef\xbb\xbf{"title": "x"}',
    "NUL bytes": b'{"title": "a\x00b"}',
}


@pytest.mark.parametrize("name", sorted(HOSTILE_BODIES))
def test_hostile_bodies_get_a_json_4xx_on_every_route(target: Target, name: str) -> None:
    body = HOSTILE_BODIES[name]
    for method, path, _fields in target.routes:
        check(
            target.send(method, target.url(path, True), body, "application/json"), f"{name} {method} {path}"
        )


def test_ten_thousand_nested_arrays_are_named(target: Target) -> None:
    """A body nested 10,000 levels deep is refused with an error that says so, on every JSON route."""
    for method, path, _fields in target.routes:
        response = target.send(method, target.url(path, True), deep(10_000), "application/json")
        assert response.status_code == 422, (method, path, response.status_code, response.text)
        error = response.json()["error"]
        assert error["code"] == "invalid_json", (method, path, error)
        assert "not valid JSON" in error["message"], (method, path, error)
        assert f"nested deeper than {MAX_DEPTH} levels" in error["message"], (method, path, error)


def nested_in(levels: int, body: dict[str, object], key: str) -> bytes:
    """`body` with `key` set to arrays `levels` deep in all (the body itself is the first level)."""
    text = json.dumps({**body, key: None})
    return text.replace("null", "[" * (levels - 1) + "1" + "]" * (levels - 1)).encode()


EVENT = {"timestamp": "2025-01-01T00:00:00Z", "model": "gpt-4o", "input_tokens": 1, "output_tokens": 1}
# (route, a body the route takes, a key to nest in it) -- one route of each limit (auth, JSON, events)
DEPTH_ROUTES = [
    pytest.param(path, body, "extra", id=path)
    for path, body in [
        ("/api/threads", {"title": "depth"}),
        ("/api/workload/events", {"records": [EVENT]}),
        ("/auth/login", {"email": "nobody@example.com", "password": "not-the-password"}),
    ]
]


@pytest.mark.parametrize(("path", "body", "key"), DEPTH_ROUTES)
def test_one_level_over_the_limit_is_refused_before_parsing(
    target: Target, path: str, body: dict[str, object], key: str
) -> None:
    levels = MAX_DEPTH + 1
    assert json.loads(nested_in(levels, body, key))  # valid JSON: only its depth is at fault
    response = target.send("POST", path, nested_in(levels, body, key), "application/json")
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error == {
        "code": "invalid_json",
        "message": f"the request body is not valid JSON: it is nested deeper than {MAX_DEPTH} levels",
        "field": None,
        "max_depth": MAX_DEPTH,
    }


@pytest.mark.parametrize(("path", "body", "key"), DEPTH_ROUTES)
def test_sixty_levels_are_not_refused_for_depth(
    target: Target, path: str, body: dict[str, object], key: str
) -> None:
    response = target.send("POST", path, nested_in(60, body, key), "application/json")
    # The route's own answer: a thread and a batch are stored (the extra field is ignored), a login fails.
    expected = {"/api/threads": 201, "/api/workload/events": 201, "/auth/login": 401}[path]
    assert response.status_code == expected, response.text


@pytest.mark.parametrize(
    "content_type", [None, "application/json; charset=utf-8", "application/merge-patch+json"]
)
def test_every_json_content_type_is_scanned(target: Target, content_type: str | None) -> None:
    body = nested_in(MAX_DEPTH + 1, {"title": "depth"}, "extra")
    response = target.send("POST", "/api/threads", body, content_type)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["max_depth"] == MAX_DEPTH


def test_brackets_in_strings_are_not_levels(target: Target) -> None:
    title = '[{\\\\\\"' * 30  # JSON `[{\\\"`: brackets, an escaped backslash, an escaped quote
    # 64 levels outside the string (the object and 63 arrays): at the limit, so 1 more would be refused.
    body = b'{"title": "' + title.encode() + b'", "extra": ' + b"[" * 63 + b"]" * 63 + b"}"
    assert json.loads(body)["title"].count("[") == 30
    response = target.send("POST", "/api/threads", body, "application/json")
    assert response.status_code == 201, response.text
    assert response.json()["title"] == json.loads(body)["title"]


def test_non_json_bodies_are_not_scanned(target: Target) -> None:
    """A deep body as text/plain reaches the route (FastAPI does not parse it), which refuses it itself."""
    body = nested_in(MAX_DEPTH + 1, {"title": "depth"}, "extra")
    response = target.send("POST", "/api/threads", body, "text/plain")
    assert response.status_code == 422, response.text
    assert "max_depth" not in response.json()["error"], response.text


# Strings full of what the scan must not miscount: brackets, quotes and backslashes (escaped by dumps).
TRICKY = st.none() | st.integers() | st.text(alphabet='[]{}"\\ab\u00e9', max_size=6)
NESTED = st.recursive(
    TRICKY,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(TRICKY.map(str), children, max_size=3),
    max_leaves=30,
)


def depth_of(value: object) -> int:
    if isinstance(value, list):
        return 1 + max(map(depth_of, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(depth_of, value.values()), default=0)
    return 0


@settings(max_examples=300, deadline=None, database=None)
@given(value=NESTED)
def test_property_the_scan_agrees_with_the_parser(value: object) -> None:
    text = json.dumps(value, ensure_ascii=False)
    depth = depth_of(value)
    for limit in {max(depth - 1, 0), depth}:
        assert too_deep(text.encode(), limit) is (depth > limit), (text, limit)
        assert too_deep(text, limit) is (depth > limit), (text, limit)


def test_invalid_utf8_is_named(target: Target) -> None:
    response = target.send("POST", "/api/threads", b'{"title": "\xff\xfe"}', "application/json")
    assert response.status_code == 422, response.text
    assert "UTF-8" in response.json()["error"]["message"]


# ---- the property -------------------------------------------------------------------------------------

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**63 - 2, max_value=2**70)
    | st.integers(min_value=-(2**70), max_value=-(2**63) + 2)
    | st.floats()  # NaN and ±Infinity too: json.dumps writes them, and Python's json reads them
    | st.text(max_size=40)
    | st.sampled_from(["", " ", "a@b.c", "x" * 300, "\u0000", "\ud7ff", "null", "0", "-1", "1e309"])
)
# Keys nested values use: the fields of every body schema, and the columns of a usage record.
KEYS = ["models", "input", "output", "cached_input", "batch_discount", "records", "scopes", "kind"]
KEYS += ["timestamp", "ts", "model", "input_tokens", "output_tokens", "cost", "user", "request_id"]
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
RECORD = st.dictionaries(st.sampled_from(KEYS[8:]), SCALARS | JSON_VALUES, max_size=6)


@st.composite
def bodies(draw: st.DrawFn, fields: list[str]) -> tuple[bytes, str | None]:
    """One hostile body for a route with these fields, and its Content-Type."""
    kind = draw(st.sampled_from(["fields", "fields", "fields", "records", "json", "deep", "bytes", "number"]))
    if kind == "records":  # usage records with hostile values: they reach the usage parser
        timestamp = st.sampled_from(["2025-01-01T00:00:00Z", "1735689600", "not a time", "9999-99-99"])
        records = st.lists(
            st.fixed_dictionaries({"timestamp": timestamp | SCALARS}, optional={}).flatmap(
                lambda base: RECORD.map(lambda record: {**base, **record})
            ),
            max_size=5,
        )
        body = json.dumps({"records": draw(records), "model": draw(SCALARS)}).encode()
    elif kind == "fields":  # the route's own field names (and some others) with values of any type
        keys = (
            st.sampled_from([*fields, "records", "scopes", "kind", "prices", "mapping"])
            if fields
            else st.text()
        )
        value = draw(st.dictionaries(keys, JSON_VALUES, max_size=5))
        body = json.dumps(value).encode()
    elif kind == "json":
        body = json.dumps(draw(JSON_VALUES)).encode()
    elif kind == "deep":
        levels = draw(st.integers(min_value=30, max_value=3000))
        inner = json.dumps(draw(SCALARS)).encode()
        key = draw(st.sampled_from(fields or ["x"])).encode()
        prefix = b'{"' + key + b'": ' if draw(st.booleans()) else b""
        body = prefix + b"[" * levels + inner + b"]" * levels + (b"}" if prefix else b"")
    elif kind == "number":
        digits = draw(st.integers(min_value=18, max_value=6000))
        key = draw(st.sampled_from(fields or ["x"])).encode()
        body = b'{"' + key + b'": ' + b"9" * digits + b"}"
    else:
        body = draw(st.binary(max_size=200))
    content_type = draw(
        st.sampled_from(["application/json"] * 6 + [None, "text/plain", "application/x-www-form-urlencoded"])
    )
    return body, content_type


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)
@given(data=st.data())
def test_property_no_body_makes_any_json_route_fail(target: Target, data: st.DataObject) -> None:
    method, path, fields = data.draw(st.sampled_from(target.routes), label="route")
    body, content_type = data.draw(bodies(fields), label="body")
    real_ids = data.draw(st.booleans(), label="real ids")
    response = target.send(method, target.url(path, real_ids), body, content_type)
    check(response, f"{method} {path} {content_type} {body[:200]!r}")
