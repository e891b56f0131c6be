"""The Data dialog's connectors and dataset choice: a connector added against a local stand-in of the OpenAI
admin API (its wire format and paging), synced, its status, rows and last error shown, deleted; a dataset
left out of the questions with its checkbox, and the next answer saying so. The server agrees with what the
page shows, and the admin key never appears in the page after it was sent."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Locator, Page, expect

from e2e.browser.webui import PASSWORD, ask, sign_up, upload_via_api, wait_finished
from support import openai_admin_server as openai
from support.live import LiveServer
from support.report_server import DAY, midnight


@pytest.fixture
def stand_in() -> Iterator[openai.OpenAIAdminServer]:
    api = openai.OpenAIAdminServer(f"sk-admin-{secrets.token_urlsafe(24)}", page_size=2).start()
    today = midnight(datetime.now(UTC))
    for d in range(1, 4):
        api.cost_days[today - d * DAY] = [
            openai.cost_result("gpt-4o, input", "proj_a", 1.25 * d),
            openai.cost_result("gpt-4o, output", "proj_a", 3.0 + d),
        ]
    yield api
    api.stop()


def _api(base_url: str, email: str, path: str) -> Any:
    with httpx.Client(base_url=base_url, timeout=30) as http:
        token = http.post("/auth/login", json={"email": email, "password": PASSWORD}).json()["access_token"]
        response = http.get(path, headers={"Authorization": f"Bearer {token}"})
        response.raise_for_status()
        return response.json()


def _fact(item: Locator, name: str) -> Locator:
    return item.locator(f".fact[data-fact={name}] dd")


def _open(page: Page) -> Locator:
    page.get_by_role("button", name="Data", exact=True).click()
    dialog = page.get_by_role("dialog", name="Data")
    expect(dialog).to_be_visible()
    return dialog


def _log(path: Path, prefix: str, cost: float) -> Path:
    lines = ["timestamp,request_id,model,input_tokens,output_tokens,cost_usd\n"]
    lines += [
        f"2025-03-0{1 + i},{prefix}-{i},gpt-4o,{100 * (i + 1)},{10 * (i + 1)},{cost}\n" for i in range(3)
    ]
    path.write_text("".join(lines))
    return path


def test_add_sync_and_delete_a_connector(
    page: Page, server: LiveServer, stand_in: openai.OpenAIAdminServer, snap: Callable[..., Path]
) -> None:
    email = sign_up(page, server.url)
    dialog = _open(page)
    section = dialog.get_by_role("region", name="Connectors")
    expect(section).to_contain_text("No connectors yet.")

    # Nothing is sent without a name and a key; the refusals say so in plain words.
    add = section.get_by_role("button", name="Add connector", exact=True)
    add.click()
    expect(section.get_by_role("alert")).to_have_text(
        "Name the connector, e.g. after the organization it reads."
    )
    expect(section.get_by_label("Connector name", exact=True)).to_be_focused()
    section.get_by_label("Report", exact=True).select_option("openai_costs")
    section.get_by_label("Connector name", exact=True).fill("Org costs")
    add.click()
    expect(section.get_by_role("alert")).to_have_text("Paste the organization's admin key.")
    key = section.get_by_label("Admin key", exact=True)
    expect(key).to_be_focused()
    assert key.get_attribute("type") == "password"
    key.fill(stand_in.admin_key)
    section.get_by_label("API base URL (optional)", exact=True).fill(stand_in.url)
    add.click()

    [created] = _api(server.url, email, "/api/connectors")["connectors"]
    item = section.locator(f"li[data-connector-id='{created['id']}']")
    expect(item.locator(".item-name")).to_have_text("Org costs")
    expect(_fact(item, "status")).to_have_text("not synced yet")
    expect(_fact(item, "last-sync")).to_have_text("never")
    expect(_fact(item, "kind")).to_have_text("OpenAI costs")
    sync = item.get_by_role("button", name="Sync Org costs now", exact=True)
    expect(sync).to_be_focused()
    expect(key).to_have_value("")  # the form is cleared: the key is not kept in the page
    assert stand_in.admin_key not in page.content()

    sync.click()
    expect(item).to_have_attribute("data-status", "ok")
    expect(_fact(item, "status")).to_have_text("synced")
    expect(_fact(item, "rows")).to_have_text("6")
    expect(_fact(item, "last-sync")).not_to_have_text("never")
    expect(section.get_by_role("status")).to_have_text("Synced “Org costs”: 6 rows.")
    assert len(stand_in.requests) >= 2  # it paged, two buckets a page
    [synced] = _api(server.url, email, "/api/connectors")["connectors"]
    assert (synced["status"], synced["rows_imported"]) == ("ok", 6)
    # The connector's dataset appears in the list of datasets.
    datasets = dialog.get_by_role("region", name="Datasets")
    dataset = datasets.locator(f"li[data-dataset-id='{synced['dataset_id']}']")
    expect(dataset.locator(".item-name")).to_have_text("Org costs")
    expect(_fact(dataset, "grain")).to_contain_text("time buckets")
    snap("data-connectors")

    # A key the provider refuses: the status and the last error say so; the key is never shown.
    wrong = f"sk-admin-{secrets.token_urlsafe(24)}"
    section.get_by_label("Report", exact=True).select_option("openai_usage")
    section.get_by_label("Connector name", exact=True).fill("Wrong key")
    section.get_by_label("Admin key", exact=True).fill(wrong)
    section.get_by_label("API base URL (optional)", exact=True).fill(stand_in.url)
    add.click()
    bad = section.locator("li[data-connector-id]", has_text="Wrong key")
    bad.get_by_role("button", name="Sync Wrong key now", exact=True).click()
    expect(bad).to_have_attribute("data-status", "error")
    expect(_fact(bad, "status")).to_have_text("failed")
    expect(bad.locator("[data-fact=last-error]")).to_contain_text("the admin key was refused (HTTP 401")
    expect(section.get_by_role("alert")).to_contain_text("The sync of “Wrong key” failed")
    assert wrong not in page.content()
    assert stand_in.admin_key not in page.content()

    # Delete asks first; then the connector and its dataset are gone.
    item.get_by_role("button", name="Delete Org costs", exact=True).click()
    expect(item.get_by_role("button", name="Keep it", exact=True)).to_be_focused()
    item.get_by_role("button", name="Delete for good", exact=True).click()
    expect(item).to_have_count(0)
    expect(dataset).to_have_count(0)
    assert [c["name"] for c in _api(server.url, email, "/api/connectors")["connectors"]] == ["Wrong key"]
    with httpx.Client(base_url=server.url, timeout=30) as http:
        token = http.post("/auth/login", json={"email": email, "password": PASSWORD}).json()["access_token"]
        gone = http.get(f"/api/datasets/{synced['dataset_id']}", headers={"Authorization": f"Bearer {token}"})
    assert gone.status_code == 404


def test_leave_a_dataset_out_of_the_answers(page: Page, server: LiveServer, tmp_path: Path) -> None:
    email = sign_up(page, server.url)
    kept = upload_via_api(server.url, email, _log(tmp_path / "kept.csv", "k", 0.5))
    left = upload_via_api(server.url, email, _log(tmp_path / "left-out.csv", "l", 2.0))
    dialog = _open(page)
    item = dialog.locator(f"li[data-dataset-id='{left['id']}']")
    box = item.get_by_label("Count in answers", exact=True)
    expect(box).to_be_checked()
    box.uncheck()
    expect(dialog.get_by_role("status").first).to_have_text("Answers leave out “left-out.csv” from now on.")
    expect(item).to_have_attribute("data-included", "false")
    expect(item.get_by_label("Count in answers", exact=True)).to_be_focused()
    expect(item.get_by_label("Count in answers", exact=True)).not_to_be_checked()
    assert _api(server.url, email, f"/api/datasets/{left['id']}")["included"] is False
    assert _api(server.url, email, f"/api/datasets/{kept['id']}")["included"] is True
    page.keyboard.press("Escape")

    run = ask(page, "What did we spend?")
    wait_finished(run)
    card = run.locator(".answer-card")
    expect(card.locator(".answer-text")).to_contain_text("$1.50")  # 3 requests at $0.50: the kept file only
    expect(card.locator(".answer-notes")).to_contain_text("Left out, as you chose: 'left-out.csv'")

    dialog = _open(page)
    dialog.locator(f"li[data-dataset-id='{left['id']}']").get_by_label("Count in answers", exact=True).check()
    expect(dialog.get_by_role("status").first).to_have_text("Answers count “left-out.csv” again.")
    assert _api(server.url, email, f"/api/datasets/{left['id']}")["included"] is True
