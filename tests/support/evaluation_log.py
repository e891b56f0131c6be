"""A realistic LLM usage log for the answer evaluation, generated apart from the code under test.

Plain Python and a seeded `random.Random`: nothing from `tokenwise` is imported, and the only input shared
with the product is the shipped price book (`src/tokenwise/usage/prices.json`, read with `json`), because
prices are data. Same seed and scale, same rows, byte for byte.

The log covers 2025-10-01 00:00 to 2025-11-30 23:59:59 UTC (61 days) and, at scale 1, about 50,000 rows:

- daily volume grows about 1 % a day, weekends run at ~55 % of a weekday, every day has some noise;
- five features with their own model mix and sizes: assistant, classifier, faq-bot, summarizer and
  nightly-report (a batch job, 01:00-03:00 UTC, in bursts of four requests in the same second, on the
  service user u-40 and the key-batch key);
- 40 users (u-01..u-40, Zipf-like activity), teams alpha/beta/gamma (fixed per user), projects
  web/mobile/internal, API keys key-prod/key-staging/key-batch;
- `cached_tokens` are part of `input_tokens`, multiples of 128 and never above 2,048;
- `cost_usd` = ((input - cached) x input + cached x cached_input + output x output) / 1e6 at list prices;
  error rows are billed too (their output is 0);
- planted anomalies: on 2025-11-18 the summarizer sends 8x its usual traffic (the spend spike), and on
  2025-11-05 30 % of classifier requests fail (about 1 % otherwise);
- latency per model from its base, output and input sizes, with noise; some requests exceed 2,000 ms and a
  few failed ones time out after about 30 s.

`rows()` returns the rows (typed dicts, values as written); `iter_rows()` streams them day by day for large
scales (`scale_for(1_000_000)` gives a scale for about a million rows); `write_csv()` writes either.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import math
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypedDict

PRICES_FILE = Path(__file__).resolve().parents[2] / "src" / "tokenwise" / "usage" / "prices.json"
START = datetime(2025, 10, 1, tzinfo=UTC)
DAYS = 61
SEED = 2025
COLUMNS = (
    "timestamp", "request_id", "model", "feature", "user", "team", "project", "api_key", "input_tokens",
    "output_tokens", "cached_tokens", "cost_usd", "latency_ms", "status", "prompt_hash",
)  # fmt: skip
MODELS = ("gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet", "claude-3-5-haiku")
FEATURES = ("assistant", "classifier", "faq-bot", "summarizer", "nightly-report")
USERS = tuple(f"u-{i:02d}" for i in range(1, 41))
TEAMS = ("alpha", "beta", "gamma")
PROJECTS = ("web", "mobile", "internal")
API_KEYS = ("key-prod", "key-staging", "key-batch")
SPIKE_DAY = "2025-11-18"  # summarizer traffic x8
ERROR_DAY = "2025-11-05"  # classifier errors at 30 %
SERVICE_USER = "u-40"  # the nightly-report job


class Row(TypedDict):
    """One request as written to the CSV (the same values, already typed)."""

    timestamp: str
    request_id: str
    model: str
    feature: str
    user: str
    team: str
    project: str
    api_key: str
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    cost_usd: float
    latency_ms: int
    status: str
    prompt_hash: str


@dataclass(frozen=True)
class Price:
    input: float
    cached_input: float
    output: float
    batch_discount: float


def load_prices(path: Path = PRICES_FILE) -> dict[str, Price]:
    """The four models' list prices ($ per 1M tokens) from the shipped price book."""
    table = json.loads(path.read_text())["models"]
    return {
        name: Price(
            float(table[name]["input"]),
            float(table[name]["cached_input"] if table[name]["cached_input"] is not None else 0.0),
            float(table[name]["output"]),
            float(table[name].get("batch_discount") or 0.0),
        )
        for name in MODELS
    }


def list_cost(price: Price, input_tokens: int, cached_tokens: int, output_tokens: int) -> float:
    """Dollars for one request at list prices (cached tokens are part of the input)."""
    uncached = input_tokens - cached_tokens
    return (uncached * price.input + cached_tokens * price.cached_input + output_tokens * price.output) / 1e6


@dataclass(frozen=True)
class Profile:
    """How one feature uses the models: mix, sizes, output outliers, prompt-cache hits, duplicates."""

    models: dict[str, float]
    input_median: float
    input_sigma: float
    output_median: float
    output_sigma: float
    large_output_p: float
    large_output: tuple[int, int]
    cache_p: float
    duplicate_p: float
    projects: dict[str, float]


