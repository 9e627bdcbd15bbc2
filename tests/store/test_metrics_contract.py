"""The dashboard's metrics on every backend: exact values on known data, and the figures
the lists add up to when asked for a bar's bucket (what clicking it opens)."""

from __future__ import annotations

import dataclasses
import time
from datetime import datetime

import pytest

from tests.spans import span_record, trace_member
from tests.store import test_contract as contract
from threadline.server.model import (
    METRIC_NAMES,
    Metrics,
    MetricsQuery,
    SessionQuery,
    SpanRecord,
    TraceQuery,
    UserQuery,
    ns_to_datetime,
)
from threadline.server.retention import RetentionService
from threadline.server.store import Store
from threadline.server.store.metrics import bucket_end
from threadline.server.store.model_usage import PICO, picodollars

# The contract suite's backends (SQLite, ClickHouse on chDB) and its score helper.
backend = contract.backend
store = contract.store
score = contract.score

MINUTE = 60 * 10**9
HOUR = 60 * MINUTE
# An hour boundary (2026-09-21 13:00 UTC).
H0 = 1_790_000_000_000_000_000 // HOUR * HOUR


def span(
    trace: int,
    start_min: int,
    length_min: int,
    *,
    session: str | None = None,
    user: str | None = None,
    error: bool = False,
    tokens: tuple[int, int] | None = None,
    cost: float | None = None,
    tags: list[str] | None = None,
    version: str | None = None,
) -> SpanRecord:
    """A one-span trace starting ``start_min`` minutes after H0."""
    return span_record(
        trace,
        trace,
        H0 + start_min * MINUTE,
        length_min * MINUTE,
        name=f"turn-{trace}",
        status="error" if error else "ok",
        input_tokens=tokens[0] if tokens else None,
        output_tokens=tokens[1] if tokens else None,
        total_tokens=sum(tokens) if tokens else None,
        cost_usd=cost,
        session_id=session,
        user_id=user,
        tags=tags or [],
        metadata={"app_version": version} if version else {},
    )


def fill(store: Store) -> int:
    project = store.create_project("p").id
    store.write_spans(
        project,
        [
            span(
                1, 10, 5, session="a", user="u1", cost=1.0, tokens=(10, 5), tags=["x"], version="1"
            ),
            span(
                2,
                70,
                5,
                session="a",
                user="u1",
                error=True,
                cost=2.0,
                tokens=(20, 10),
                tags=["y"],
                version="2",
            ),
            # Active in hours 0 and 1.
            span(3, 50, 15, session="b", user="u2", tokens=(1, 1), tags=["x", "y"], version="1"),
            span(4, 130, 1, cost=0.5),
            # Before the range: never counted.
            span(5, -30, 10, session="c", user="u3", cost=9.0, error=True),
        ],
    )
    store.write_scores(
        project,
        [
            score("s1", "quality", 1.0, trace=1),
            score("s2", "quality", 0.0, trace=2),
            score("s3", "quality", 0.5, trace=2),
            score("s4", "helpful", True, session="a"),
            score("s5", "tone", "warm", trace=1),  # a label: no average
        ],
    )
    # Another project's rows are never counted.
    other = store.create_project("other").id
    store.write_spans(other, [span(9, 10, 5, session="a", user="u1", cost=5.0)])
    return project


def refreshed(store: Store) -> Store:
    """``store`` once its dashboard figures are up to date: ClickHouse derives them in
    the background (a pass, run here at once); SQLite keeps them on write."""
    store.refresh_metrics()
    return store


def query(**fields) -> MetricsQuery:
    return MetricsQuery(
        start=ns_to_datetime(H0 + 5 * MINUTE),  # widened to H0
        end=ns_to_datetime(H0 + 3 * HOUR),
        bucket="hour",
        **fields,
    )


def series(metrics: Metrics) -> dict[tuple[str, str | None], list[float | None]]:
    return {(s.metric, s.group): s.values for s in metrics.series}


