"""The names a question can use: every model, feature, user, team, project and API key in the user's data,
and the models of the price book, matched case- and punctuation-tolerantly ("gpt4o" finds `gpt-4o`,
"FAQ bot" finds `faq-bot`)."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

# When one name is a value of several dimensions, the earlier one wins unless the question says which.
PRIORITY = ("feature", "model", "user", "team", "project", "api_key", "provider")
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@-]*[A-Za-z0-9]|[A-Za-z0-9]")
_MAX_WORDS = 4
# a family word on its own ("claude models"), not the start of a model name ("gpt-5")
_FAMILY = re.compile(r"\b(claude|gpt|gemini|llama|mistral|deepseek|qwen|command)(?![-.\w])", re.I)


def key(text: str) -> str:
    """The comparison key of a name: lower case letters and digits only."""
    return re.sub(r"[^a-z0-9]", "", text.lower())


@dataclass(frozen=True)
class Mention:
    """A known name found in the question."""

    dimension: str
    value: str
    span: tuple[int, int]


@dataclass
class Vocabulary:
    """Known values by dimension (most frequent first) and the price book's model names."""

    values: Mapping[str, list[str]]
    priced_models: list[str] = field(default_factory=list)
    _index: dict[str, list[tuple[str, str]]] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        for dimension in sorted(self.values, key=lambda d: PRIORITY.index(d) if d in PRIORITY else 99):
            for value in self.values[dimension]:
                k = key(value)
                if len(k) >= 2:
                    self._index.setdefault(k, []).append((dimension, value))
        for model in self.priced_models:
            k = key(model)
            if len(k) >= 2 and not any(d == "model" for d, _ in self._index.get(k, [])):
                self._index.setdefault(k, []).append(("priced_model", model))

    def mentions(self, text: str) -> list[Mention]:
        """Known names in `text`, longest match first, none overlapping; `priced_model` for price book names
        that are not in the data."""
        tokens = [(m.group(0), m.span()) for m in _TOKEN.finditer(text)]
        found: list[Mention] = []
        i = 0
        while i < len(tokens):
            for width in range(min(_MAX_WORDS, len(tokens) - i), 0, -1):
                words = tokens[i : i + width]
                hits = self._index.get(key("".join(w for w, _ in words)))
                if hits:
                    span = (words[0][1][0], words[-1][1][1])
                    dimension, value = _pick(hits, text, span)
                    found.append(Mention(dimension, value, span))
                    i += width
                    break
            else:
                i += 1
        return found

    def family(self, text: str) -> list[Mention]:
        """Model families named without a version ("claude models", "gemini"): every model of the data
        whose name starts with the family's, as one mention per family word."""
        found = []
        for match in _FAMILY.finditer(text):
            word = key(match.group(1))
            models = [m for m in self.values.get("model", []) if key(m).startswith(word)]
            found += [Mention("model", m, match.span(1)) for m in models]
        return found

    def suggest(self, word: str, dimension: str | None = None, limit: int = 3) -> list[str]:
        """The known names closest to `word` (of `dimension` when given)."""
        pool: Iterable[str]
        if dimension and dimension in self.values:
            pool = self.values[dimension]
        else:
            pool = [v for d in PRIORITY for v in self.values.get(d, [])]
        candidates = {key(v): v for v in pool}
        close = difflib.get_close_matches(key(word), list(candidates), n=limit, cutoff=0.5)
        if not close:  # a shared prefix or part ("chatbot-x" -> "chatbot") counts as close too
            close = [k for k in candidates if k and (k in key(word) or key(word)[:4] in k)][:limit]
        if not close:  # nothing like it: the most used names of that kind are the useful answer
            return list(pool)[:limit] if dimension else []
        return [candidates[k] for k in close]

    def known(self, dimension: str, value: str) -> str | None:
        """The data's spelling of `value` in `dimension`, if it is there."""
        for d, v in self._index.get(key(value), []):
            if d == dimension:
                return v
        return None


def _pick(hits: list[tuple[str, str]], text: str, span: tuple[int, int]) -> tuple[str, str]:
    if len(hits) == 1:
        return hits[0]
    # The dimension word right before the name ("team alpha") wins over one after it ("alpha team").
    before, after = text[max(0, span[0] - 12) : span[0]].lower(), text[span[1] : span[1] + 12].lower()
    for words in (before, after):
        nearest = max(
            ((words.rfind(d.replace("_", " ")) if words is before else -words.find(d.replace("_", " ")), d, v)
             for d, v in hits if d.replace("_", " ") in words),
            default=None,
        )  # fmt: skip
        if nearest is not None:
            return nearest[1], nearest[2]
    return hits[0]