PROFILES: dict[str, Profile] = {
    "assistant": Profile(
        {"gpt-4o": 0.5, "claude-3-5-sonnet": 0.3, "gpt-4o-mini": 0.2}, 1800, 0.6, 320, 0.5, 0.06,
        (900, 3000), 0.35, 0.0, {"web": 0.6, "mobile": 0.4},
    ),
    "classifier": Profile(
        {"gpt-4o-mini": 0.6, "gpt-4o": 0.3, "claude-3-5-haiku": 0.1}, 450, 0.4, 8, 0.4, 0.0, (0, 0), 0.2,
        0.1, {"internal": 0.5, "web": 0.3, "mobile": 0.2},
    ),
    "faq-bot": Profile(
        {"gpt-4o-mini": 0.5, "claude-3-5-haiku": 0.35, "gpt-4o": 0.15}, 900, 0.3, 160, 0.4, 0.02,
        (600, 1200), 0.7, 0.4, {"web": 0.5, "mobile": 0.5},
    ),
    "summarizer": Profile(
        {"claude-3-5-sonnet": 0.6, "gpt-4o": 0.4}, 6500, 0.5, 380, 0.4, 0.08, (800, 2500), 0.1, 0.0,
        {"internal": 0.6, "web": 0.4},
    ),
    "nightly-report": Profile(
        {"gpt-4o": 0.7, "claude-3-5-sonnet": 0.3}, 12000, 0.25, 1400, 0.3, 0.0, (0, 0), 0.5, 0.0,
        {"internal": 1.0},
    ),
}  # fmt: skip
# Share of the interactive (non-batch) traffic of a day.
FEATURE_SHARE = {"assistant": 0.45, "classifier": 0.27, "faq-bot": 0.18, "summarizer": 0.10}
# Latency: base ms, ms per output token, ms per 1k input tokens.
LATENCY = {
    "gpt-4o": (350.0, 3.0, 25.0),
    "gpt-4o-mini": (220.0, 1.8, 12.0),
    "claude-3-5-sonnet": (450.0, 3.5, 30.0),
    "claude-3-5-haiku": (280.0, 2.2, 15.0),
}
# Relative traffic per UTC hour: a working day centred on Europe/US overlap.
HOURLY = (2, 1.5, 1, 1, 1, 1.5, 3, 5, 8, 10, 11, 11, 10, 11, 11, 10, 9, 8, 6, 5, 4, 3.5, 3, 2.5)
BASE_PER_DAY = 640  # interactive requests on the first day (a Wednesday), at scale 1
NIGHTLY_PER_DAY = 24
DEFAULT_ROWS = 50_000  # roughly what scale 1 gives


def scale_for(rows: int) -> float:
    """The scale that gives about `rows` rows."""
    return rows / DEFAULT_ROWS


def _team(user: str) -> str:
    number = int(user[2:])
    return "alpha" if number <= 14 else "beta" if number <= 27 else "gamma"


class _Choice:
    """A weighted choice with its cumulative weights computed once (`random.choices` is hot here)."""

    def __init__(self, weights: dict[str, float]) -> None:
        self.names = list(weights)
        self.cumulative = list(itertools.accumulate(weights.values()))

    def __call__(self, rng: random.Random) -> str:
        return rng.choices(self.names, cum_weights=self.cumulative)[0]


def _stamp(ms: int) -> str:
    return f"{START + timedelta(milliseconds=ms):%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}Z"


