"""The answer evaluation: questions a user asks about the log of `evaluation_log`, with their true answers.

Each `Case` is a question (optionally a follow-up of an earlier case, asked in the same thread) and a truth
function: plain Python over the rows as written, never Tokenwise's own code. A case passes (`check`) when
every expected figure is within tolerance of some number written in `answer.text` AND of some
`answer.figures[].value`, and every expected name appears in `answer.text` (case-insensitive, as a whole
word: "gpt-4o" is not found inside "gpt-4o-mini"); some cases also check the table, the series or the
unknown names of the answer.

Tolerances: 1 % for plain figures, 3 % for what-ifs, 10 % for forecasts. A number in the text may also be
off by half a unit of its last written digit ("12.3%" holds 12.34); signs are ignored ("down 4.1%" holds a
change of -4.1 %); a percentage in `figures` may be given as 12.3 or as the fraction 0.123.

Time: the data ends 2025-11-30, so "today" is 2025-12-01 (a Monday), the day after the newest request.
"yesterday" = 11-30; "last week" and "last 7 days" = [11-24, 12-01); "the week before" = [11-17, 11-24);
"last month" = November; "month over month" = November vs October; "between 1 and 15 Nov" = [11-01,
11-16); "next month" = December 2025 (31 days). Periods are [start, end) in UTC.

Formulas:
- tokens = input + output tokens; error rate = errors / requests; percentiles are
  `statistics.quantiles(values, n=100, method="inclusive")` (numpy's default linear interpolation), over
  every request of the scope (failed ones included); "over 2 s" = latency_ms > 2000.
- A month, for what-ifs: monthly(x) = x x 30 x 86400 / (max_ts - min_ts of the scope's rows, in seconds).
  Every what-if is priced at the price book's list prices, `cost(model, input, cached, output)`:
  - route P % of a scope to model Y: P/100 x sum(cost(row) - cost(Y, same tokens)); "the short requests"
    of a scope: those whose input + output tokens are <= the scope's median of input + output (monthly
    over the whole scope's span);
  - prompt caching of a shared P-token prefix: over the scope's requests with input >= P, the prefix
    tokens not cached yet, max(0, P - cached), move from the input to the cached input price (cache
    writes not charged);
  - cap output at N: sum(max(0, output - N) x output_price(row's model)) / 1e6;
  - a cache hit rate of R %: R/100 x sum(cost);
  - a feature on the batch API: sum(cost x batch_discount(row's model));
  - trim context to N tokens: sum(cost(row) - cost(row with its prompt cut to its first N tokens, the
    cached prefix kept first)), i.e. new cached = min(cached, N), new input = min(input, N). Cached
    tokens never exceed 2,048 in this log, so for N >= 2,048 this is exactly
    sum(max(0, input - N) x input_price) / 1e6;
  - a price change of X % for a model: X/100 x monthly(that model's spend);
  - traffic growing G %: G/100 x monthly(spend).
- Forecast of next month: least-squares line through the daily totals of every day of the data (day index
  0..60), summed over the 31 days of December (indices 61..91).
- Capacity: peak requests/s = the most requests in one wall-clock second; peak tokens/s = the largest sum of
  input + output tokens in one wall-clock second.
"""

from __future__ import annotations

import math
import re
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from support.evaluation_log import Price, Row, list_cost, load_prices

PLAIN, WHAT_IF, FORECAST = 0.01, 0.03, 0.10


def _day(month: int, day: int) -> datetime:
    return datetime(2025, month, day, tzinfo=UTC)


TODAY = _day(12, 1)
Period = tuple[datetime, datetime] | None  # [start, end); None: all of the data
YESTERDAY: Period = (_day(11, 30), TODAY)
LAST_WEEK: Period = (_day(11, 24), TODAY)  # also "the last 7 days"
WEEK_BEFORE: Period = (_day(11, 17), _day(11, 24))
OCTOBER: Period = (_day(10, 1), _day(11, 1))
NOVEMBER: Period = (_day(11, 1), TODAY)
OCTOBER_12: Period = (_day(10, 12), _day(10, 13))
NOV_1_15: Period = (_day(11, 1), _day(11, 16))
NOV_18: Period = (_day(11, 18), _day(11, 19))
DECEMBER_DAYS = 31
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True, slots=True)
class Request:
    """A row with its parsed time."""

    at: datetime
    row: Row

    @property
    def epoch(self) -> float:
        return self.at.timestamp()


