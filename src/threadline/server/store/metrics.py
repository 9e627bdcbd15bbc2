"""How the dashboard's figures follow from the rollups (shared by every backend).

A store answers ``Store.metrics`` with a few aggregate queries over its trace and
session rollups (never spans) and hands the rows to ``build``, so both backends apply
the same bucket rules:

- Buckets are whole UTC hours, days or weeks (weeks start on Monday); a query's range
  is widened to whole buckets. A bucket runs from its start to its last microsecond,
  inclusive, which is how the lists read ``start``/``end``: the list opened from a bar
  shows the rows that bar counts.
- **Counts** (sessions, traces, active users, errors) count a row in **every bucket it
  was active in**, as the lists' time filter does: a session from 23:50 to 00:10 counts
  on both days. Summed over buckets they may exceed the number of distinct rows.
- **Amounts** (cost, tokens, score averages) count once, in the bucket where their
  trace (or, for a session's own scores, the session) started, so they add up.
- **By model**, cost and tokens are those of each trace's spans of that model
  (``store/model_usage.py``), in the bucket where the trace started; spans without a
  model form the model ``""``.
- **Top users** add up each user's traces that started in the range (as amounts do).
- Grouped by tag, a trace counts in the group of each of its tags; a session in the
  group of each tag any of its traces carries (whenever they ran). Traces without one
  form the group ``None``. Only the ``MAX_GROUPS`` groups with the most trace-bucket
  counts are kept, and only theirs are counted: what the rows hold (every tag, model
  and score name of a project) has no bound, and each counted one takes a list per
  bucket.
- Per metric and group, the ``query.max_models`` models using the most are a series
  each; the rest are added up in one series of model ``None``. The
  ``query.max_score_names`` score names with the most values in the range have series
  (the settings ``metrics_max_models`` and ``metrics_max_score_names``).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from threadline.server.errors import BadRequest
from threadline.server.model import (
    MAX_BUCKETS,
    MAX_GROUPS,
    METRIC_NAMES,
    SCORE_METRIC_PREFIX,
    TOP_ROWS,
    Distribution,
    MetricBucket,
    Metrics,
    MetricSeries,
    MetricsQuery,
    TopSession,
    TopUser,
    datetime_to_ns,
    ns_to_datetime,
)
from threadline.server.store.model_usage import PICO

_HOUR_NS = 3600 * 10**9
WIDTH_NS: dict[MetricBucket, int] = {"hour": _HOUR_NS, "day": 24 * _HOUR_NS, "week": 168 * _HOUR_NS}
# The Unix epoch was a Thursday: week buckets are aligned to the Monday 4 days later.
_WEEK_ORIGIN_NS = 4 * 24 * _HOUR_NS
# A bucket's last instant is one microsecond before the next bucket (datetimes in URLs
# and query strings have microseconds).
LAST_INSTANT_NS = 1000
# The amounts of a trace row, in the order the stores' rows hold them.
_AMOUNTS = ("cost_usd", "input_tokens", "output_tokens", "total_tokens")
_BY_MODEL = tuple(f"{name}_by_model" for name in _AMOUNTS)


@dataclass(frozen=True, slots=True)
class Range:
    """The buckets of a query: ``count`` buckets of ``width`` ns from ``origin``."""

    origin: int
    width: int
    count: int

    @property
    def end(self) -> int:
        return self.origin + self.width * self.count

    @property
    def last_instant(self) -> int:
        """The latest start a row may have to count (the range's last microsecond)."""
        return self.end - LAST_INSTANT_NS

    def starts(self) -> list[datetime]:
        return [ns_to_datetime(self.origin + i * self.width) for i in range(self.count)]


def bucket_range(query: MetricsQuery) -> Range:
    """The query's range widened to whole buckets; 400 when it is empty or too long."""
    width = WIDTH_NS[query.bucket]
    offset = week_offset(query.bucket)
    start, end = datetime_to_ns(query.start), datetime_to_ns(query.end)
    if end <= start:
        raise BadRequest("end must be after start")
    origin = (start - offset) // width * width + offset
    count = -(-(end - origin) // width)
    if count > MAX_BUCKETS:
        raise BadRequest(f"{count} buckets asked for; at most {MAX_BUCKETS}: use a longer bucket")
    if origin < -(2**63) or origin + count * width > 2**63 - 1:
        raise BadRequest("the range must lie between the years 1678 and 2262")
    return Range(origin, width, count)


def week_offset(bucket: MetricBucket) -> int:
    """Where buckets of this width are counted from: weeks from the first Monday."""
    return _WEEK_ORIGIN_NS if bucket == "week" else 0


def bucket_end(start: datetime, bucket: MetricBucket) -> datetime:
    """The last instant of the bucket starting at ``start`` (what a bar's link filters)."""
    return start + timedelta(microseconds=WIDTH_NS[bucket] // 1000 - 1)


@dataclass(slots=True)
class MetricsRows:
    """What a store's aggregate queries found, in the shapes ``build`` reads.

    ``first``/``last`` are bucket indexes (0-based, clamped to the range) of the first
    and last bucket a row was active in; ``started`` whether the row started inside the
    range (only then do its amounts count, in bucket ``first``).

    Trace costs (of ``traces``, ``user_totals`` and ``models``) are whole picodollars
    (``model_usage.picodollars`` of each trace's cost, summed), None where no trace's
    cost is known: ``build`` adds integers, which come out the same in any order and
    however a store has grouped them (a filter that keeps every trace gives the cost of
    the unfiltered dashboard), and divides once a figure.
    """

    # (group, user id, first, last, started, traces, error traces, cost, input, output,
    # total tokens): one scan of the traces serves the trace series, the active users
    # and, when not grouped, the users' totals
    traces: list[tuple] = field(default_factory=list)
    # (group, first, last, sessions, sessions with an error)
    sessions: list[tuple] = field(default_factory=list)
    # (score name, group, first, value sum, value count): scores of rows started in range
    scores: list[tuple] = field(default_factory=list)
    # (trace count, duration ns, cost) of every session active in the range (ungrouped)
    session_figures: list[tuple] = field(default_factory=list)
    # (user id, traces, error traces, cost) of every user active in the range; None
    # when ``traces`` is not grouped, which then holds them
    user_totals: list[tuple] | None = None
    # (session id, start ns, traces, error traces, cost): the top rows by cost and errors
    top_sessions_by_cost: list[tuple] = field(default_factory=list)
    top_sessions_by_errors: list[tuple] = field(default_factory=list)
    # (group, model, bucket, cost or None, input, output, total tokens): usage by model
    # of the traces started in the range, by their start bucket
    models: list[tuple] = field(default_factory=list)
    # Active users per bucket when a store has them counted (``traces`` then carries no
    # user ids), and the distributions when it has them computed.
    active_users: list[int] | None = None
    # Or per group (ClickHouse's labelled read: ``traces`` then carries no user ids).
    active_users_by_group: dict[str | None, list[int]] | None = None
    distributions: dict[str, Distribution] | None = None


def build(query: MetricsQuery, span: Range, rows: MetricsRows, metrics: Sequence[str]) -> Metrics:
    """The series, distributions and top lists of ``rows``."""
    n = span.count
    counts: dict[tuple[str, str | None], list[float]] = defaultdict(lambda: [0.0] * n)
    amounts: dict[tuple[str, str | None], list[float | None]] = defaultdict(lambda: [None] * n)
    # The groups are chosen before anything is counted, so only theirs take lists.
    weight: dict[str | None, float] = defaultdict(float)
    for group, _, first, last, _, count, *_ in rows.traces:
        weight[group] += count * (last - first + 1)
    grouped = query.group_by is not None
    groups = sorted(weight, key=lambda g: (-weight[g], g is None, g or ""))[:MAX_GROUPS]
    if not grouped:
        groups = [None]
    kept = set(groups)
    active: dict[str | None, list[set[str]]] = defaultdict(lambda: [set() for _ in range(n)])
    user_totals: dict[str, list] = {}
    derive_totals = rows.user_totals is None
    # This loop sees a row per (user, buckets) and dominates the time: the lists of
    # each group are looked up once.
    lists: dict[str | None, tuple] = {}
    for group, user, first, last, started, count, errors, cost, tin, tout, ttotal in rows.traces:
        if group not in kept:
            continue
        found = lists.get(group)
        if found is None:
            found = lists[group] = (
                counts[("traces", group)],
                counts[("error_traces", group)],
                active[group],
                [amounts[(name, group)] for name in _AMOUNTS],
            )
        traces, error_traces, users, amount_lists = found
        for i in range(first, last + 1):
            traces[i] += count
            error_traces[i] += errors
            if user is not None:
                users[i].add(user)
        if user is not None and derive_totals and started:
            total = user_totals.get(user)
            if total is None:
                user_totals[user] = [count, errors, cost]
            else:
                total[0] += count
                total[1] += errors
                if cost is not None:
                    total[2] = cost if total[2] is None else total[2] + cost
        if started:
            for values, value in zip(amount_lists, (cost, tin, tout, ttotal), strict=True):
                if value is not None:
                    _add(values, first, value)
    for group, first, last, count, errors in rows.sessions:
        if group not in kept:
            continue
        sessions, error_sessions = counts[("sessions", group)], counts[("error_sessions", group)]
        for i in range(first, last + 1):
            sessions[i] += count
            error_sessions[i] += errors
    score_sums: dict[tuple[str, str | None], list[list[float]]] = defaultdict(
        lambda: [[0.0, 0.0] for _ in range(n)]
    )
    score_weight: dict[str, float] = defaultdict(float)
    for name, group, _, _, value_count in rows.scores:
        if group in kept:
            score_weight[name] += value_count
    score_names = set(
        sorted(score_weight, key=lambda k: (-score_weight[k], k))[: max(0, query.max_score_names)]
    )
    for name, group, first, value_sum, value_count in rows.scores:
        if group not in kept or name not in score_names:
            continue
        cell = score_sums[(name, group)][first]
        cell[0] += value_sum or 0.0
        cell[1] += value_count
    by_model = _usage_by_model(rows.models, kept, n, max(0, query.max_models))
    series: list[MetricSeries] = []
    for group in groups:
        for metric in metrics:
            if metric in _BY_MODEL:
                series += _model_series(metric, group, by_model)
                continue
            if metric == "active_users" and rows.active_users is not None:
                values = [float(c) for c in rows.active_users]
            elif metric == "active_users" and rows.active_users_by_group is not None:
                values = [float(c) for c in rows.active_users_by_group.get(group, [0] * n)]
            else:
                values = _values(metric, group, n, counts, amounts, active)
            if values is not None:
                series.append(MetricSeries(metric=metric, group=group, values=values))
        for name, group_of in sorted(k for k in score_sums if k[1] == group):
            del group_of
            cells = score_sums[(name, group)]
            series.append(
                MetricSeries(
                    metric=f"{SCORE_METRIC_PREFIX}{name}",
                    group=group,
                    values=[s / c if c else None for s, c in cells],
                )
            )
    totals = (
        rows.user_totals
        if rows.user_totals is not None
        else [(u, *total) for u, total in user_totals.items()]
    )
    # Sorted as tuples: only the rows kept become models (a month has thousands of users).
    by_cost = sorted((t for t in totals if t[3]), key=lambda t: (-t[3], t[0]))[:TOP_ROWS]
    by_errors = sorted((t for t in totals if t[2]), key=lambda t: (-t[2], t[0]))[:TOP_ROWS]
    return Metrics(
        start=ns_to_datetime(span.origin),
        end=ns_to_datetime(span.end),
        bucket=query.bucket,
        group_by=_group_label(query),
        buckets=span.starts(),
        series=series,
        distributions=(
            rows.distributions
            if rows.distributions is not None
            else _distributions(rows.session_figures)
        ),
        top_users_by_cost=[_top_user(t) for t in by_cost],
        top_users_by_errors=[_top_user(t) for t in by_errors],
        top_sessions_by_cost=[_top_session(r) for r in rows.top_sessions_by_cost],
        top_sessions_by_errors=[_top_session(r) for r in rows.top_sessions_by_errors],
    )


def user_totals(traces: Iterable[tuple]) -> list[tuple]:
    """Each user's (user, traces, with an error, cost) of trace rows (groups, user, first,
    last, started, traces, errors, cost, ...) that started in the range: a store that
    reads a trace's groups together (not a row per group) counts it once this way."""
    totals: dict[str, list] = {}
    for _, user, _, _, started, count, errors, cost, *_ in traces:
        if user is None or not started:
            continue
        total = totals.setdefault(user, [0, 0, None])
        total[0] += count
        total[1] += errors
        if cost is not None:
            total[2] = cost if total[2] is None else total[2] + cost
    return [(user, *total) for user, total in totals.items()]


def check_metrics(names: Iterable[str]) -> list[str]:
    """The metric names asked for (all when none), 400 for an unknown one."""
    wanted = list(dict.fromkeys(names)) or list(METRIC_NAMES)
    unknown = [m for m in wanted if m not in METRIC_NAMES]
    if unknown:
        said = f"unknown metric {unknown[0]!r}; known: {', '.join(METRIC_NAMES)}"
        if unknown[0].startswith("score:"):
            said += " (a score:NAME series comes in every answer, whatever the metrics asked)"
        raise BadRequest(said)
    return wanted


def parse_group_by(
    text: str | None,
) -> tuple[Literal["tag", "metadata"] | None, str | None]:
    """``tag`` or ``metadata:KEY`` into (group_by, group_key); 400 for anything else."""
    if not text:
        return None, None
    if text == "tag":
        return "tag", None
    kind, sep, key = text.partition(":")
    if kind == "metadata" and sep and key.strip():
        return "metadata", key.strip()
    raise BadRequest(f"group_by {text!r} is neither 'tag' nor 'metadata:KEY'")


def _group_label(query: MetricsQuery) -> str | None:
    if query.group_by == "metadata":
        return f"metadata:{query.group_key}"
    return query.group_by


def _add(values: list[float | None], i: int, amount: float) -> None:
    current = values[i]
    values[i] = amount if current is None else current + amount


def _values(
    metric: str,
    group: str | None,
    n: int,
    counts: dict[tuple[str, str | None], list[float]],
    amounts: dict[tuple[str, str | None], list[float | None]],
    active: dict[str | None, list[set[str]]],
) -> list[float | None] | None:
    if metric == "active_users":
        sets = active.get(group)
        return [float(len(s)) for s in sets] if sets else [0.0] * n
    if metric in ("session_error_rate", "trace_error_rate"):
        kind = "sessions" if metric == "session_error_rate" else "traces"
        totals = counts.get((kind, group), [0.0] * n)
        errors = counts.get((f"error_{kind}", group), [0.0] * n)
        return [e / t if t else None for e, t in zip(errors, totals, strict=True)]
    if metric in ("cost_usd", "input_tokens", "output_tokens", "total_tokens"):
        values = amounts.get((metric, group), [None] * n)
        # Tokens are known to be zero where nothing ran; cost stays unknown (None).
        if metric == "cost_usd":
            return [None if v is None else v / PICO for v in values]
        return [v or 0.0 for v in values]
    return list[float | None](counts.get((metric, group), [0.0] * n))


def _usage_by_model(
    models: Iterable[tuple], kept: set[str | None], n: int, max_models: int
) -> dict[tuple[str, str | None, str | None], list[float | None]]:
    """Per by-model metric, group of ``kept`` and model, the values per bucket: of the
    ``max_models`` models using the most in the group, and of the rest added up as
    model None. A project's models have no bound: only these take lists."""
    totals: dict[tuple[str, str | None, str], float] = defaultdict(float)
    for group, model, _, *values in models:
        if group in kept:
            for name, value in zip(_BY_MODEL, values, strict=True):
                if value is not None:
                    totals[(name, group, model)] += value
    ranked = sorted(totals, key=lambda k: (k[0], k[1] is None, k[1] or "", -totals[k], k[2]))
    shown: set[tuple[str, str | None, str]] = set()
    per_list: dict[tuple[str, str | None], int] = defaultdict(int)
    for key in ranked:
        if per_list[key[:2]] < max_models:
            per_list[key[:2]] += 1
            shown.add(key)
    by_model: dict[tuple[str, str | None, str | None], list[float | None]] = defaultdict(
        lambda: [None] * n
    )
    for group, model, bucket, *values in models:
        if group in kept:
            for name, value in zip(_BY_MODEL, values, strict=True):
                if value is not None:
                    shown_as = model if (name, group, model) in shown else None
                    _add(by_model[(name, group, shown_as)], bucket, value)
    return by_model


def _model_series(
    metric: str,
    group: str | None,
    by_model: dict[tuple[str, str | None, str | None], list[float | None]],
) -> list[MetricSeries]:
    """A series per model that used something, the largest total first, then the rest
    added up (model None). Tokens are zero where nothing ran; cost stays unknown (None)."""
    found = [
        (model, v) for (name, g, model), v in by_model.items() if name == metric and g == group
    ]
    found.sort(key=lambda mv: (mv[0] is None, -sum(x or 0.0 for x in mv[1]), mv[0] or ""))
    tokens = not metric.startswith("cost")
    return [
        MetricSeries(
            metric=metric,
            group=group,
            model=model,
            values=(
                [v or 0.0 for v in values]
                if tokens
                else [None if v is None else v / PICO for v in values]
            ),
        )
        for model, values in found
        # A cost known to be zero is a figure; tokens all zero are none.
        if (any(values) if tokens else any(v is not None for v in values))
    ]


def percentile(sorted_values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile of ascending values (None for none)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p * len(sorted_values)))
    return sorted_values[rank - 1]


def _distribution(values: list[float]) -> Distribution:
    values.sort()
    return Distribution(
        count=len(values),
        p50=percentile(values, 0.5),
        p95=percentile(values, 0.95),
        max=values[-1] if values else None,
    )


def _distributions(figures: list[tuple]) -> dict[str, Distribution]:
    return {
        "turns_per_session": _distribution([float(t) for t, _, _ in figures]),
        "session_duration_ms": _distribution([d / 1e6 for _, d, _ in figures]),
        # Sessions whose cost is unknown are left out rather than counted as free.
        "session_cost_usd": _distribution([c for _, _, c in figures if c is not None]),
    }


def _top_user(row: tuple) -> TopUser:
    user_id, traces, errors, cost = row
    return TopUser(
        user_id=user_id,
        trace_count=traces,
        error_count=errors,
        cost_usd=None if cost is None else cost / PICO,
    )


def _top_session(row: tuple) -> TopSession:
    session_id, start_ns, traces, errors, cost = row
    return TopSession(
        session_id=session_id,
        start_time=ns_to_datetime(start_ns),
        trace_count=traces,
        error_count=errors,
        cost_usd=cost,
    )


def utc_now() -> datetime:
    return datetime.now(UTC)
