"""The dated price table: shipped in `prices.json`, optionally merged with a user's file of the same shape.

A model name resolves in this order: exact name; alias (dated snapshots such as `gpt-4o-2024-08-06`);
the name without a provider prefix (`openai/`, `anthropic.`, `models/`, ...) or a date/version suffix;
then the longest known name that the model's name starts with, at a `-` boundary (`gpt-4o-mini-tts`
-> `gpt-4o-mini`). `PriceList` satisfies the analysis' `PriceBook` protocol.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from tokenwise.analysis.pricing import ModelPrice
from tokenwise.errors import InvalidInput

_PREFIX = re.compile(
    r"^(openai|anthropic|azure|azure_ai|bedrock|vertex_ai|google|gemini|models|together_ai|groq|mistral|deepseek)[/.]"
)
# Bedrock names a model by ARN (`arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-...`) or by a
# cross-region inference profile (`us.anthropic.claude-...`): both price as the model they name.
_ARN = re.compile(r"^arn:aws[\w-]*:bedrock:[^:]*:[^:]*:(foundation-model|inference-profile)/")
_REGION = re.compile(r"^(us|eu|apac|au|ca|jp|us-gov|global)\.(?=[a-z]+\.)")
_SUFFIX = re.compile(r"(-\d{4}-\d{2}-\d{2}|-\d{8}|-\d{4}|-latest|-v\d+(:\d+)?|@\d+|:\d+)$")  # fmt: skip


class PriceList:
    """Prices by model (in $ per 1M tokens), their aliases, and when they were compiled."""

    def __init__(self, document: dict[str, Any], *, origin: str = "shipped") -> None:
        self.document = document
        self.as_of = str(document.get("as_of", ""))
        self.origin = origin
        self.aliases: dict[str, str] = {
            str(k).lower(): str(v).lower() for k, v in document.get("aliases", {}).items()
        }
        self.models = {
            name.lower(): _model_price(name.lower(), entry, self.as_of)
            for name, entry in document.get("models", {}).items()
        }

    def resolve(self, model: str) -> str | None:
        """The table's name for `model`, or None when the table does not know it."""
        name = _REGION.sub("", _ARN.sub("", model.strip().lower()))
        for candidate in (name, _PREFIX.sub("", name)):
            while True:
                if candidate in self.models:
                    return candidate
                if candidate in self.aliases:
                    return self.aliases[candidate]
                stripped = _SUFFIX.sub("", candidate)
                if stripped == candidate:
                    break
                candidate = stripped
        base = _PREFIX.sub("", name)
        matches = [known for known in (*self.models, *self.aliases) if base.startswith(known + "-")]
        if not matches:
            return None
        best: str = max(matches, key=len)
        return self.aliases.get(best, best)

    def price(self, model: str) -> ModelPrice | None:
        """The price of `model` (under the model's own name), or None."""
        resolved = self.resolve(model)
        return self.models[resolved] if resolved is not None else None

    def cost(
        self,
        model: str,
        input_tokens: int,
        output_tokens: int,
        cached_input_tokens: int = 0,
        *,
        batch: bool = False,
        cache_write_tokens: int = 0,
        cache_write_1h_tokens: int = 0,
    ) -> float | None:
        """The list cost in $ of one request (cache reads and writes count in `input_tokens`); None:
        unknown model."""
        price = self.price(model)
        if price is None:
            return None
        cached = min(cached_input_tokens, input_tokens)
        uncached = max(input_tokens - cached - cache_write_tokens - cache_write_1h_tokens, 0)
        dollars = (
            uncached * price.input_per_mtok
            + cached * price.cached_rate
            + cache_write_tokens * price.cache_write_rate
            + cache_write_1h_tokens * price.cache_write_1h_rate
            + output_tokens * price.output_per_mtok
        ) / 1e6
        return dollars * (1 - price.batch_discount) if batch else dollars

    def to_json(self) -> dict[str, Any]:
        """The table as served by `GET /api/prices`."""
        return {**self.document, "origin": self.origin}


def _model_price(name: str, entry: dict[str, Any], as_of: str) -> ModelPrice:
    try:
        return ModelPrice(
            model=name,
            input_per_mtok=float(entry["input"]),
            output_per_mtok=float(entry["output"]),
            cached_input_per_mtok=None if entry.get("cached_input") is None else float(entry["cached_input"]),
            batch_discount=float(entry.get("batch_discount") or 0.0),
            cache_write_per_mtok=_optional_price(entry.get("cache_write")),
            cache_write_1h_per_mtok=_optional_price(entry.get("cache_write_1h")),
            provider=entry.get("provider"),
            cheaper_tier=entry.get("cheaper_tier"),
            as_of=str(entry.get("as_of") or as_of),
            source=entry.get("source"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInput(
            f"price of {name}: needs numeric 'input' and 'output' ($ per 1M tokens)", field=f"models.{name}"
        ) from exc


def _optional_price(value: Any) -> float | None:
    return None if value is None else float(value)


@lru_cache(maxsize=1)
def _shipped() -> dict[str, Any]:
    text = resources.files("tokenwise.usage").joinpath("prices.json").read_text(encoding="utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


def merge(base: dict[str, Any], override: dict[str, Any], origin: str) -> dict[str, Any]:
    """`override` over `base`: per model field by field, aliases added; its models are sourced to `origin`."""
    base_as_of = base.get("as_of")
    models = {name.lower(): {"as_of": base_as_of, **entry} for name, entry in base.get("models", {}).items()}
    for name, entry in override.get("models", {}).items():
        if not isinstance(entry, dict):
            raise InvalidInput(f"price of {name}: expected an object", field=f"models.{name}")
        dated = {"as_of": override["as_of"]} if "as_of" in override else {}
        models[name.lower()] = {**models.get(name.lower(), {}), "source": origin, **dated, **entry}
    return {
        **base,
        **{k: v for k, v in override.items() if k not in ("models", "aliases")},
        "models": models,
        "aliases": {**base.get("aliases", {}), **override.get("aliases", {})},
    }


def load_prices(user_file: Path | None = None) -> PriceList:
    """The shipped table, with `user_file` (same JSON shape) merged over it when given."""
    document = _shipped()
    if user_file is None:
        return PriceList(document)
    try:
        override = json.loads(Path(user_file).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"cannot read the prices file {user_file}: {exc}", field="prices_file") from exc
    if not isinstance(override, dict):
        raise InvalidInput(f"prices file {user_file}: expected a JSON object", field="prices_file")
    return PriceList(merge(document, override, f"prices file {Path(user_file).name}"), origin="merged")


__all__ = ["ModelPrice", "PriceList", "load_prices", "merge"]