def test_metrics_on_known_data(store: Store):
    project = fill(store)
    got = refreshed(store).metrics(project, query(), list(METRIC_NAMES))
    assert got.start == ns_to_datetime(H0) and got.end == ns_to_datetime(H0 + 3 * HOUR)
    assert got.buckets == [ns_to_datetime(H0 + i * HOUR) for i in range(3)]
    values = series(got)
    assert values[("traces", None)] == [2, 2, 1]
    assert values[("sessions", None)] == [2, 2, 0]
    assert values[("active_users", None)] == [2, 2, 0]
    assert values[("error_traces", None)] == [0, 1, 0]
    assert values[("error_sessions", None)] == [1, 1, 0]
    assert values[("trace_error_rate", None)] == [0, 0.5, 0]
    assert values[("session_error_rate", None)] == [0.5, 0.5, None]
    assert values[("cost_usd", None)] == [1.0, 2.0, 0.5]
    assert values[("input_tokens", None)] == [11, 20, 0]
    assert values[("output_tokens", None)] == [6, 10, 0]
    assert values[("total_tokens", None)] == [17, 30, 0]
    assert values[("score:quality", None)] == [1.0, 0.25, None]
    assert values[("score:helpful", None)] == [1.0, None, None]
    assert ("score:tone", None) not in values
    dist = got.distributions
    assert (dist["turns_per_session"].count, dist["turns_per_session"].p50) == (2, 1)
    assert (dist["turns_per_session"].p95, dist["turns_per_session"].max) == (2, 2)
    assert dist["session_duration_ms"].p50 == 15 * 60_000
    assert dist["session_duration_ms"].max == 65 * 60_000
    # Session b's cost is unknown: left out, not counted as free.
    assert dist["session_cost_usd"].model_dump() == {"count": 1, "p50": 3.0, "p95": 3.0, "max": 3.0}
    assert [
        (u.user_id, u.trace_count, u.error_count, u.cost_usd) for u in got.top_users_by_cost
    ] == [("u1", 2, 1, 3.0)]
    assert [u.user_id for u in got.top_users_by_errors] == ["u1"]
    assert [(s.session_id, s.trace_count, s.cost_usd) for s in got.top_sessions_by_cost] == [
        ("a", 2, 3.0)
    ]
    assert [(s.session_id, s.error_count) for s in got.top_sessions_by_errors] == [("a", 1)]


def test_metrics_asked_for_are_the_only_series(store: Store):
    project = fill(store)
    got = refreshed(store).metrics(project, query(), ["traces"])
    assert [(s.metric, s.group) for s in got.series] == [
        ("traces", None),
        ("score:helpful", None),
        ("score:quality", None),
    ]


def test_metrics_grouped_by_tag_and_by_metadata(store: Store):
    project = fill(store)
    by_tag = refreshed(store).metrics(project, query(group_by="tag"), list(METRIC_NAMES))
    assert by_tag.group_by == "tag"
    values = series(by_tag)
    # Groups by the most trace-bucket counts: x and y tie (3), untagged last.
    assert list(dict.fromkeys(s.group for s in by_tag.series)) == ["x", "y", None]
    assert values[("traces", "x")] == [2, 1, 0]
    assert values[("traces", "y")] == [1, 2, 0]
    assert values[("traces", None)] == [0, 0, 1]
    assert values[("sessions", "x")] == [2, 2, 0]
    assert values[("sessions", None)] == [0, 0, 0]
    assert values[("cost_usd", "x")] == [1.0, None, None]
    assert values[("cost_usd", "y")] == [None, 2.0, None]
    assert values[("active_users", "y")] == [1, 2, 0]
    assert values[("score:quality", "x")] == [1.0, None, None]
    assert values[("score:quality", "y")] == [None, 0.25, None]

    by_version = refreshed(store).metrics(
        project, query(group_by="metadata", group_key="app_version"), list(METRIC_NAMES)
    )
    assert by_version.group_by == "metadata:app_version"
    values = series(by_version)
    assert values[("traces", "1")] == [2, 1, 0]
    assert values[("traces", "2")] == [0, 1, 0]
    assert values[("traces", None)] == [0, 0, 1]
    assert values[("error_traces", "2")] == [0, 1, 0]
    assert values[("total_tokens", "1")] == [17, 0, 0]


