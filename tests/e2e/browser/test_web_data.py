"""The "Data" dialog: the user's datasets renamed, given a model and deleted, API keys created (the
secret shown once) and revoked; the server agrees with what the page shows; it fits a phone."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Locator, Page, expect

from e2e.browser.webui import PASSWORD, sign_up, upload_via_api
from support.live import LiveServer

HEADER = "timestamp,request_id,{model}input_tokens,output_tokens\n"


def _csv(path: Path, ids: range, model: str | None) -> Path:
    """A small request log; with `model`, a model column too."""
    lines = [HEADER.format(model="model," if model else "")]
    cell = f"{model}," if model else ""
    for i in ids:
        lines.append(f"2025-03-0{1 + i % 3}T10:00:00Z,req-{i},{cell}{100 * i},{10 * i}\n")
    path.write_text("".join(lines))
    return path


def _api(base_url: str, email: str, path: str) -> Any:
    with httpx.Client(base_url=base_url, timeout=30) as http:
        token = http.post("/auth/login", json={"email": email, "password": PASSWORD}).json()["access_token"]
        response = http.get(path, headers={"Authorization": f"Bearer {token}"})
        response.raise_for_status()
        return response.json()


def _fact(item: Locator, name: str) -> Locator:
    """The value of one of a list item's facts ("rows", "model", "last-used", …)."""
    return item.locator(f".fact[data-fact={name}] dd")


def _open(page: Page) -> Locator:
    """Open the dialog from the keyboard; it starts at its title."""
    page.get_by_role("button", name="Data", exact=True).focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Data")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("heading", name="Data", exact=True)).to_be_focused()
    return dialog


def test_rename_set_the_model_and_delete_a_dataset(
    page: Page, server: LiveServer, tmp_path: Path, snap: Callable[..., Path]
) -> None:
    email = sign_up(page, server.url)
    upload_via_api(server.url, email, _csv(tmp_path / "with-model.csv", range(1, 4), "gpt-4o"))
    # Overlaps the first file by two request ids: those rows are skipped, two are kept.
    trace = upload_via_api(server.url, email, _csv(tmp_path / "trace.csv", range(2, 6), None))
    assert (trace["row_count"], trace["skipped_rows"]["total"], trace["model"]) == (2, 2, None)

    dialog = _open(page)
    item = dialog.locator(f"li[data-dataset-id='{trace['id']}']")
    expect(item.locator(".item-name")).to_have_text("trace.csv")
    expect(_fact(item, "rows")).to_contain_text("2")
    expect(_fact(item, "model")).to_contain_text("not named yet")
    expect(_fact(item, "period")).to_contain_text("2025")
    expect(_fact(item, "skipped")).to_contain_text("2 duplicate rows")
    expect(_fact(item, "format")).not_to_be_empty()
    other = dialog.locator("li[data-dataset-id]", has_text="with-model.csv")
    expect(_fact(other, "model")).to_contain_text("from the column")
    expect(other.get_by_role("button", name="Set the model of with-model.csv")).to_have_count(0)

    # Rename from the keyboard: an empty name is refused in plain words, then Enter saves.
    item.get_by_role("button", name="Rename trace.csv", exact=True).click()
    name = item.get_by_label("New name", exact=True)
    expect(name).to_be_focused()
    name.fill("   ")
    page.keyboard.press("Enter")
    expect(dialog.get_by_role("alert")).to_have_text("Give the dataset a name.")
    expect(name).to_be_focused()
    name.fill("March support bot")
    page.keyboard.press("Enter")
    expect(dialog.get_by_role("status").first).to_have_text("Renamed to “March support bot”.")
    expect(item.get_by_role("button", name="Rename March support bot", exact=True)).to_be_focused()
    assert _api(server.url, email, f"/api/datasets/{trace['id']}")["name"] == "March support bot"

    item.get_by_role("button", name="Set the model of March support bot", exact=True).click()
    model = item.get_by_label("Model of its rows", exact=True)
    expect(model).to_be_focused()
    model.fill("gpt-4o-mini")
    item.get_by_role("button", name="Save model", exact=True).click()
    expect(_fact(item, "model")).to_have_text("gpt-4o-mini")
    expect(item.get_by_role("button", name="Set the model of March support bot")).to_have_text("Change model")
    assert _api(server.url, email, f"/api/datasets/{trace['id']}")["model"] == "gpt-4o-mini"
    snap("data-dialog")

    # Delete asks first; "Keep it" keeps it, and has the focus so that Enter is the safe choice.
    item.get_by_role("button", name="Delete March support bot", exact=True).click()
    keep = item.get_by_role("button", name="Keep it", exact=True)
    expect(keep).to_be_focused()
    expect(item.get_by_role("group")).to_contain_text("its 2 rows")
    page.keyboard.press("Enter")
    expect(item.get_by_role("button", name="Delete March support bot", exact=True)).to_be_focused()
    assert len(_api(server.url, email, "/api/datasets")["datasets"]) == 2
    item.get_by_role("button", name="Delete March support bot", exact=True).click()
    item.get_by_role("button", name="Delete for good", exact=True).click()
    expect(item).to_have_count(0)
    expect(dialog.get_by_role("status").first).to_have_text("Deleted “March support bot”.")
    assert [d["name"] for d in _api(server.url, email, "/api/datasets")["datasets"]] == ["with-model.csv"]

    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(page.get_by_role("button", name="Data", exact=True)).to_be_focused()