class _Generator:
    def __init__(self, seed: int, scale: float, prices: dict[str, Price]) -> None:
        self.rng = random.Random(seed)
        self.scale = scale
        self.prices = prices
        self.seed = seed
        people = list(USERS[:-1])
        self.rng.shuffle(people)  # activity rank is not the id order
        self.users = _Choice({user: 1 / (rank + 1) ** 0.9 for rank, user in enumerate(people)})
        self.hours = list(itertools.accumulate(HOURLY))
        self.models = {feature: _Choice(profile.models) for feature, profile in PROFILES.items()}
        self.projects = {feature: _Choice(profile.projects) for feature, profile in PROFILES.items()}
        self.serial = 0

    def day(self, index: int) -> list[Row]:
        rng = self.rng
        date = START + timedelta(days=index)
        season = 0.55 if date.weekday() >= 5 else 1.0
        volume = BASE_PER_DAY * self.scale * 1.01**index * season * rng.gauss(1.0, 0.06)
        drafts: list[tuple[int, str, str]] = []  # (ms since START, feature, user)
        day_ms = index * 86_400_000
        for feature, share in FEATURE_SHARE.items():
            count = round(volume * share * rng.gauss(1.0, 0.05))
            if feature == "summarizer" and date.strftime("%Y-%m-%d") == SPIKE_DAY:
                count *= 8
            for _ in range(max(count, 0)):
                hour = rng.choices(range(24), cum_weights=self.hours)[0]
                ms = day_ms + hour * 3_600_000 + rng.randrange(3_600_000)
                user = self.users(rng)
                drafts.append((ms, feature, user))
        bursts = round(NIGHTLY_PER_DAY * self.scale * 1.01**index / 4)
        for _ in range(bursts):
            second = day_ms + 3_600_000 + rng.randrange(7200) * 1000
            for offset in sorted(rng.sample(range(1000), 4)):
                drafts.append((second + offset, "nightly-report", SERVICE_USER))
        drafts.sort(key=lambda draft: draft[0])
        error_day = date.strftime("%Y-%m-%d") == ERROR_DAY
        return [self.row(ms, feature, user, error_day) for ms, feature, user in drafts]

    def row(self, ms: int, feature: str, user: str, error_day: bool) -> Row:
        rng, profile = self.rng, PROFILES[feature]
        self.serial += 1
        model = self.models[feature](rng)
        input_tokens = min(
            100_000, max(20, round(rng.lognormvariate(math.log(profile.input_median), profile.input_sigma)))
        )
        if rng.random() < profile.large_output_p:
            output_tokens = rng.randint(*profile.large_output)
        else:
            output_tokens = max(
                1, round(rng.lognormvariate(math.log(profile.output_median), profile.output_sigma))
            )
        cached = 0
        if rng.random() < profile.cache_p:
            cached = min(2048, int(input_tokens * rng.uniform(0.3, 0.9)) // 128 * 128)
        error_p = 0.30 if error_day and feature == "classifier" else 0.01
        failed = rng.random() < error_p
        base, per_output, per_input = LATENCY[model]
        if failed:
            output_tokens = 0
            timeout = rng.random() < 0.15
            latency = 30_000 + rng.randrange(1000) if timeout else round(rng.uniform(150, 900))
        else:
            latency = round(
                (base + per_output * output_tokens + per_input * input_tokens / 1000)
                * rng.lognormvariate(0, 0.25)
            )
        if profile.duplicate_p and rng.random() < profile.duplicate_p:
            prompt_key = f"{feature}:common:{rng.randrange(200)}"
        else:
            prompt_key = f"{self.seed}:{self.serial}"
        cost = float(f"{list_cost(self.prices[model], input_tokens, cached, output_tokens):.10f}")
        if feature == "nightly-report":
            api_key = "key-batch"
        else:
            api_key = "key-staging" if rng.random() < 0.1 else "key-prod"
        return Row(
            timestamp=_stamp(ms),
            request_id=f"req_{self.serial:06d}",
            model=model,
            feature=feature,
            user=user,
            team=_team(user),
            project=self.projects[feature](rng),
            api_key=api_key,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cached_tokens=cached,
            cost_usd=cost,
            latency_ms=latency,
            status="error" if failed else "ok",
            prompt_hash=hashlib.sha256(prompt_key.encode()).hexdigest()[:16],
        )  # fmt: skip


def iter_rows(seed: int = SEED, scale: float = 1.0, prices: dict[str, Price] | None = None) -> Iterator[Row]:
    """The log's rows in time order, generated one day at a time (constant memory at any scale)."""
    generator = _Generator(seed, scale, prices or load_prices())
    for index in range(DAYS):
        yield from generator.day(index)


def rows(seed: int = SEED, scale: float = 1.0) -> list[Row]:
    """Every row of the log, as written."""
    return list(iter_rows(seed, scale))


def write_csv(path: Path, log: Iterable[Row]) -> int:
    """Write rows as the CSV a user uploads; returns how many were written."""
    count = 0
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for row in log:
            writer.writerow(
                [f"{row['cost_usd']:.10f}" if name == "cost_usd" else row[name] for name in COLUMNS]  # type: ignore[literal-required]
            )
            count += 1
    return count


if __name__ == "__main__":  # the README's tour: `python tests/support/evaluation_log.py demo.csv`
    import sys

    target = Path(sys.argv[1] if len(sys.argv) > 1 else "demo-usage.csv")
    print(f"wrote {write_csv(target, iter_rows()):,} rows to {target}")