class Log:
    """The rows as written, parsed once, with the price book they were priced with."""

    def __init__(self, rows: Sequence[Row], prices: dict[str, Price] | None = None) -> None:
        self.requests = [Request(datetime.fromisoformat(row["timestamp"]), row) for row in rows]
        self.prices = prices or load_prices()

    def select(self, period: Period = None, **equals: str) -> list[Request]:
        """The requests in `period` whose columns equal the given values (feature="faq-bot", ...)."""
        chosen = self.requests
        if period is not None:
            # ISO timestamps in one format and zone sort as text: compare strings, not datetimes (faster).
            start, end = (moment.strftime("%Y-%m-%dT%H:%M:%S.000Z") for moment in period)
            chosen = [r for r in chosen if start <= r.row["timestamp"] < end]
        for name, value in equals.items():
            chosen = [r for r in chosen if r.row[name] == value]  # type: ignore[literal-required]
        return list(chosen)

    def cost_at(
        self, request: Request, model: str, input_tokens: int | None = None, cached: int | None = None
    ) -> float:
        row = request.row
        return list_cost(
            self.prices[model],
            row["input_tokens"] if input_tokens is None else input_tokens,
            row["cached_tokens"] if cached is None else cached,
            row["output_tokens"],
        )


# --- the expected answer ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    label: str
    value: float
    unit: str  # usd, count, tokens, pct, ms, per_s


@dataclass(frozen=True)
class Truth:
    figures: tuple[Figure, ...] = ()
    names: tuple[tuple[str, ...], ...] = ()  # each group: one of its spellings must be in the text
    unknown: tuple[str, ...] = ()  # names `answer.unknown` must list, with suggestions
    table_rows: int | None = None  # `answer.table` must have this many rows
    series_points: int | None = None  # `answer.series` must have this many points
    # A ranking's answer names its winner (the first group of `names`) before any of these.
    rivals: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()  # words of a wrong reading, which the text must not contain


@dataclass(frozen=True)
class Case:
    question: str
    kind: str
    truth: Callable[[Log], Truth]
    tolerance: float = PLAIN
    follow_up_of: int | None = None  # index in CASES of the previous question of the same thread
    slug: str = ""


# --- aggregates --------------------------------------------------------------------------------------------


def spend(requests: Iterable[Request]) -> float:
    return sum(r.row["cost_usd"] for r in requests)


def tokens(requests: Iterable[Request]) -> int:
    return sum(r.row["input_tokens"] + r.row["output_tokens"] for r in requests)


def errors(requests: Iterable[Request]) -> int:
    return sum(r.row["status"] == "error" for r in requests)


