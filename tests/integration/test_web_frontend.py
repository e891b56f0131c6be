"""The web app's files over HTTP: served at / with a strict CSP, cached correctly, shipped in the wheel."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from support.live import LiveServer
from tokenwise.app import create_app
from tokenwise.config import Settings
from tokenwise.web.frontend import STATIC_DIR

REPO = Path(__file__).resolve().parents[2]
THREAD = "6f58aaeb-d13f-4924-8766-26258e47c3f6"


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def test_the_page_is_served_at_root_and_at_thread_urls_with_a_strict_policy(server: LiveServer) -> None:
    for path in ("/", f"/threads/{THREAD}"):
        response = httpx.get(f"{server.url}{path}")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        assert response.headers["cache-control"] == "no-cache"
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy
        assert "style-src 'self'" in policy
        assert "unsafe-inline" not in policy
        assert "unsafe-eval" not in policy
        assert "frame-ancestors 'none'" in policy
        assert response.headers["x-content-type-options"] == "nosniff"
        assert '<script type="module" src="/static/js/main.js">' in response.text


def test_the_page_has_nothing_inline() -> None:
    parser = _Tags()
    parser.feed((STATIC_DIR / "index.html").read_text())
    for tag, attrs in parser.tags:
        assert tag != "style"
        assert "style" not in attrs, tag
        assert not [name for name in attrs if name.startswith("on")], tag
        if tag == "script":
            assert attrs.get("src"), "inline script"
    for module in (STATIC_DIR / "js").glob("*.js"):
        text = module.read_text()
        # Markup only ever comes from DOMPurify as a DocumentFragment, never a string into the DOM.
        assert not re.search(r"\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML|document\.write", text), module
        assert "eval(" not in text, module
        assert "new Function" not in text, module


def test_every_file_the_page_loads_exists() -> None:
    index = (STATIC_DIR / "index.html").read_text()
    for ref in re.findall(r'(?:src|href)="/static/([^"]+)"', index):
        assert (STATIC_DIR / ref).is_file(), ref
    for module in (STATIC_DIR / "js").glob("*.js"):
        for ref in re.findall(r'from\s+"(\.{1,2}/[^"]+)"', module.read_text()):
            assert (module.parent / ref).resolve().is_file(), f"{module.name} imports {ref}"


def test_app_files_are_revalidated_and_vendored_files_cached_for_a_year(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url) as http:
        app_js = http.get("/static/js/main.js")
        assert app_js.status_code == 200
        assert "javascript" in app_js.headers["content-type"]
        assert app_js.headers["cache-control"] == "no-cache"
        again = http.get("/static/js/main.js", headers={"If-None-Match": app_js.headers["etag"]})
        assert again.status_code == 304
        assert again.headers["cache-control"] == "no-cache"
        for vendored in ("marked-18.2.1/marked.esm.js", "dompurify-3.4.18/purify.es.mjs"):
            response = http.get(f"/static/vendor/{vendored}")
            assert response.status_code == 200
            assert "javascript" in response.headers["content-type"]
            assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert http.get("/static/app.css").headers["content-security-policy"]


def test_unknown_paths_keep_their_json_errors(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url) as http:
        for path in (
            "/api/nothing-here",
            "/static/nothing.js",
            "/static/../config.py",
            "/static/vendor",
            "/x",
        ):
            response = http.get(path)
            assert response.status_code == 404, path
            assert response.json()["error"]["code"] == "not_found", path
        assert http.post("/api/nothing-here").status_code == 404


def test_only_processes_that_serve_the_api_serve_the_web_app(tmp_path: Path) -> None:
    def paths(role: str) -> set[str]:
        settings = Settings(data_dir=tmp_path, role=role, auth_url="http://127.0.0.1:1")
        return {getattr(route, "path", "") for route in create_app(settings).routes}

    assert {"/", "/threads/{thread_id}", "/static"} <= paths("all")
    assert {"/", "/threads/{thread_id}", "/static"} <= paths("api")
    assert not {"/", "/static"} & paths("auth")


@pytest.mark.slow
def test_a_built_wheel_ships_and_serves_the_web_app(tmp_path: Path) -> None:
    """A non-editable install gets every static file (package-data `static/**/*`) and finds them."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "-w", "dist", "."], cwd=source, check=True, capture_output=True
    )
    [wheel] = (source / "dist").glob("tokenwise-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        f"tokenwise/static/{path.relative_to(STATIC_DIR).as_posix()}"
        for path in STATIC_DIR.rglob("*")
        if path.is_file()
    }
    assert "tokenwise/static/index.html" in expected
    assert "tokenwise/static/vendor/marked-18.2.1/LICENSE" in expected
    assert expected <= shipped, sorted(expected - shipped)

    # Installed (not editable), the app serves from the installed copy.
    target = tmp_path / "site"
    subprocess.run(
        [*pip, "install", "--no-deps", "--target", str(target), str(wheel)], check=True, capture_output=True
    )
    probe = "from tokenwise.web.frontend import STATIC_DIR; print(STATIC_DIR / 'index.html')"
    found = subprocess.run(
        [sys.executable, "-c", probe],
        env={"PYTHONPATH": str(target)},
        check=True,
        capture_output=True,
        text=True,
    )
    index = Path(found.stdout.strip())
    assert index.is_file()
    assert index.is_relative_to(target)
