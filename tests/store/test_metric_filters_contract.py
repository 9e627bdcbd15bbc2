"""The dashboard filtered by a user, a tag or a metadata value, when what the filter
matches is known only from all of a trace's exports: the root names one user and a
child another, a later export brings the only span naming the user, a tag or a
metadata value is set by several spans. ClickHouse finds the traces a filter may match
by the values any span named (``trace_labels``) and checks the merged rows; these hold
it to the lists' figures on both stores."""

from __future__ import annotations

from importlib import resources

import pytest

from tests.spans import trace_member
from tests.store import test_contract as contract
from tests.store.test_metrics_contract import H0, HOUR, MINUTE, query, refreshed, series
from threadline.server.model import (
    METRIC_NAMES,
    SessionQuery,
    SpanRecord,
    TraceQuery,
    ns_to_datetime,
)
from threadline.server.store import Store
from threadline.server.store.clickhouse import ClickHouseStore, trace_labels
from threadline.server.store.metrics import bucket_end

backend = contract.backend
store = contract.store


def part(
    trace: int,
    span_no: int,
    start_min: int,
    *,
    user: str | None = None,
    session: str | None = None,
    tags: list[str] | None = None,
    version: str | None = None,
    cost: float | None = None,
    metadata: dict[str, str] | None = None,
) -> SpanRecord:
    """Span ``span_no`` of trace ``trace`` (0 is the root), two minutes long."""
    return trace_member(
        trace,
        span_no,
        H0 + start_min * MINUTE,
        2 * MINUTE,
        cost_usd=cost,
        session_id=session,
        user_id=user,
        tags=tags or [],
        metadata=({"app_version": version} if version else {}) | (metadata or {}),
    )


def fill(store: Store) -> int:
    project = store.create_project("filters").id
    # Each batch an export of its own: the merged rows are known only after the last.
    for batch in (
        # Trace 1: a child names "child-user" first; the root, later, "root-user".
        [part(1, 1, 11, user="child-user", session="s1", tags=["early"], version="1")],
        [part(1, 0, 10, user="root-user", session="s1", tags=["late"], version="2", cost=1.0)],
        # Trace 2: the root names no user; a later export's child names "late-user".
        [part(2, 0, 70, session="s2", cost=2.0)],
        [part(2, 1, 72, user="late-user", version="3")],
        # Trace 3, in session s2 too, names nobody: the session is "late-user"'s by trace 2.
        [part(3, 0, 75, session="s2", tags=["early"])],
    ):
        store.write_spans(project, batch)
    return project


FILTERS = [
    {"user_id": "root-user"},
    {"user_id": "child-user"},
    {"user_id": "late-user"},
    {"tag": "early"},
    {"tag": "late"},
    {"metadata": {"app_version": "1"}},
    {"metadata": {"app_version": "2"}},
    {"metadata": {"app_version": "3"}},
]


def figures(store: Store, project: int, filters: dict) -> dict[str, list]:
    values = series(refreshed(store).metrics(project, query(**filters), list(METRIC_NAMES)))
    return {metric: v for (metric, _), v in values.items()}


@pytest.mark.parametrize("filters", FILTERS, ids=lambda f: repr(f))
def test_a_filtered_bar_counts_what_its_list_shows(store: Store, filters: dict):
    project = fill(store)
    got = refreshed(store).metrics(project, query(**filters), list(METRIC_NAMES))
    values = {metric: v for (metric, _), v in series(got).items()}
    for i, start in enumerate(got.buckets):
        window = {"start": start, "end": bucket_end(start, "hour"), "limit": 500}
        traces = store.list_traces(project, TraceQuery(**window, **filters)).items
        sessions = store.list_sessions(project, SessionQuery(**window, **filters)).items
        assert values["traces"][i] == len(traces), (i, filters)
        assert values["sessions"][i] == len(sessions), (i, filters)
        assert values["active_users"][i] == len({t.user_id for t in traces if t.user_id})
    everything = store.list_traces(
        project, TraceQuery(start=got.start, end=got.end, limit=500, **filters)
    ).items
    assert sum(v or 0 for v in values["cost_usd"]) == pytest.approx(
        sum(t.cost_usd or 0 for t in everything)
    )


def test_a_filter_matches_the_merged_trace_not_any_span(store: Store):
    project = fill(store)
    # The root's user wins over the child's that came first.
    assert sum(figures(store, project, {"user_id": "root-user"})["traces"]) == 1
    assert sum(figures(store, project, {"user_id": "child-user"})["traces"]) == 0
    # A user named only by a later export's child; its session holds trace 3 as well.
    late = figures(store, project, {"user_id": "late-user"})
    assert late["traces"] == [0, 1, 0]
    assert late["sessions"] == [0, 1, 0]
    assert late["cost_usd"] == [None, 2.0, None]
    # Tags of every span; a metadata key's value from the latest span that sets it.
    assert sum(figures(store, project, {"tag": "early"})["traces"]) == 2
    assert sum(figures(store, project, {"tag": "late"})["traces"]) == 1
    assert sum(figures(store, project, {"metadata": {"app_version": "1"}})["traces"]) == 1
    assert sum(figures(store, project, {"metadata": {"app_version": "2"}})["traces"]) == 0
    # Two filters: a trace meets both itself (trace 2 has the user, trace 3 the tag:
    # none), a session when one trace has the user and one the tag (s2, as its list).
    both = figures(store, project, {"user_id": "late-user", "tag": "early"})
    assert sum(both["traces"]) == 0
    assert both["sessions"] == [0, 1, 0]
    assert sum(figures(store, project, {"user_id": "root-user", "tag": "early"})["traces"]) == 1