def percentile(values: Sequence[float], p: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def monthly(value: float, requests: Sequence[Request]) -> float:
    span = max(r.epoch for r in requests) - min(r.epoch for r in requests)
    return value * 30 * 86400 / span


def group(requests: Iterable[Request], key: Callable[[Request], str]) -> dict[str, list[Request]]:
    groups: dict[str, list[Request]] = defaultdict(list)
    for request in requests:
        groups[key(request)].append(request)
    return groups


def column(name: str) -> Callable[[Request], str]:
    return lambda request: str(request.row[name])  # type: ignore[literal-required]


def ranking(
    requests: Iterable[Request],
    key: Callable[[Request], str],
    measure: Callable[[list[Request]], float] = spend,
) -> list[tuple[str, float]]:
    """Groups by `key`, largest `measure` first (ties by name)."""
    totals = [(name, measure(members)) for name, members in group(requests, key).items()]
    return sorted(totals, key=lambda item: (-item[1], item[0]))


def daily(requests: Iterable[Request], measure: Callable[[list[Request]], float] = spend) -> list[float]:
    """The measure per day of the data, from its first day to its last (days without requests: 0)."""
    members = group(requests, lambda r: r.at.date().isoformat())
    first, last = date.fromisoformat(min(members)), date.fromisoformat(max(members))
    days = [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]
    return [measure(members.get(day, [])) for day in days]


def linear_forecast(values: Sequence[float], horizon: int) -> float:
    """Sum of the least-squares line through `values` (x = 0..n-1) over the next `horizon` points."""
    n = len(values)
    mean_x, mean_y = (n - 1) / 2, sum(values) / n
    slope = sum((x - mean_x) * (y - mean_y) for x, y in enumerate(values)) / sum(
        (x - mean_x) ** 2 for x in range(n)
    )
    intercept = mean_y - slope * mean_x
    return sum(intercept + slope * x for x in range(n, n + horizon))


def date_names(day: str) -> tuple[str, ...]:
    """Ways an answer may write a date."""
    d = date.fromisoformat(day)
    short, full = d.strftime("%b"), d.strftime("%B")
    return (day, f"{short} {d.day}", f"{d.day} {short}", f"{full} {d.day}", f"{d.day} {full}")


def hour_names(hour: int) -> tuple[str, ...]:
    twelve = f"{(hour % 12) or 12}{'am' if hour < 12 else 'pm'}"
    return (
        f"{hour:02d}:00",
        f"{hour}:00",
        f"{hour:02d}h",
        twelve,
        twelve.replace("am", " am").replace("pm", " pm"),
    )


def usd(label: str, value: float) -> Figure:
    return Figure(label, value, "usd")


def n(label: str, value: float) -> Figure:
    return Figure(label, value, "count")


def pct(label: str, value: float) -> Figure:
    return Figure(label, value, "pct")


def ms(label: str, value: float) -> Figure:
    return Figure(label, value, "ms")


def change(label: str, new: float, old: float) -> tuple[Figure, ...]:
    """Both values, the absolute and the relative change."""
    unit = "usd" if label == "spend" else "count"
    return (
        Figure(f"{label} (later)", new, unit),
        Figure(f"{label} (earlier)", old, unit),
        Figure(f"{label} change", new - old, unit),
        pct(f"{label} change %", 100 * (new - old) / old),
    )


# --- the cases ---------------------------------------------------------------------------------------------

CASES: list[Case] = []


def case(
    question: str, kind: str, tolerance: float = PLAIN, follow_up_of: int | None = None
) -> Callable[[Callable[[Log], Truth]], int]:
    """Register the decorated truth function as a case; the name becomes the case's index in CASES."""

    def register(truth: Callable[[Log], Truth]) -> int:
        slug = re.sub(r"[^a-z0-9]+", "-", question.lower()).strip("-")[:60]
        CASES.append(Case(question, kind, truth, tolerance, follow_up_of, f"{len(CASES):02d}-{slug}"))
        return len(CASES) - 1

    return register


# Totals and filters


@case("What was our total LLM spend?", "total")
def _total_spend(log: Log) -> Truth:
    return Truth((usd("spend", spend(log.requests)),))


@case("How much did we spend yesterday?", "total")
def _yesterday(log: Log) -> Truth:
    return Truth((usd("spend", spend(log.select(YESTERDAY))),))


@case("How many requests did we make in the last 7 days?", "total")
def _last_7_days(log: Log) -> Truth:
    return Truth((n("requests", len(log.select(LAST_WEEK))),))


@case("What was our spend in October?", "total")
def _october(log: Log) -> Truth:
    return Truth((usd("spend", spend(log.select(OCTOBER))),))


@case("How many requests did faq-bot make on October 12?", "total")
def _faq_oct_12(log: Log) -> Truth:
    return Truth((n("requests", len(log.select(OCTOBER_12, feature="faq-bot"))),))


@case("How many tokens did we use between 1 and 15 Nov?", "total")
def _tokens_nov_1_15(log: Log) -> Truth:
    return Truth((Figure("tokens", tokens(log.select(NOV_1_15)), "tokens"),))


@case("How many errors did the classifier have in November?", "total")
def _classifier_errors(log: Log) -> Truth:
    return Truth((n("errors", errors(log.select(NOVEMBER, feature="classifier"))),))


@case("What was the gpt-4o spend of the assistant feature last week?", "total")
def _gpt4o_assistant_last_week(log: Log) -> Truth:
    return Truth((usd("spend", spend(log.select(LAST_WEEK, feature="assistant", model="gpt-4o"))),))


@case("How much did team beta spend in October?", "total")
def _beta_october(log: Log) -> Truth:
    return Truth((usd("spend", spend(log.select(OCTOBER, team="beta"))),))


@case("How much did the mobile project spend last month?", "total")
def _mobile_last_month(log: Log) -> Truth:
    # "project" is also a verb: this is not a forecast.
    return Truth((usd("spend", spend(log.select(NOVEMBER, project="mobile"))),), absent=("forecast",))


@case("How much was spent with the key-staging API key?", "total")
def _staging_key(log: Log) -> Truth:
    return Truth((usd("spend", spend(log.select(api_key="key-staging"))),))


@case("How much did user u-07 spend between 1 and 15 Nov?", "total")
def _u07_nov_1_15(log: Log) -> Truth:
    return Truth((usd("spend", spend(log.select(NOV_1_15, user="u-07"))),))


@case("How many output tokens did claude-3-5-sonnet generate last week?", "total")
def _sonnet_output_last_week(log: Log) -> Truth:
    chosen = log.select(LAST_WEEK, model="claude-3-5-sonnet")
    return Truth((Figure("output tokens", sum(r.row["output_tokens"] for r in chosen), "tokens"),))


@case("How much did we spend on gpt4o in October?", "total")
def _gpt4o_spelling(log: Log) -> Truth:
    return Truth((usd("spend", spend(log.select(OCTOBER, model="gpt-4o"))),), (("gpt-4o",),))


@case("How many requests did the FAQ bot make yesterday?", "total")
def _faq_spelling(log: Log) -> Truth:
    return Truth((n("requests", len(log.select(YESTERDAY, feature="faq-bot"))),))


@case("What was the error rate in October?", "total")
def _error_rate_october(log: Log) -> Truth:
    chosen = log.select(OCTOBER)
    return Truth((pct("error rate", 100 * errors(chosen) / len(chosen)),))


# Breakdowns and rankings


def _top_of(
    dimension: str, period: Period = None, measure: Callable[[list[Request]], float] = spend
) -> Callable[[Log], Truth]:
    """A breakdown: its largest group named with its value, and a table row per group."""

    def truth(log: Log) -> Truth:
        ranked = ranking(log.select(period), column(dimension), measure)
        unit = "usd" if measure is spend else "count"
        return Truth((Figure(ranked[0][0], ranked[0][1], unit),), ((ranked[0][0],),), table_rows=len(ranked))

    return truth


case("Break down our spend by model", "breakdown")(_top_of("model"))
case("What was the spend by feature in October?", "breakdown")(_top_of("feature", OCTOBER))
case("Show spend by project last month", "breakdown")(_top_of("project", NOVEMBER))
case("How many requests did each API key make?", "breakdown")(_top_of("api_key", measure=len))


def _winner(
    ranked: list[tuple[str, float]], unit: str, spell: Callable[[str], tuple[str, ...]] = lambda name: (name,)
) -> Truth:
    """The top group of a ranking: its value, its name, and the others as rivals it must come before."""
    (name, value), rivals = ranked[0], tuple(other for rest, _ in ranked[1:] for other in spell(rest))
    return Truth((Figure(name, value, unit),), (spell(name),), rivals=rivals)


@case("Which team spent the most?", "ranking")
def _top_team(log: Log) -> Truth:
    return _winner(ranking(log.requests, column("team")), "usd")


@case("Who are the top 5 users by spend?", "ranking")
def _top_5_users(log: Log) -> Truth:
    top = ranking(log.requests, column("user"))[:5]
    return Truth(tuple(usd(user, value) for user, value in top), tuple((user,) for user, _ in top))


@case("Which 3 features spent the least?", "ranking")
def _bottom_3_features(log: Log) -> Truth:
    bottom = ranking(log.requests, column("feature"))[-3:]
    return Truth(tuple(usd(name, value) for name, value in bottom), tuple((name,) for name, _ in bottom))


@case("Which user made the most requests last month?", "ranking")
def _busiest_user(log: Log) -> Truth:
    return _winner(ranking(log.select(NOVEMBER), column("user"), len), "count")


@case("Which day had the highest spend?", "ranking")
def _top_day(log: Log) -> Truth:
    # No rivals: the answer's period ("from 2025-10-01 to ...") names other days first.
    day, value = ranking(log.requests, lambda r: r.at.date().isoformat())[0]
    return Truth((usd(day, value),), (date_names(day),))


@case("why?", "follow_up", follow_up_of=_top_day)
def _top_day_why(log: Log) -> Truth:
    return _winner(ranking(log.select(NOV_18), column("feature")), "usd")


@case("Which hour of the day gets the most requests?", "ranking")
def _top_hour(log: Log) -> Truth:
    hour, value = ranking(log.requests, lambda r: f"{r.at.hour:02d}", len)[0]
    return Truth((n(f"{hour}:00", value),), (hour_names(int(hour)),))


@case("Which weekday has the highest spend?", "ranking")
def _top_weekday(log: Log) -> Truth:
    return _winner(ranking(log.requests, lambda r: WEEKDAYS[r.at.weekday()]), "usd", lambda d: (d, d[:3]))


@case("What share of our spend goes to gpt-4o?", "share")
def _share_gpt4o(log: Log) -> Truth:
    return Truth((pct("share", 100 * spend(log.select(model="gpt-4o")) / spend(log.requests)),))


@case("What share of requests comes from the faq-bot?", "share")
def _share_faq(log: Log) -> Truth:
    return Truth((pct("share", 100 * len(log.select(feature="faq-bot")) / len(log.requests)),))


# The most expensive, slowest and largest requests


def _top_requests(
    count: int, key: Callable[[Request], float], unit: str, period: Period = None, **equals: str
) -> Callable[[Log], Truth]:
    """The `count` requests of the scope with the largest `key`: their ids and values."""

    def truth(log: Log) -> Truth:
        chosen = sorted(log.select(period, **equals), key=lambda r: (-key(r), r.row["request_id"]))
        top = chosen[:count]
        assert key(chosen[count - 1]) != key(chosen[count]), "a tie at the cut: the ranking is ambiguous"
        return Truth(
            tuple(Figure(r.row["request_id"], key(r), unit) for r in top),
            tuple((r.row["request_id"],) for r in top),
        )

    return truth


case("What were our 3 most expensive requests?", "top_requests")(
    _top_requests(3, lambda r: r.row["cost_usd"], "usd")
)
case("Show the 5 slowest requests", "top_requests")(_top_requests(5, lambda r: r.row["latency_ms"], "ms"))
case("What was the largest request by tokens?", "top_requests")(
    _top_requests(1, lambda r: r.row["input_tokens"] + r.row["output_tokens"], "tokens")
)
case("What was the most expensive classifier request in October?", "top_requests")(
    _top_requests(1, lambda r: r.row["cost_usd"], "usd", OCTOBER, feature="classifier")
)


# Comparisons


@case("How did spend last week compare with the week before?", "compare")
def _weeks(log: Log) -> Truth:
    return Truth(change("spend", spend(log.select(LAST_WEEK)), spend(log.select(WEEK_BEFORE))))


@case("What is the month-over-month change in spend?", "compare")
def _month_over_month(log: Log) -> Truth:
    return Truth(change("spend", spend(log.select(NOVEMBER)), spend(log.select(OCTOBER))))


@case("How did the number of requests change last week vs the week before?", "compare")
def _weeks_requests(log: Log) -> Truth:
    return Truth(change("requests", len(log.select(LAST_WEEK)), len(log.select(WEEK_BEFORE))))


@case("Compare assistant and summarizer spend in November", "compare")
def _assistant_vs_summarizer(log: Log) -> Truth:
    return Truth(
        tuple(usd(f, spend(log.select(NOVEMBER, feature=f))) for f in ("assistant", "summarizer")),
        (("assistant",), ("summarizer",)),
    )


@case("Compare the cost per request of gpt-4o and claude-3-5-sonnet", "compare")
def _gpt4o_vs_sonnet(log: Log) -> Truth:
    figures = []
    for model in ("gpt-4o", "claude-3-5-sonnet"):
        chosen = log.select(model=model)
        figures.append(usd(model, spend(chosen) / len(chosen)))
    return Truth(tuple(figures), (("gpt-4o",), ("claude-3-5-sonnet",)))


@case("Compare the error rate in November with October", "compare")
def _error_rates(log: Log) -> Truth:
    figures = []
    for label, period in (("November", NOVEMBER), ("October", OCTOBER)):
        chosen = log.select(period)
        figures.append(pct(label, 100 * errors(chosen) / len(chosen)))
    return Truth(tuple(figures))


# Trends and forecasts


@case("Forecast next month's spend", "forecast", FORECAST)
def _forecast_spend(log: Log) -> Truth:
    return Truth((usd("December forecast", linear_forecast(daily(log.requests), DECEMBER_DAYS)),))


@case("How many requests should we expect next month?", "forecast", FORECAST)
def _forecast_requests(log: Log) -> Truth:
    return Truth((n("December forecast", linear_forecast(daily(log.requests, len), DECEMBER_DAYS)),))


@case("Show daily spend in November", "trend")
def _daily_november(log: Log) -> Truth:
    return Truth((usd("spend", spend(log.select(NOVEMBER))),), series_points=30)


@case("Show hourly requests on November 18", "trend")
def _hourly_nov_18(log: Log) -> Truth:
    return Truth((n("requests", len(log.select(NOV_18))),), series_points=24)


@case("What was the average daily spend in November?", "trend")
def _average_daily_november(log: Log) -> Truth:
    return Truth((usd("average per day", spend(log.select(NOVEMBER)) / 30),))


# Unit economics


@case("What is our average cost per request?", "unit_cost")
def _cost_per_request(log: Log) -> Truth:
    return Truth((usd("per request", spend(log.requests) / len(log.requests)),))


@case("What is the cost per 1k requests for faq-bot?", "unit_cost")
def _faq_per_1k(log: Log) -> Truth:
    chosen = log.select(feature="faq-bot")
    return Truth((usd("per 1k requests", 1000 * spend(chosen) / len(chosen)),))


@case("What was the average spend per user last month?", "unit_cost")
def _per_user(log: Log) -> Truth:
    chosen = log.select(NOVEMBER)
    return Truth((usd("per user", spend(chosen) / len({r.row["user"] for r in chosen})),))


@case("What is the average spend per feature in October?", "unit_cost")
def _per_feature(log: Log) -> Truth:
    chosen = log.select(OCTOBER)
    return Truth((usd("per feature", spend(chosen) / len({r.row["feature"] for r in chosen})),))


@case("What does a summarizer request cost on average?", "unit_cost")
def _summarizer_per_request(log: Log) -> Truth:
    chosen = log.select(feature="summarizer")
    return Truth((usd("per request", spend(chosen) / len(chosen)),))


@case("What do we pay per 1M tokens on gpt-4o-mini?", "unit_cost")
def _mini_per_mtok(log: Log) -> Truth:
    chosen = log.select(model="gpt-4o-mini")
    return Truth((usd("per 1M tokens", 1e6 * spend(chosen) / tokens(chosen)),))


# Latency and size


def _latencies(requests: Iterable[Request]) -> list[float]:
    return [float(r.row["latency_ms"]) for r in requests]


@case("What are our p50, p95 and p99 latencies?", "percentiles")
def _latency_percentiles(log: Log) -> Truth:
    values = _latencies(log.requests)
    return Truth(tuple(ms(f"p{p}", percentile(values, p)) for p in (50, 95, 99)))


@case("What was the p90 latency of gpt-4o last week?", "percentiles")
def _gpt4o_p90(log: Log) -> Truth:
    return Truth((ms("p90", percentile(_latencies(log.select(LAST_WEEK, model="gpt-4o")), 90)),))


@case("What is the p99 latency of claude-3-5-haiku?", "percentiles")
def _haiku_p99(log: Log) -> Truth:
    return Truth((ms("p99", percentile(_latencies(log.select(model="claude-3-5-haiku")), 99)),))


@case("What is the p95 of output tokens for the summarizer?", "percentiles")
def _summarizer_output_p95(log: Log) -> Truth:
    values = [float(r.row["output_tokens"]) for r in log.select(feature="summarizer")]
    return Truth((Figure("p95", percentile(values, 95), "tokens"),))


@case("What is the median number of input tokens per request?", "percentiles")
def _median_input(log: Log) -> Truth:
    return Truth(
        (Figure("p50", percentile([float(r.row["input_tokens"]) for r in log.requests], 50), "tokens"),)
    )


@case("How many requests took over 2 s?", "slo")
def _over_2s(log: Log) -> Truth:
    return Truth((n("over 2,000 ms", sum(r.row["latency_ms"] > 2000 for r in log.requests)),))


@case("How many assistant requests were slower than 2 seconds in November?", "slo")
def _assistant_over_2s(log: Log) -> Truth:
    chosen = log.select(NOVEMBER, feature="assistant")
    return Truth((n("over 2,000 ms", sum(r.row["latency_ms"] > 2000 for r in chosen)),))


# What-ifs


def route(log: Log, share_pct: float, target: str, **equals: str) -> float:
    """Monthly saving of sending `share_pct` % of the scope to `target`."""
    chosen = log.select(None, **equals)
    saving = sum(log.cost_at(r, r.row["model"]) - log.cost_at(r, target) for r in chosen)
    return monthly(share_pct / 100 * saving, chosen)


@case("What would moving half the classifier traffic to gpt-4o-mini save?", "what_if", WHAT_IF)
def _route_classifier(log: Log) -> Truth:
    return Truth((usd("monthly saving", route(log, 50, "gpt-4o-mini", feature="classifier")),))


@case("and for faq-bot?", "follow_up", WHAT_IF, follow_up_of=_route_classifier)
def _route_faq(log: Log) -> Truth:
    return Truth((usd("monthly saving", route(log, 50, "gpt-4o-mini", feature="faq-bot")),))


@case("What would routing all summarizer requests to claude-3-5-haiku save per month?", "what_if", WHAT_IF)
def _route_summarizer(log: Log) -> Truth:
    return Truth((usd("monthly saving", route(log, 100, "claude-3-5-haiku", feature="summarizer")),))


@case("What would moving 30% of gpt-4o traffic to gpt-4o-mini save?", "what_if", WHAT_IF)
def _route_gpt4o(log: Log) -> Truth:
    return Truth((usd("monthly saving", route(log, 30, "gpt-4o-mini", model="gpt-4o")),))


@case("What would routing the short assistant requests to gpt-4o-mini save?", "what_if", WHAT_IF)
def _route_short(log: Log) -> Truth:
    chosen = log.select(feature="assistant")
    median = statistics.median([r.row["input_tokens"] + r.row["output_tokens"] for r in chosen])
    short = [r for r in chosen if r.row["input_tokens"] + r.row["output_tokens"] <= median]
    saving = sum(log.cost_at(r, r.row["model"]) - log.cost_at(r, "gpt-4o-mini") for r in short)
    return Truth((usd("monthly saving", monthly(saving, chosen)),))


@case("What would prompt caching a 1,024-token shared prefix save for faq-bot?", "what_if", WHAT_IF)
def _prompt_cache(log: Log) -> Truth:
    prefix, chosen = 1024, log.select(feature="faq-bot")
    saving = 0.0
    for r in chosen:
        if r.row["input_tokens"] >= prefix:
            price = log.prices[r.row["model"]]
            saving += max(0, prefix - r.row["cached_tokens"]) * (price.input - price.cached_input) / 1e6
    return Truth((usd("monthly saving", monthly(saving, chosen)),))


@case("What if we cap output at 500 tokens?", "what_if", WHAT_IF)
def _cap_output(log: Log) -> Truth:
    saving = sum(
        max(0, r.row["output_tokens"] - 500) * log.prices[r.row["model"]].output for r in log.requests
    )
    return Truth((usd("monthly saving", monthly(saving / 1e6, log.requests)),))


@case("What would a 50% cache hit rate save?", "what_if", WHAT_IF)
def _cache_hits(log: Log) -> Truth:
    saving = 0.5 * sum(log.cost_at(r, r.row["model"]) for r in log.requests)
    return Truth((usd("monthly saving", monthly(saving, log.requests)),))


@case("How much would moving nightly-report to the batch API save?", "what_if", WHAT_IF)
def _batch(log: Log) -> Truth:
    chosen = log.select(feature="nightly-report")
    saving = sum(log.cost_at(r, r.row["model"]) * log.prices[r.row["model"]].batch_discount for r in chosen)
    return Truth((usd("monthly saving", monthly(saving, chosen)),))


@case("What if we trimmed context to 4,000 tokens?", "what_if", WHAT_IF)
def _trim(log: Log) -> Truth:
    limit = 4000
    saving = sum(
        log.cost_at(r, r.row["model"])
        - log.cost_at(
            r, r.row["model"], min(r.row["input_tokens"], limit), min(r.row["cached_tokens"], limit)
        )
        for r in log.requests
    )
    return Truth((usd("monthly saving", monthly(saving, log.requests)),))


@case("What if gpt-4o prices went up 20%?", "what_if", WHAT_IF)
def _price_change(log: Log) -> Truth:
    chosen = log.select(model="gpt-4o")
    return Truth((usd("monthly extra cost", monthly(0.2 * spend(chosen), chosen)),))


@case("What if our traffic grows by 25%?", "what_if", WHAT_IF)
def _growth(log: Log) -> Truth:
    return Truth((usd("monthly extra cost", monthly(0.25 * spend(log.requests), log.requests)),))


# Capacity


def _per_second(requests: Iterable[Request], weight: Callable[[Request], float]) -> float:
    seconds: dict[str, float] = defaultdict(float)
    for r in requests:
        seconds[r.row["timestamp"][:19]] += weight(r)
    return max(seconds.values())


@case("What is our peak requests per second?", "capacity")
def _peak_rps(log: Log) -> Truth:
    return Truth((Figure("peak requests/s", _per_second(log.requests, lambda r: 1), "per_s"),))


@case("What is our peak tokens per second?", "capacity")
def _peak_tps(log: Log) -> Truth:
    peak = _per_second(log.requests, lambda r: r.row["input_tokens"] + r.row["output_tokens"])
    return Truth((Figure("peak tokens/s", peak, "per_s"),))


# Anomalies


@case("Were there any spend anomalies?", "anomalies")
def _spend_anomaly(log: Log) -> Truth:
    return Truth((usd("2025-11-18", spend(log.select(NOV_18))),), (date_names("2025-11-18"), ("summarizer",)))


@case("Which day had an unusual error rate?", "anomalies")
def _error_anomaly(log: Log) -> Truth:
    chosen = log.select((_day(11, 5), _day(11, 6)), feature="classifier")
    rate = pct("classifier error rate on 2025-11-05", 100 * errors(chosen) / len(chosen))
    return Truth((rate,), (date_names("2025-11-05"), ("classifier",)))


# Follow-ups


@case("How much did the assistant feature spend last week?", "total")
def _assistant_last_week(log: Log) -> Truth:
    return Truth((usd("spend", spend(log.select(LAST_WEEK, feature="assistant"))),))


@case("and for faq-bot?", "follow_up", follow_up_of=_assistant_last_week)
def _faq_last_week(log: Log) -> Truth:
    return Truth((usd("spend", spend(log.select(LAST_WEEK, feature="faq-bot"))),))


@case("what about last month?", "follow_up", follow_up_of=_faq_last_week)
def _faq_last_month(log: Log) -> Truth:
    return Truth((usd("spend", spend(log.select(NOVEMBER, feature="faq-bot"))),))


@case("break that down by user", "follow_up", follow_up_of=_faq_last_month)
def _faq_last_month_by_user(log: Log) -> Truth:
    name, value = ranking(log.select(NOVEMBER, feature="faq-bot"), column("user"))[0]
    return Truth((usd(name, value),), ((name,),))


@case("How many requests did we have in October?", "total")
def _requests_october(log: Log) -> Truth:
    return Truth((n("requests", len(log.select(OCTOBER))),))


@case("what about last month?", "follow_up", follow_up_of=_requests_october)
def _requests_november(log: Log) -> Truth:
    return Truth((n("requests", len(log.select(NOVEMBER))),))


@case("Which model cost the most in October?", "ranking")
def _top_model_october(log: Log) -> Truth:
    return _winner(ranking(log.select(OCTOBER), column("model")), "usd")


@case("and for the summarizer?", "follow_up", follow_up_of=_top_model_october)
def _top_model_october_summarizer(log: Log) -> Truth:
    return _winner(ranking(log.select(OCTOBER, feature="summarizer"), column("model")), "usd")


# Unknown names and what the data cannot answer


@case("How much did the chatbot-x feature spend?", "unknown")
def _unknown_feature(log: Log) -> Truth:
    return Truth(names=(("chatbot-x",),), unknown=("chatbot-x",))


@case("How much did user u-99 spend last month?", "unknown")
def _unknown_user(log: Log) -> Truth:
    return Truth(names=(("u-99",),), unknown=("u-99",))


@case("What was our spend in October, and what was our carbon footprint?", "unanswerable")
def _part_unanswerable(log: Log) -> Truth:
    return Truth((usd("spend", spend(log.select(OCTOBER))),), (("carbon",),))


# --- checking an answer ------------------------------------------------------------------------------------

_NUMBER = re.compile(r"(?<![\w.])((?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?)")


def numbers_in(text: str) -> list[tuple[float, float]]:
    """Every number written in `text` ($, thousands separators and % allowed), with half a unit of its
    last digit (what rounding to that digit may have cost)."""
    found = []
    for match in _NUMBER.finditer(text):
        digits = match.group(1).replace(",", "")
        decimals = len(digits.partition(".")[2])
        found.append((float(digits), 0.5 * 10**-decimals))
    return found


def _close(expected: float, actual: float, tolerance: float, slack: float = 0.0) -> bool:
    return abs(abs(actual) - abs(expected)) <= tolerance * abs(expected) + slack + 1e-12


def _position(text: str, name: str) -> int | None:
    """Where `name` is first written in `text` as a whole word (None: nowhere)."""
    found = re.search(rf"(?<![\w-]){re.escape(name)}(?!\w|-\w)", text, re.IGNORECASE)
    return found.start() if found else None


def _mentions(text: str, name: str) -> bool:
    return _position(text, name) is not None


def check(case: Case, truth: Truth, answer: dict[str, Any] | None) -> list[str]:
    """What is wrong with `answer` for `case` (empty: right)."""
    if not isinstance(answer, dict):
        return ["the report has no answer"]
    text = str(answer.get("text") or "")
    written = numbers_in(text)
    values = [
        float(f["value"]) for f in answer.get("figures") or [] if isinstance(f.get("value"), int | float)
    ]
    problems = []
    for figure in truth.figures:
        shown = f"{figure.label}={figure.value:,.6g}"
        if not any(_close(figure.value, v, case.tolerance, slack) for v, slack in written):
            problems.append(f"text lacks {shown}")
        candidates = values + ([100 * v for v in values] if figure.unit == "pct" else [])
        if not any(_close(figure.value, v, case.tolerance) for v in candidates):
            problems.append(f"figures lack {shown}")
    for spellings in truth.names:
        if not any(_mentions(text, name) for name in spellings):
            problems.append(f"text does not name {spellings[0]!r}")
    winner = (
        [p for p in (_position(text, name) for name in truth.names[0]) if p is not None]
        if truth.rivals
        else []
    )
    if winner:
        ahead = [r for r in truth.rivals if (p := _position(text, r)) is not None and p < min(winner)]
        if ahead:
            problems.append(f"text names {ahead[0]!r} before {truth.names[0][0]!r}")
    for word in truth.absent:
        if _mentions(text, word):
            problems.append(f"text says {word!r} (a wrong reading)")
    if truth.unknown:
        listed = {str(u.get("text", "")).lower(): u for u in answer.get("unknown") or []}
        for name in truth.unknown:
            entry = listed.get(name.lower())
            if entry is None:
                problems.append(f"unknown does not list {name!r}")
            elif not entry.get("suggestions"):
                problems.append(f"no suggestions for {name!r}")
    if truth.table_rows is not None:
        rows = (answer.get("table") or {}).get("rows") or []
        if len(rows) != truth.table_rows:
            problems.append(f"table has {len(rows)} rows, not {truth.table_rows}")
    if truth.series_points is not None:
        points = (answer.get("series") or {}).get("points") or []
        if len(points) != truth.series_points:
            problems.append(f"series has {len(points)} points, not {truth.series_points}")
    return problems


def threads(cases: Sequence[Case] = CASES) -> list[list[int]]:
    """The cases as conversations: each root case followed by its chain of follow-ups, in order."""
    chains: dict[int, list[int]] = {}
    root_of: dict[int, int] = {}
    for index, item in enumerate(cases):
        if item.follow_up_of is None:
            root_of[index] = index
            chains[index] = [index]
        else:
            root = root_of[item.follow_up_of]
            assert chains[root][-1] == item.follow_up_of, (
                f"case {index} does not follow the end of its thread"
            )
            root_of[index] = root
            chains[root].append(index)
    return list(chains.values())


def summary(truths: dict[int, Truth]) -> str:
    """One line per case with its expected figures (for checking the truths by eye)."""
    lines = []
    for index, truth in truths.items():
        item = CASES[index]
        figures = ", ".join(f"{f.label}={f.value:,.6g} {f.unit}" for f in truth.figures)
        names = " ".join(spellings[0] for spellings in truth.names)
        lines.append(f"{item.slug}: {figures} {names}".rstrip())
    return "\n".join(lines)


def truths(log: Log) -> dict[int, Truth]:
    """Every case's true answer over `log`; each figure must be a finite number."""
    found = {index: item.truth(log) for index, item in enumerate(CASES)}
    for index, truth in found.items():
        assert all(math.isfinite(f.value) for f in truth.figures), CASES[index].slug
    return found


if __name__ == "__main__":  # cd tests && ../.venv/bin/python -m support.evaluation
    from support.evaluation_log import rows

    print(summary(truths(Log(rows()))))
