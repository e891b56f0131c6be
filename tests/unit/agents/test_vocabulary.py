"""Names from the user's data found in a question, case- and punctuation-tolerantly."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokenwise.agents.vocabulary import Vocabulary, key

VALUES = {
    "model": ["gpt-4o", "gpt-4o-mini", "claude-3-5-haiku"],
    "feature": ["faq-bot", "assistant", "summarizer", "alpha"],
    "user": ["u-1", "u-22"],
    "team": ["alpha", "platform"],
    "project": ["alpha", "apollo"],
    "api_key": ["key-prod"],
}
VOCABULARY = Vocabulary(VALUES, priced_models=["gpt-4o", "gpt-4o-mini", "gpt-4.1", "claude-sonnet-4"])


def found(text: str) -> list[tuple[str, str]]:
    return [(m.dimension, m.value) for m in VOCABULARY.mentions(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("gpt4o spend", ("model", "gpt-4o")),
        ("GPT-4O spend", ("model", "gpt-4o")),
        ("spend on gpt 4o", ("model", "gpt-4o")),
        ("FAQ bot", ("feature", "faq-bot")),
        ("faq_bot", ("feature", "faq-bot")),
        ("what did (Faq-Bot) cost?", ("feature", "faq-bot")),
        ("claude 3.5 haiku", ("model", "claude-3-5-haiku")),
        ("key-prod", ("api_key", "key-prod")),
        ("Apollo", ("project", "apollo")),
    ],
)
def test_case_and_punctuation_tolerance(text: str, expected: tuple[str, str]) -> None:
    assert found(text) == [expected]


def test_the_mention_spans_the_words_it_was_read_from() -> None:
    (mention,) = VOCABULARY.mentions("spend of the FAQ bot yesterday")
    assert "spend of the FAQ bot yesterday"[slice(*mention.span)] == "FAQ bot"


@pytest.mark.parametrize("text", ["gpt-4o-mini spend", "GPT4o Mini spend", "gpt 4o mini"])
def test_the_longest_match_wins(text: str) -> None:
    assert found(text) == [("model", "gpt-4o-mini")]


def test_several_names_in_one_question() -> None:
    assert found("gpt-4o vs gpt-4o-mini for u-1 and u-22") == [
        ("model", "gpt-4o"),
        ("model", "gpt-4o-mini"),
        ("user", "u-1"),
        ("user", "u-22"),
    ]


@pytest.mark.parametrize(
    ("text", "dimension"),
    [
        ("team alpha", "team"),
        ("project alpha", "project"),
        ("the alpha team", "team"),
        ("alpha project spend", "project"),
        ("the feature alpha", "feature"),
        ("alpha", "feature"),  # no word says which: the feature (the first dimension)
    ],
)
def test_the_word_next_to_a_shared_name_says_its_dimension(text: str, dimension: str) -> None:
    assert found(text) == [(dimension, "alpha")]


@pytest.mark.parametrize(
    ("text", "dimension"), [("spend of team alpha by feature", "team"), ("project alpha by team", "project")]
)
def test_the_nearest_dimension_word_wins(text: str, dimension: str) -> None:
    assert found(text) == [(dimension, "alpha")]


def test_price_book_models_not_in_the_data_are_marked() -> None:
    assert found("move it to gpt-4.1") == [("priced_model", "gpt-4.1")]
    assert found("gpt-4o") == [("model", "gpt-4o")]  # in the data and the price book: the data's


def test_suggestions_for_unknown_names() -> None:
    assert VOCABULARY.suggest("faqbott")[0] == "faq-bot"
    assert VOCABULARY.suggest("sumarizer", "feature") == ["summarizer"]
    assert VOCABULARY.suggest("gpt-5", "model")[0].startswith("gpt-4o")
    assert VOCABULARY.suggest("faq-bot-v2", "feature") == ["faq-bot"]
    assert VOCABULARY.suggest("zzzzqqq") == []
    assert all(s in VALUES["team"] for s in VOCABULARY.suggest("platfrom", "team"))


def test_known_returns_the_datas_spelling() -> None:
    assert VOCABULARY.known("model", "GPT4O") == "gpt-4o"
    assert VOCABULARY.known("team", "ALPHA") == "alpha"
    assert VOCABULARY.known("feature", "gpt-4o") is None


def test_words_that_are_not_names_find_nothing() -> None:
    assert found("how much did we spend last week on everything?") == []


@given(st.text(max_size=200))
def test_mentions_never_raise_and_point_at_their_names(text: str) -> None:
    for m in VOCABULARY.mentions(text):
        assert key(text[slice(*m.span)]) == key(m.value)


@given(
    st.sampled_from([v for vs in VALUES.values() for v in vs]), st.sampled_from([str.upper, str.title, str])
)
def test_every_known_value_is_found_however_cased(value: str, case: object) -> None:
    text = f"spend of {case(value)} yesterday"  # type: ignore[operator]
    assert value in [v for _, v in found(text)]
