"""The answer evaluation (issue 8) through the real server: every question of `support.evaluation`, asked
over a real WebSocket about a generated 61-day usage log uploaded with `POST /api/datasets`.

The log is generated once per module and its true answers are computed from the rows as written, apart
from Tokenwise (`support.evaluation_log`, `support.evaluation`). Each case is its own test; follow-ups are
asked in their parent's thread. The module prints a score line at the end.

Set TOKENWISE_E2E_URL to run it against a deployment (a fresh user is registered there).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from mission_critical.deployment import Target
from support import evaluation_log
from support.evaluation import CASES, Log, Truth, check
from support.evaluation import truths as true_answers
from support.evaluation_run import Asked, ask_all, timing_line, upload


@dataclass
class Evaluation:
    truths: dict[int, Truth]
    asked: dict[int, Asked]


@pytest.fixture(scope="module")
def evaluation(
    target: Target, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Evaluation]:
    """The log uploaded by a fresh user, every question asked once, and the truths to hold them to."""
    rows = evaluation_log.rows()
    path = tmp_path_factory.mktemp("answers") / "llm-usage.csv"
    evaluation_log.write_csv(path, rows)
    truths = true_answers(Log(rows))
    account = asyncio.run(target.new_account())
    dataset = asyncio.run(upload(target.url, account.access_token, path))
    assert dataset["row_count"] == len(rows)
    # Only the cases selected (-k ...) are asked, each after the earlier questions of its thread.
    selected = {
        item.callspec.params["index"]
        for item in request.session.items
        if isinstance(item, pytest.Function) and item.module is request.module and hasattr(item, "callspec")
    }
    asked = asyncio.run(ask_all(target.url, account.access_token, only=selected, concurrency=4, timeout=60))
    yield Evaluation(truths, asked)
    right = sum(
        not check(CASES[i], truths[i], a.answer) and a.error is None
        for i, a in asked.items()
        if i in selected
    )
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        print(f"\nanswer evaluation: {right}/{len(selected)} right; {timing_line(asked)}")


@pytest.mark.parametrize("index", range(len(CASES)), ids=[case.slug for case in CASES])
def test_answer(evaluation: Evaluation, index: int) -> None:
    case, asked = CASES[index], evaluation.asked[index]
    assert asked.error is None, f"{case.question!r}: {asked.error}"
    problems = check(case, evaluation.truths[index], asked.answer)
    answer = asked.answer or {}
    shown = f"{answer.get('text')!r}\nfigures: {json.dumps(answer.get('figures'))[:800]}"
    assert not problems, f"{case.question!r}: {'; '.join(problems)}\nanswer: {shown}"
