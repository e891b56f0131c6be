"""The shipped price table: dated, sourced, resolving dated snapshots and prefixes; a user file overrides."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tokenwise.errors import InvalidInput
from tokenwise.usage.prices import load_prices


def test_shipped_table_is_dated_and_every_price_has_a_source() -> None:
    table = load_prices()
    assert table.as_of.startswith("2026-")
    for name in ("gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "o3", "o4-mini",
                 "claude-3-5-sonnet", "claude-3-7-sonnet", "claude-sonnet-4", "claude-3-5-haiku",
                 "claude-opus-4", "gemini-1.5-pro", "gemini-2.0-flash", "gemini-2.5-pro", "gemini-2.5-flash",
                 "llama-3.1-70b", "llama-3.1-8b", "mistral-large"):  # fmt: skip
        price = table.price(name)
        assert price is not None, name
        assert price.source is not None
        assert price.source.startswith("https://"), name
        assert price.input_per_mtok > 0
        assert price.output_per_mtok > 0
        assert price.provider
        assert price.as_of == table.as_of
    for entry in table.document["models"].values():
        if tier := entry.get("cheaper_tier"):
            assert table.price(tier) is not None


@pytest.mark.parametrize(
    ("name", "resolved"),
    [
        ("gpt-4o", "gpt-4o"),
        ("GPT-4o", "gpt-4o"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-2024-05-13", "gpt-4o-2024-05-13"),  # an older snapshot with its own price
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("openai/gpt-4.1-mini", "gpt-4.1-mini"),
        ("azure/gpt-35-turbo", "gpt-3.5-turbo"),
        ("claude-3-5-sonnet-20241022", "claude-3-5-sonnet"),
        ("anthropic.claude-3-5-sonnet-20241022-v2:0", "claude-3-5-sonnet"),
        ("claude-3-7-sonnet-latest", "claude-3-7-sonnet"),
        ("gemini-2.5-flash-preview-05-20", "gemini-2.5-flash"),
        ("meta-llama/Llama-3.3-70B-Instruct-Turbo", "llama-3.3-70b"),
        ("o4-mini-2025-04-16", "o4-mini"),
        ("gpt-4o-mini-search-preview", "gpt-4o-mini"),
        ("my-finetune", None),
    ],
)
def test_resolution(name: str, resolved: str | None) -> None:
    assert load_prices().resolve(name) == resolved


def test_cost_of_a_row() -> None:
    table = load_prices()
    # gpt-4o: $2.50 input, $1.25 cached input, $10 output per 1M tokens.
    assert table.cost("gpt-4o", 1_000_000, 0) == pytest.approx(2.50)
    assert table.cost("gpt-4o", 1_000_000, 1_000_000, cached_input_tokens=400_000) == pytest.approx(
        0.6 * 2.50 + 0.4 * 1.25 + 10.0
    )
    assert table.cost("gpt-4o", 1_000_000, 0, batch=True) == pytest.approx(1.25)
    assert table.cost("gpt-4-turbo", 1_000_000, 0, cached_input_tokens=1_000_000) == pytest.approx(10.0)
    assert table.cost("nobody-knows", 10, 10) is None


def test_user_file_overrides_fields_and_adds_models(tmp_path: Path) -> None:
    user = tmp_path / "prices.json"
    user.write_text(json.dumps({
        "as_of": "2026-12-01",
        "models": {"gpt-4o": {"input": 2.0}, "our-llama": {"provider": "self", "input": 0.1, "output": 0.2}},
        "aliases": {"prod-chat": "our-llama"},
    }))  # fmt: skip
    table = load_prices(user)
    gpt = table.price("gpt-4o-2024-08-06")
    assert gpt is not None
    assert (gpt.input_per_mtok, gpt.output_per_mtok) == (2.0, 10.0)  # output kept from the shipped table
    assert gpt.source == "prices file prices.json"
    assert gpt.as_of == "2026-12-01"
    mini = table.price("gpt-4o-mini")
    assert mini is not None
    assert mini.as_of == load_prices().as_of
    assert mini.source is not None
    assert table.resolve("prod-chat") == "our-llama"
    assert table.to_json()["origin"] == "merged"


def test_broken_user_file_is_refused(tmp_path: Path) -> None:
    user = tmp_path / "prices.json"
    user.write_text('{"models": {"x": {"input": "cheap"}}}')
    with pytest.raises(InvalidInput, match="price of x"):
        load_prices(user)
    user.write_text("not json")
    with pytest.raises(InvalidInput, match="cannot read the prices file"):
        load_prices(user)