def test_metrics_filtered_like_the_lists(store: Store):
    project = fill(store)
    by_user = series(refreshed(store).metrics(project, query(user_id="u2"), list(METRIC_NAMES)))
    assert by_user[("traces", None)] == [1, 1, 0]
    assert by_user[("sessions", None)] == [1, 1, 0]
    assert by_user[("cost_usd", None)] == [None, None, None]
    assert by_user[("total_tokens", None)] == [2, 0, 0]
    by_tag = series(refreshed(store).metrics(project, query(tag="y"), list(METRIC_NAMES)))
    assert by_tag[("traces", None)] == [1, 2, 0]
    assert by_tag[("sessions", None)] == [2, 2, 0]
    by_meta = series(
        refreshed(store).metrics(project, query(metadata={"app_version": "2"}), ["sessions"])
    )
    assert by_meta[("sessions", None)] == [1, 1, 0]


@pytest.mark.parametrize(
    "filters",
    [{}, {"user_id": "u1"}, {"tag": "x"}, {"metadata": {"app_version": "1"}}],
    ids=["all", "user", "tag", "metadata"],
)
def test_each_bar_counts_what_its_list_shows(store: Store, filters: dict):
    """The list opened from a bar (its bucket as start/end, the same filters) has as
    many rows as the bar counts, and the ranges' totals are the lists' totals."""
    project = fill(store)
    got = refreshed(store).metrics(project, query(**filters), list(METRIC_NAMES))
    values = series(got)
    for i, start in enumerate(got.buckets):
        window = {"start": start, "end": bucket_end(start, "hour"), "limit": 500}
        traces = store.list_traces(project, TraceQuery(**window, **filters)).items
        sessions = store.list_sessions(project, SessionQuery(**window, **filters)).items
        assert values[("traces", None)][i] == len(traces)
        assert values[("error_traces", None)][i] == sum(t.status == "error" for t in traces)
        assert values[("sessions", None)][i] == len(sessions)
        assert values[("error_sessions", None)][i] == sum(s.error_count > 0 for s in sessions)
        assert values[("active_users", None)][i] == len({t.user_id for t in traces if t.user_id})
        if not filters:
            users = store.list_users(project, UserQuery(**window)).items
            assert values[("active_users", None)][i] == len(users)
    # Amounts count once, in their trace's start bucket: over the whole range they are
    # the list's totals of the traces that started in it.
    everything = store.list_traces(
        project, TraceQuery(start=got.start, end=got.end, limit=500, **filters)
    ).items
    started = [t for t in everything if got.start <= t.start_time]
    assert sum(v or 0 for v in values[("cost_usd", None)]) == pytest.approx(
        sum(t.cost_usd or 0 for t in started)
    )
    assert sum(values[("total_tokens", None)]) == sum(t.total_tokens for t in started)
    if not filters:
        users = store.list_users(project, UserQuery(start=got.start, end=got.end)).items
        assert {(u.user_id, u.cost_usd) for u in got.top_users_by_cost} == {
            (u.user_id, u.cost_usd) for u in users if u.cost_usd
        }


def test_week_buckets_start_on_monday(store: Store):
    project = fill(store)
    got = refreshed(store).metrics(
        project,
        MetricsQuery(start=ns_to_datetime(H0), end=ns_to_datetime(H0 + HOUR), bucket="week"),
        ["traces"],
    )
    (monday,) = got.buckets
    assert monday.weekday() == 0 and (monday.hour, monday.minute) == (0, 0)
    assert got.end - monday == datetime(2026, 1, 12) - datetime(2026, 1, 5)
    assert series(got)[("traces", None)] == [5]


def test_an_empty_project_has_zero_series(store: Store):
    project = store.create_project("empty").id
    got = refreshed(store).metrics(project, query(), list(METRIC_NAMES))
    values = series(got)
    assert values[("traces", None)] == [0, 0, 0]
    assert values[("cost_usd", None)] == [None, None, None]
    assert values[("session_error_rate", None)] == [None, None, None]
    assert got.distributions["turns_per_session"].model_dump() == {
        "count": 0,
        "p50": None,
        "p95": None,
        "max": None,
    }
    assert got.top_users_by_cost == [] and got.top_sessions_by_errors == []


def model_span(
    trace: int,
    span_no: int,
    start_min: int,
    *,
    model: str | None,
    cost: float | None = None,
    tokens: tuple[int, int] | None = None,
    session: str | None = "m",
    tags: list[str] | None = None,
) -> SpanRecord:
    """Span ``span_no`` of trace ``trace`` (span 0 is the root), one minute long."""
    return trace_member(
        trace,
        span_no,
        H0 + start_min * MINUTE,
        MINUTE,
        model=model,
        input_tokens=tokens[0] if tokens else None,
        output_tokens=tokens[1] if tokens else None,
        total_tokens=sum(tokens) if tokens else None,
        cost_usd=cost,
        session_id=session if span_no == 0 else None,
        user_id="mu" if span_no == 0 else None,
        tags=(tags or []) if span_no == 0 else [],
    )


