"""The ClickHouse dashboard's figures derived in the background (``metric_slices.py``):
stale until a refresh pass, then exact, after late exports, deletes, and with two
stores (two servers) refreshing the same slices at once."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.store.chdb_http import own_database_url
from tests.store.test_metrics_contract import H0, HOUR, query, series, span
from threadline.server.model import (
    METRIC_NAMES,
    MetricsQuery,
    SessionQuery,
    TraceQuery,
    ns_to_datetime,
)
from threadline.server.store import Store, open_store
from threadline.server.store.model_usage import PICO, picodollars

pytestmark = pytest.mark.clickhouse


def _open(tmp_path: Path) -> Store:
    return open_store(own_database_url(tmp_path))


def _values(store: Store, project: int) -> dict:
    return series(store.metrics(project, query(), list(METRIC_NAMES)))


def _listed(store: Store, project: int, hour: int) -> tuple[int, int]:
    """(traces, sessions) the lists show for the hour ``hour`` after H0."""
    start = ns_to_datetime(H0 + hour * HOUR)
    end = ns_to_datetime(H0 + (hour + 1) * HOUR - 1000)
    traces = store.list_traces(project, TraceQuery(start=start, end=end, limit=500)).items
    sessions = store.list_sessions(project, SessionQuery(start=start, end=end, limit=500)).items
    return len(traces), len(sessions)


def test_a_late_export_into_an_old_hour_and_a_delete_show_after_the_next_pass(tmp_path):
    # No margin (chDB has no replica lag): each pass sees only what changed since the
    # previous one, so the slices a delete marks are all that is refreshed.
    store = _open(tmp_path)
    try:
        project = store.create_project("p").id
        store.write_spans(project, [span(1, 10, 5, session="a", user="u1", cost=1.0)])
        assert store.refresh_metrics(0) is not None
        before = _values(store, project)
        assert before[("traces", None)] == [1, 0, 0]
        assert before[("sessions", None)] == [1, 0, 0]
        # A late export: a new turn of session "a" two hours later, and a trace whose
        # first part (written now) lies in the first hour, long after that hour's pass.
        store.write_spans(
            project,
            [
                span(2, 130, 5, session="a", user="u2", cost=2.0, error=True),
                span(3, 20, 50, session="b", user="u1"),
            ],
        )
        stale = _values(store, project)
        assert stale == before, "figures change only with a pass"
        store.refresh_metrics(0)
        after = _values(store, project)
        assert after[("traces", None)] == [2, 1, 1]
        assert after[("sessions", None)] == [2, 2, 1]  # "a" runs from hour 0 to hour 2
        assert after[("error_sessions", None)] == [1, 1, 1]
        assert after[("active_users", None)] == [1, 1, 1]
        assert after[("cost_usd", None)] == [pytest.approx(1.0), None, pytest.approx(2.0)]
        for hour in range(3):
            assert _listed(store, project, hour) == (
                after[("traces", None)][hour],
                after[("sessions", None)][hour],
            )
        # A delete: the session "a" loses its later turn, so it no longer runs into
        # hours 1 and 2.
        store.delete_traces(project, [f"{2:032x}"])
        store.refresh_metrics(0)
        deleted = _values(store, project)
        assert deleted[("traces", None)] == [2, 1, 0]
        assert deleted[("sessions", None)] == [2, 1, 0]
        assert deleted[("cost_usd", None)] == [pytest.approx(1.0), None, None]
        for hour in range(3):
            assert _listed(store, project, hour) == (
                deleted[("traces", None)][hour],
                deleted[("sessions", None)][hour],
            )
        # The session's first trace deleted: it now starts (and belongs) an hour later.
        store.write_spans(project, [span(4, 70, 5, session="b")])
        store.refresh_metrics(0)
        store.delete_traces(project, [f"{3:032x}"])
        store.refresh_metrics(0)
        moved = _values(store, project)
        assert moved[("sessions", None)] == [1, 1, 0]
        assert [_listed(store, project, h)[1] for h in range(3)] == [1, 1, 0]
        top = store.metrics(project, query(), ["sessions"]).top_sessions_by_cost
        assert [s.session_id for s in top] == ["a"]
    finally:
        store.close()


def test_two_servers_refreshing_the_same_slices_agree(tmp_path):
    """Two stores on one database (two servers), each writing and refreshing, at once:
    whichever pass wins, the figures are those of everything written."""
    first, second = _open(tmp_path), _open(tmp_path)
    try:
        project = first.create_project("p").id
        assert second.create_project("p").id == project
        first.refresh_metrics()  # the first pass of the store: nothing yet
        for round_ in range(3):
            first.write_spans(project, [span(10 + round_, 10 * round_, 5, session="s")])
            second.write_spans(
                project, [span(20 + round_, 60 + 10 * round_, 5, session="s", user="u")]
            )
            passes = [
                threading.Thread(target=store.refresh_metrics) for store in (first, second) * 2
            ]
            for thread in passes:
                thread.start()
            for thread in passes:
                thread.join()
        expected = {
            ("traces", None): [3, 3, 0],
            ("sessions", None): [1, 1, 0],
            ("active_users", None): [0, 1, 0],
        }
        for store in (first, second):
            got = _values(store, project)
            assert {k: got[k] for k in expected} == expected
            assert store.metrics(project, query(), ["traces"]).figures_up_to is not None
    finally:
        first.close()
        second.close()


def test_a_users_view_needs_no_pass_and_a_grouped_one_the_next(tmp_path):
    store = _open(tmp_path)
    try:
        project = store.create_project("p").id
        store.refresh_metrics()
        store.write_spans(project, [span(1, 10, 5, user="u1", tags=["x"])])
        by_user = store.metrics(project, query(user_id="u1"), ["traces"])
        assert by_user.figures_up_to is None
        assert series(by_user)[("traces", None)] == [1, 0, 0]
        # Grouped or narrowed by labels, the figures are the slices', as of a pass.
        for q in (query(group_by="tag"), query(tag="x")):
            before = store.metrics(project, q, ["traces"])
            assert before.figures_up_to is not None and not any(
                series(before).get(("traces", "x" if q.group_by else None), [0])
            )
        store.refresh_metrics()
        by_tag = series(store.metrics(project, query(group_by="tag"), ["traces"]))
        assert by_tag[("traces", "x")] == [1, 0, 0]
        assert series(store.metrics(project, query(tag="x"), ["traces"]))[("traces", None)] == [
            1,
            0,
            0,
        ]
    finally:
        store.close()


def test_older_versions_not_yet_merged_leave_the_top_lists_exact(tmp_path):
    # Twelve sessions, each in a slice of its own, costlier and with more errors the
    # later. Until a merge keeps only the newest version of a slice, older ones sit
    # beside it: here each of the ten costliest slices also has an older version that
    # claims a top session far beyond any real one. Were the top lists' bounds read
    # from those, no slice would reach them and the lists would come back empty.
    store = _open(tmp_path)
    try:
        project = store.create_project("p").id
        spans = [
            span(i + 1, 5 + 5 * i, 1, session=f"s{i:02}", user="u", cost=float(i + 1))
            for i in range(12)
        ]
        spans += [
            span(100 + i * 10 + e, 5 + 5 * i, 1, session=f"s{i:02}", error=True)
            for i in range(12)
            for e in range(i)
        ]
        store.write_spans(project, spans)
        store.refresh_metrics(0)
        expected = store.metrics(project, query(), list(METRIC_NAMES))
        assert [s.session_id for s in expected.top_sessions_by_cost] == [
            f"s{i:02}" for i in range(11, 1, -1)
        ]
        ch = store._rows  # type: ignore[attr-defined]
        ch("SYSTEM STOP MERGES metric_slices", {})
        ch(
            "INSERT INTO metric_slices (project_id, slice, version, last_hour, top_cost,"
            " top_errors) SELECT project_id, slice, version - 1, last_hour,"
            " (1e9, 'zz'), (toUInt64(1000000), 'zz') FROM metric_slices"
            " ORDER BY top_cost DESC LIMIT 10",
            {},
        )
        ((rows, slices),) = ch("SELECT count(), uniqExact(slice) FROM metric_slices", {})
        assert rows == slices + 10, "the older versions stay beside the newest"
        got = store.metrics(project, query(), list(METRIC_NAMES))
        assert got.top_sessions_by_cost == expected.top_sessions_by_cost
        assert got.top_sessions_by_errors == expected.top_sessions_by_errors
        assert series(got) == series(expected)
        assert got.distributions == expected.distributions
        # An older version of the first slice claims sessions running two hours later,
        # where the newest runs into no later hour: a range from the next hour on must
        # not count them (the newest version is picked before the range's condition).
        later = MetricsQuery(
            start=ns_to_datetime(H0 + HOUR), end=ns_to_datetime(H0 + 3 * HOUR), bucket="hour"
        )
        sessions_later = series(store.metrics(project, later, ["sessions"]))
        assert sessions_later[("sessions", None)] == [1, 0]  # s11 starts at one hour
        ch(
            "INSERT INTO metric_slices (project_id, slice, version, last_hour,"
            " session_counts) SELECT project_id, slice, version - 1, last_hour + 2,"
            " [(last_hour + 2, toUInt64(5), toUInt64(5))] FROM metric_slices FINAL"
            " ORDER BY slice LIMIT 1",
            {},
        )
        assert series(store.metrics(project, later, ["sessions"])) == sessions_later
    finally:
        store.close()


def test_costs_add_up_the_same_whatever_order_the_slices_are_read_in(tmp_path):
    # Four traces of one user, each in a slice of its own in the first hour. Added as
    # floats, these costs give 0.42345678900000006 or 0.42345678899999994 by the order
    # they meet in; as whole picodollars, 0.423456789 in every order.
    costs = (0.1, 0.03, 0.17, 0.123456789)
    exact = sum(picodollars(c) for c in costs) / PICO
    store = _open(tmp_path)
    try:
        project = store.create_project("p").id
        store.write_spans(
            project,
            [
                span(i + 1, 10 * i, 1, session=f"s{i}", user="u", cost=c)
                for i, c in enumerate(costs)
            ],
        )
        store.refresh_metrics(0)
        got = store.metrics(project, query(), list(METRIC_NAMES))
        assert series(got)[("cost_usd", None)] == [exact, None, None]
        assert [u.cost_usd for u in got.top_users_by_cost] == [exact]
    finally:
        store.close()