def test_create_a_key_see_its_secret_once_then_revoke_it(page: Page, server: LiveServer) -> None:
    email = sign_up(page, server.url)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    dialog = _open(page)
    expect(dialog.locator("#keys-title + .muted ~ .data-body")).to_contain_text("No API keys yet.")

    create = dialog.get_by_role("button", name="Create key", exact=True)
    create.click()
    expect(dialog.get_by_role("alert")).to_have_text("Name the key, e.g. after the machine that sends it.")
    expect(dialog.get_by_label("Key name", exact=True)).to_be_focused()
    page.keyboard.type("nightly exporter")
    dialog.get_by_label("read: read the datasets").check()
    create.click()

    secret_field = dialog.get_by_role("textbox", name="Secret of “nightly exporter”")
    expect(secret_field).to_be_focused()
    secret = secret_field.input_value()
    assert secret.startswith("tw_")
    assert len(secret) > 40
    dialog.get_by_role("button", name="Copy", exact=True).click()
    expect(dialog.get_by_text("Copied.", exact=True)).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == secret

    [key] = _api(server.url, email, "/api/keys")["keys"]
    assert "secret" not in key
    assert key["scopes"] == ["ingest", "read"]
    assert secret.startswith(key["prefix"])
    item = dialog.locator(f"li[data-key-id='{key['id']}']")
    expect(item.locator(".item-name")).to_have_text("nightly exporter")
    expect(_fact(item, "prefix")).to_have_text(f"{key['prefix']}…")
    expect(_fact(item, "scopes")).to_contain_text("ingest, read")
    expect(_fact(item, "last-used")).to_contain_text("never")
    expect(item).not_to_contain_text(secret)

    # Done: the secret is gone from the page, and closing and opening again does not bring it back.
    dialog.get_by_role("button", name="Done", exact=True).click()
    expect(item.get_by_role("button", name="Revoke nightly exporter", exact=True)).to_be_focused()
    assert secret not in dialog.inner_html()
    page.keyboard.press("Escape")
    dialog = _open(page)
    expect(_fact(item, "prefix")).to_contain_text(key["prefix"])
    assert secret not in page.content()

    item.get_by_role("button", name="Revoke nightly exporter", exact=True).click()
    expect(item.get_by_role("button", name="Keep it", exact=True)).to_be_focused()
    item.get_by_role("button", name="Revoke for good", exact=True).click()
    expect(dialog.locator("li[data-key-id]")).to_have_count(0)
    expect(dialog.get_by_role("status").last).to_have_text("Revoked “nightly exporter”.")
    assert _api(server.url, email, "/api/keys")["keys"] == []
    with httpx.Client(base_url=server.url, timeout=30) as http:
        refused = http.get("/api/datasets", headers={"Authorization": f"Bearer {secret}"})
    assert refused.status_code == 401


def test_the_dialog_fits_a_phone(
    page: Page, server: LiveServer, tmp_path: Path, snap: Callable[..., Path]
) -> None:
    page.set_viewport_size({"width": 375, "height": 812})
    email = sign_up(page, server.url)
    long_name = "a-usage-export-with-a-very-long-file-name-that-does-not-break-by-itself.csv"
    upload_via_api(server.url, email, _csv(tmp_path / long_name, range(1, 4), None))
    # The header, with Data beside Prices, fits too.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    expect(page.get_by_text("Connected", exact=True)).to_be_visible()

    dialog = _open(page)
    dialog.get_by_label("Key name", exact=True).fill("phone")
    dialog.get_by_role("button", name="Create key", exact=True).click()
    expect(dialog.get_by_role("button", name="Copy", exact=True)).to_be_visible()
    dialog.get_by_role("button", name=f"Rename {long_name}", exact=True).click()
    expect(dialog.get_by_label("New name", exact=True)).to_be_visible()
    for box in (dialog.locator("li[data-dataset-id]"), dialog.get_by_role("button", name="Copy", exact=True)):
        right = box.evaluate("el => el.getBoundingClientRect().right")
        assert right <= 375, right
    assert dialog.evaluate("el => el.scrollWidth <= el.clientWidth")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    snap("data-dialog-narrow")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