def by_model(metrics: Metrics, metric: str) -> dict[str, list[float | None]]:
    return {s.model or "": s.values for s in metrics.series if s.metric == metric}


MODEL_METRICS = ["cost_usd", "total_tokens", "cost_usd_by_model", "total_tokens_by_model"]


def fill_models(store: Store) -> int:
    project = store.create_project("models").id
    store.write_spans(
        project,
        [
            model_span(1, 0, 10, model=None, tags=["x"]),
            model_span(1, 1, 11, model="gpt", cost=1.0, tokens=(10, 5)),
            model_span(1, 2, 12, model="claude", cost=0.25, tokens=(3, 1)),
            model_span(1, 3, 13, model="gpt", cost=0.5, tokens=(1, 1)),
            model_span(2, 0, 70, model=None, tags=["y"]),
            model_span(2, 1, 71, model="claude", tokens=(4, 4)),  # cost unknown
        ],
    )
    return project


def test_cost_and_tokens_split_by_model(store: Store):
    project = fill_models(store)
    got = refreshed(store).metrics(project, query(), MODEL_METRICS)
    assert list(by_model(got, "cost_usd_by_model")) == ["gpt", "claude"]  # costliest first
    assert by_model(got, "cost_usd_by_model") == {
        "gpt": [1.5, None, None],
        "claude": [0.25, None, None],
    }
    assert by_model(got, "total_tokens_by_model") == {
        "gpt": [17, 0, 0],
        "claude": [4, 8, 0],
    }
    values = series(got)
    assert values[("cost_usd", None)] == [1.75, None, None]
    assert values[("total_tokens", None)] == [21, 8, 0]
    # Filtered and grouped, from the rollups: the same rule.
    tagged = refreshed(store).metrics(project, query(tag="y"), MODEL_METRICS)
    assert by_model(tagged, "total_tokens_by_model") == {"claude": [0, 8, 0]}
    grouped = refreshed(store).metrics(project, query(group_by="tag"), MODEL_METRICS)
    split = {(s.metric, s.group, s.model): s.values for s in grouped.series if s.model}
    assert split == {
        ("cost_usd_by_model", "x", "gpt"): [1.5, None, None],
        ("cost_usd_by_model", "x", "claude"): [0.25, None, None],
        ("total_tokens_by_model", "x", "gpt"): [17, 0, 0],
        ("total_tokens_by_model", "x", "claude"): [4, 0, 0],
        # Trace 2's claude span has tokens and no known cost: no cost series.
        ("total_tokens_by_model", "y", "claude"): [0, 8, 0],
    }


def test_grouped_by_model_keeps_a_cost_known_to_be_zero(store: Store):
    project = fill_models(store)
    store.write_spans(
        project,
        [
            model_span(3, 0, 20, model=None, tags=["x"]),
            model_span(3, 1, 21, model="free", cost=0.0, tokens=(0, 0)),
            model_span(3, 2, 22, model="unpriced", tokens=(0, 0)),
        ],
    )
    for q in (query(), query(group_by="tag")):
        got = refreshed(store).metrics(project, q, MODEL_METRICS)
        split = {(s.metric, s.group, s.model): s.values for s in got.series if s.model}
        group = "x" if q.group_by else None
        # A cost known to be zero is a figure; tokens all zero, or no cost, are none.
        assert split[("cost_usd_by_model", group, "free")] == [0.0, None, None]
        assert ("total_tokens_by_model", group, "free") not in split
        assert not any(model == "unpriced" for _, _, model in split)
        assert split[("cost_usd_by_model", group, "gpt")] == [1.5, None, None]