@pytest.mark.clickhouse
def test_traces_stored_before_the_labels_are_found_by_them(tmp_path):
    """Migration 0020's copy of the stored traces' labels: with only what it copies
    (the table emptied, the copy run again), the filtered figures are the same."""
    store = contract._open("clickhouse", tmp_path)
    try:
        assert isinstance(store, ClickHouseStore)
        project = fill(store)
        before = {repr(f): figures(store, project, f) for f in FILTERS}
        script = (
            resources.files("threadline.server.store.clickhouse")
            .joinpath("migrations/0020_trace_labels.sql")
            .read_text()
        )
        (copy,) = [s for s in script.split(";") if "INSERT INTO trace_labels" in s]
        store._ch.command("TRUNCATE TABLE trace_labels")
        assert sum(figures(store, project, {"user_id": "late-user"})["traces"]) == 0
        store._ch.command(copy)
        assert {repr(f): figures(store, project, f) for f in FILTERS} == before
    finally:
        store.close()


@pytest.mark.clickhouse
def test_many_candidates_are_found_by_subquery_alike(tmp_path, monkeypatch):
    """Past ``FEW_TRACES`` candidates a read finds them by subquery, not by id: the same
    figures."""
    store = contract._open("clickhouse", tmp_path)
    try:
        project = fill(store)
        by_id = {repr(f): figures(store, project, f) for f in FILTERS}
        monkeypatch.setattr(trace_labels, "FEW_TRACES", 0)
        assert {repr(f): figures(store, project, f) for f in FILTERS} == by_id
    finally:
        store.close()


def combined_fill(store: Store) -> int:
    """Sessions whose traces meet combined filters apart or together. ``a``: alice's
    trace has the metadata, the next (nobody's) the tag. ``b``: bob's one trace has all.
    ``c``: alice's tagged trace in the first hour, her untagged one two hours later."""
    project = store.create_project("combined").id
    web = {"channel": "web"}
    store.write_spans(
        project,
        [
            part(10, 0, 10, user="alice", session="a", cost=1.0, metadata=web),
            part(11, 0, 70, session="a", tags=["refund"], cost=2.0),
            part(12, 0, 15, user="bob", session="b", tags=["refund"], cost=4.0, metadata=web),
            part(13, 0, 20, user="alice", session="c", tags=["refund"], cost=8.0),
            part(14, 0, 130, user="alice", session="c", cost=16.0),
        ],
    )
    return project


COMBINED = [
    {"user_id": "alice", "tag": "refund"},
    {"user_id": "alice", "metadata": {"channel": "web"}},
    {"tag": "refund", "metadata": {"channel": "web"}},
    {"user_id": "bob", "tag": "refund", "metadata": {"channel": "web"}},
    {"user_id": "alice", "tag": "refund", "metadata": {"channel": "web"}},
]


@pytest.mark.parametrize("filters", COMBINED, ids=lambda f: repr(f))
@pytest.mark.parametrize("first_hour", [0, 2], ids=["whole-range", "last-hour"])
def test_combined_filters_count_the_sessions_their_list_shows(
    store: Store, filters: dict, first_hour: int
):
    """Filters combine as the Sessions list combines them: a session is the user's if
    one of its traces is, and carries the tag and metadata if one of its traces carries
    them all, whenever those traces ran (the one that matched may lie before the range).
    Traces meet every filter themselves. Each bar, the distributions and the top
    sessions equal what the lists show for the same window."""
    project = combined_fill(store)
    asked = query(**filters).model_copy(update={"start": ns_to_datetime(H0 + first_hour * HOUR)})
    got = refreshed(store).metrics(project, asked, list(METRIC_NAMES))
    values = {metric: v for (metric, _), v in series(got).items()}
    for i, start in enumerate(got.buckets):
        window = {"start": start, "end": bucket_end(start, "hour"), "limit": 500}
        traces = store.list_traces(project, TraceQuery(**window, **filters)).items
        sessions = store.list_sessions(project, SessionQuery(**window, **filters)).items
        assert values["traces"][i] == len(traces), (i, filters)
        assert values["sessions"][i] == len(sessions), (i, filters)
    whole = {"start": got.start, "end": got.end, "limit": 500}
    listed = store.list_sessions(project, SessionQuery(**whole, **filters)).items
    assert got.distributions["turns_per_session"].count == len(listed)
    assert {s.session_id for s in got.top_sessions_by_cost} == {s.session_id for s in listed}


def test_combined_filters_on_known_sessions(store: Store):
    project = combined_fill(store)

    def sessions(first_hour: int = 0, **filters) -> list:
        asked = query(**filters).model_copy(
            update={"start": ns_to_datetime(H0 + first_hour * HOUR)}
        )
        got = refreshed(store).metrics(project, asked, ["sessions"])
        return series(got)[("sessions", None)]

    # The user on one trace, the tag on another of the same session: it counts.
    assert sessions(user_id="alice", tag="refund") == [1 + 1, 1 + 1, 1]  # a, c
    # The tag and the metadata must be on one trace: b only, not a.
    assert sessions(tag="refund", metadata={"channel": "web"}) == [1, 0, 0]
    # c's tagged trace ran before the range; c is active in it, so it counts.
    assert sessions(2, tag="refund") == [1]