def test_by_model_follows_late_spans_retries_and_deletes(store: Store):
    project = fill_models(store)
    late = [
        # A retry of a span already stored: nothing changes.
        model_span(1, 1, 11, model="gpt", cost=1.0, tokens=(10, 5)),
        # A new span of trace 2 that starts before it, in hour 0: the whole trace
        # (and its usage) moves to hour 0.
        model_span(2, 2, 5, model="gpt", cost=2.0, tokens=(2, 2)),
    ]
    store.write_spans(project, late)
    store.write_spans(project, late)  # the same export retried
    got = refreshed(store).metrics(project, query(), list(METRIC_NAMES))
    assert by_model(got, "cost_usd_by_model") == {
        "gpt": [3.5, None, None],
        "claude": [0.25, None, None],
    }
    assert by_model(got, "total_tokens_by_model") == {"gpt": [21, 0, 0], "claude": [12, 0, 0]}
    assert series(got)[("cost_usd", None)] == [3.75, None, None]
    assert series(got)[("traces", None)] == [2, 1, 0]
    store.delete_traces(project, [f"{1:032x}"])
    got = refreshed(store).metrics(project, query(), [*MODEL_METRICS, "traces", "sessions"])
    assert by_model(got, "cost_usd_by_model") == {"gpt": [2.0, None, None]}
    assert by_model(got, "total_tokens_by_model") == {"gpt": [4, 0, 0], "claude": [8, 0, 0]}
    assert series(got)[("traces", None)] == [1, 1, 0]
    assert series(got)[("sessions", None)] == [1, 1, 0]
    store.delete_sessions(project, ["m"])
    got = refreshed(store).metrics(project, query(), list(METRIC_NAMES))
    assert by_model(got, "cost_usd_by_model") == {}
    assert series(got)[("traces", None)] == [0, 0, 0]
    assert series(got)[("active_users", None)] == [0, 0, 0]
    assert got.distributions["turns_per_session"].count == 0


@pytest.mark.parametrize("hour", ["past", "present"])
def test_by_model_counts_spans_long_after_the_window_in_the_bucket_the_trace_started(
    store: Store, hour: str
):
    # H0's hour, or the present one (a window reaching the present is read otherwise).
    shift = 0 if hour == "past" else time.time_ns() // HOUR * HOUR - H0
    project = store.create_project("long").id
    store.write_spans(
        project,
        [
            dataclasses.replace(s, start_ns=s.start_ns + shift, end_ns=s.end_ns + shift)
            for s in (
                model_span(1, 0, 10, model=None, tags=["x"]),
                # Two and a half hours after its trace began, after the window ended.
                model_span(1, 1, 160, model="gpt", cost=1.0, tokens=(10, 5)),
            )
        ],
    )
    # That hour alone: the trace started in it.
    first_hour = MetricsQuery(
        start=ns_to_datetime(H0 + shift),
        end=ns_to_datetime(H0 + shift + 30 * MINUTE),
        bucket="hour",
    )
    # Before any figures are derived (ClickHouse rolls the range up), then after.
    for got in (
        store.metrics(project, first_hour, MODEL_METRICS),
        refreshed(store).metrics(project, first_hour, MODEL_METRICS),
    ):
        assert by_model(got, "cost_usd_by_model") == {"gpt": [1.0]}
        assert by_model(got, "total_tokens_by_model") == {"gpt": [15]}
    grouped = store.metrics(
        project, first_hour.model_copy(update={"group_by": "tag"}), MODEL_METRICS
    )
    split = {(s.metric, s.group, s.model): s.values for s in grouped.series if s.model}
    assert split == {
        ("cost_usd_by_model", "x", "gpt"): [1.0],
        ("total_tokens_by_model", "x", "gpt"): [15],
    }


@pytest.mark.parametrize("filters", [{}, {"tag": "x"}], ids=["all", "tag"])
def test_bars_count_what_the_lists_show_after_a_delete(store: Store, filters: dict):
    project = fill(store)
    store.delete_sessions(project, ["b"])
    store.delete_traces(project, [f"{2:032x}"])
    got = refreshed(store).metrics(project, query(**filters), list(METRIC_NAMES))
    values = series(got)
    for i, start in enumerate(got.buckets):
        window = {"start": start, "end": bucket_end(start, "hour"), "limit": 500}
        traces = store.list_traces(project, TraceQuery(**window, **filters)).items
        sessions = store.list_sessions(project, SessionQuery(**window, **filters)).items
        assert values[("traces", None)][i] == len(traces)
        assert values[("sessions", None)][i] == len(sessions)
        assert values[("error_sessions", None)][i] == sum(s.error_count > 0 for s in sessions)
        assert values[("active_users", None)][i] == len({t.user_id for t in traces if t.user_id})
    assert values[("cost_usd", None)] == ([1.0, None, 0.5] if not filters else [1.0, None, None])
    assert got.distributions["turns_per_session"].count == 1


def test_a_grouped_session_counts_in_its_groups_between_turns(store: Store):
    """A session active in a bucket where none of its traces ran still counts in the
    groups of its traces."""
    project = store.create_project("gap").id
    store.write_spans(
        project,
        [
            span(1, 10, 5, session="g", user="u", tags=["x"]),
            span(2, 130, 5, session="g", user="u", tags=["x"]),
        ],
    )
    got = series(refreshed(store).metrics(project, query(group_by="tag"), ["sessions", "traces"]))
    assert got[("sessions", "x")] == [1, 1, 1]
    assert got[("traces", "x")] == [1, 0, 1]


# Costs whose float sums by user (trace i's user is i % 4), added up in any order, all
# differ from their sum by hour in the last digit.
ODD_COSTS = [1 / 11, 0.68, 1 / 11, 1 / 3, 0.003, 0.648, 1 / 7, 0.695, 1 / 7, 0.54, 0.23, 1 / 3]


def test_a_filter_keeping_every_trace_gives_the_unfiltered_cost_to_the_last_digit(
    store: Store, backend: str
):
    project = store.create_project("odd-costs").id
    store.write_spans(
        project,
        [
            # Four users' traces in one hour: added up by user, then by hour, as floats
            # the figures differed.
            span_record(
                i,
                i,
                H0 + i * MINUTE,
                MINUTE,
                model="gpt",
                cost_usd=cost,
                input_tokens=i,
                user_id=f"u{i % 4}",
                session_id=f"s{i % 3}",
                tags=["x"],
            )
            for i, cost in enumerate(ODD_COSTS, start=1)
        ],
    )
    # Each trace's cost in whole picodollars, added up: what every figure is.
    exact = sum(picodollars(c) for c in ODD_COSTS) / PICO
    midnight = H0 // (24 * HOUR) * 24 * HOUR
    day = {
        "start": ns_to_datetime(midnight),
        "end": ns_to_datetime(midnight + 24 * HOUR),
        "bucket": "day",
    }
    names = ["cost_usd", "cost_usd_by_model"]
    refreshed(store)
    unfiltered = store.metrics(project, MetricsQuery(**day), names)
    assert by_model(unfiltered, "cost_usd_by_model") == {"gpt": [exact]}
    # ClickHouse's unfiltered figures come from slices that hold each (user, hour)'s
    # cost as a float sum (0013), rounded to picodollars when read: a picodollar apart.
    if backend == "sqlite":
        assert series(unfiltered)[("cost_usd", None)] == [exact]
    for narrowed in ({"tag": "x"}, {"group_by": "tag"}):
        got = store.metrics(project, MetricsQuery(**day, **narrowed), names)
        group = "x" if "group_by" in narrowed else None
        assert series(got)[("cost_usd", group)] == [exact], narrowed
        assert by_model(got, "cost_usd_by_model") == {"gpt": [exact]}, narrowed
        if backend == "sqlite":
            assert got.top_users_by_cost == unfiltered.top_users_by_cost, narrowed


def scores_of(store: Store, project: int, **filters) -> dict[str, list[float | None]]:
    """The score series of ``query(**filters)``, by name."""
    got = refreshed(store).metrics(project, query(**filters), ["traces"])
    return {s.metric: s.values for s in got.series if s.metric.startswith("score:")}


# Trace 1 and 2 and session a (of fill) are user u1's: the user's view (the rollups
# joined to their targets) must show what the unfiltered one (kept on write) shows.
ALL_U1 = ({}, {"user_id": "u1"})


def test_score_averages_follow_a_score_replaced_renamed_and_deleted(store: Store):
    project = fill(store)
    store.write_scores(project, [score("s2", "quality", 1.0, trace=2)])  # was 0.0
    for filters in ALL_U1:
        assert scores_of(store, project, **filters)["score:quality"] == [1.0, 0.75, None]
    store.delete_score(project, "s3")
    store.write_scores(project, [score("s1", "speed", 0.25, trace=1)])  # was quality 1.0
    for filters in ALL_U1:
        assert scores_of(store, project, **filters) == {
            "score:quality": [None, 1.0, None],
            "score:speed": [0.25, None, None],
            "score:helpful": [1.0, None, None],
        }
    store.delete_score(project, "s2")
    store.delete_score(project, "s4")
    assert scores_of(store, project) == {"score:speed": [0.25, None, None]}


def test_score_averages_leave_with_a_deleted_trace_and_session(store: Store):
    project = fill(store)
    store.delete_traces(project, [f"{2:032x}"])
    for filters in ALL_U1:
        assert scores_of(store, project, **filters) == {
            "score:quality": [1.0, None, None],
            "score:helpful": [1.0, None, None],
        }
    store.delete_sessions(project, ["a"])  # trace 1 with it
    assert scores_of(store, project) == {}
    # A score written again for a deleted trace counts once the trace is back.
    store.write_scores(project, [score("s6", "quality", 0.5, trace=2)])
    assert scores_of(store, project) == {}
    store.write_spans(project, [span(2, 70, 5, session="a", user="u1")])
    # (Session a's own score went with it.)
    assert scores_of(store, project) == {"score:quality": [None, 0.5, None]}


def test_score_averages_after_retention(store: Store):
    project = fill(store)
    # One day of retention, a day and 16 minutes after H0: traces 5 and 1 ended before.
    RetentionService(store, 1, clock_ns=lambda: H0 + 24 * HOUR + 16 * MINUTE).run_pass()
    # Trace 1's score went with it; session a keeps trace 2 alone, so it starts in hour
    # 1 now, and its own score with it.
    for filters in ALL_U1:
        assert scores_of(store, project, **filters) == {
            "score:quality": [None, 0.25, None],
            "score:helpful": [None, 1.0, None],
        }


def test_a_score_written_before_its_target_counts_from_the_targets_start(store: Store):
    project = fill(store)
    store.write_scores(
        project,
        [score("e1", "early", 0.5, trace=7), score("e2", "early", 0.75, session="z")],
    )
    assert "score:early" not in scores_of(store, project)  # nothing stored to bucket by
    store.write_spans(project, [trace_member(7, 0, H0 + 130 * MINUTE, MINUTE, session_id="z")])
    assert scores_of(store, project)["score:early"] == [None, None, 0.625]
    # A later export of the trace starts before it, in hour 0: the trace and its session
    # start there now, and their scores count there.
    store.write_spans(project, [trace_member(7, 1, H0 + 20 * MINUTE, MINUTE)])
    assert scores_of(store, project)["score:early"] == [0.625, None, None]


def test_many_models_and_score_names_make_bounded_series(store: Store):
    """A project's models and score names have no bound (any key that sends spans or
    scores adds some), and each was a list per bucket in every answer: 10,000 models
    answered 19,119 series (78 MB) over 1,000 weeks. Now the 20 models using the most
    are a series each and the rest one added-up series (model None), and the 50 score
    names with the most values have series."""
    project = store.create_project("many").id
    store.write_spans(
        project,
        [
            model_span(100, 0, 0, model=None, tags=["x"]),
            *(
                model_span(100, i, 1, model=f"m{i:02}", cost=i / 100, tokens=(i, 0))
                for i in range(1, 31)
            ),
        ],
    )
    store.write_scores(
        project,
        [
            score(f"s{i}-{k}", f"name{i:02}", float(k), trace=100)
            for i in range(60)
            for k in range(1 + (i >= 50))  # names 50-59 have two values: kept first
        ],
    )
    for q in (query(), query(group_by="tag")):
        got = refreshed(store).metrics(project, q, MODEL_METRICS)
        group = "x" if q.group_by else None
        costs = [s for s in got.series if s.metric == "cost_usd_by_model" and s.group == group]
        assert [s.model for s in costs] == [*(f"m{i:02}" for i in range(30, 10, -1)), None]
        assert costs[-1].values[0] == pytest.approx(sum(range(1, 11)) / 100)
        tokens = [s for s in got.series if s.metric == "total_tokens_by_model"]
        assert len(tokens) == 21 and tokens[-1].model is None
        assert tokens[-1].values == [sum(range(1, 11)), 0, 0]
        # The split still adds up to the total.
        assert sum(s.values[0] or 0 for s in tokens) == series(got)[("total_tokens", group)][0]
        names = sorted(s.metric for s in got.series if s.metric.startswith("score:"))
        assert len(names) == 50
        assert {f"score:name{i}" for i in range(50, 60)} <= set(names)
