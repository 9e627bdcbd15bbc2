"""The SQLite dashboard narrowed by a tag or metadata reads the project's traces for
the sessions it keeps once, not once a statement on sessions, and reads the traces of
its range by their end, not every trace begun before the range's end."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.store.query_plans import statement_plans as _plans
from tests.store.test_metric_aggregates import HOUR, T0, history
from threadline.server.model import METRIC_NAMES, MetricsQuery, ns_to_datetime
from threadline.server.store.sqlite import metrics as sqlite_metrics
from threadline.server.store.sqlite.store import SQLiteStore

WIDE = {"start": ns_to_datetime(T0 - 3 * HOUR), "end": ns_to_datetime(T0 + 100 * HOUR)}
WINDOW = {"start": ns_to_datetime(T0 + 10 * HOUR), "end": ns_to_datetime(T0 + 20 * HOUR)}


@pytest.mark.parametrize(
    "narrowed",
    [{"tag": "x"}, {"metadata": {"k": "v"}}, {"tag": "y", "metadata": {"k": "v"}}],
    ids=["tag", "metadata", "both"],
)
def test_a_narrowed_dashboard_reads_the_kept_sessions_once_and_traces_by_end(
    tmp_path: Path, narrowed: dict
):
    store = SQLiteStore(tmp_path / "t.db")
    project = store.create_project("p").id
    try:
        history(store, project, 3)
        query = MetricsQuery(bucket="hour", **WINDOW, **narrowed)
        plans = _plans(store, lambda: store.metrics(project, query, list(METRIC_NAMES)))
        # The filter's subquery over every trace of the project (no index holds tags).
        every_trace = [
            sql
            for sql, plan in plans.items()
            if any(s.startswith("SEARCH traces USING INDEX traces_by_session") for s in plan)
        ]
        assert len(every_trace) == 1, plans
        begun_before_end = [
            (sql, s)
            for sql, plan in plans.items()
            for s in plan
            if s.startswith(
                "SEARCH traces USING INDEX traces_by_start (project_id=? AND start_ns<?"
            )
        ]
        assert not begun_before_end, plans
    finally:
        store.close()


@pytest.mark.parametrize(
    "narrowed",
    [{"user_id": "u1"}, {"tag": "x"}, {"user_id": "u2", "tag": "y"}, {"group_by": "tag"}],
    ids=["user", "tag", "user and tag", "grouped"],
)
def test_the_kept_sessions_give_the_same_figures_by_rowid_or_along_the_range(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, narrowed: dict
):
    """Few kept sessions are found by their rowids (no session index walked); past
    the bound, along the range's indexes: the figures are the same either way."""
    store = SQLiteStore(tmp_path / "t.db")
    project = store.create_project("p").id
    try:
        history(store, project, 3)
        names = list(METRIC_NAMES)
        for window in (WIDE, WINDOW):
            query = MetricsQuery(bucket="hour", **window, **narrowed)
            by_rowid = store.metrics(project, query, names)
            plans = _plans(store, lambda q=query: store.metrics(project, q, names))
            walked = [
                s
                for plan in plans.values()
                for s in plan
                if s.startswith(("SEARCH sessions USING", "SCAN sessions"))
                and "INTEGER PRIMARY KEY (rowid=?)" not in s
                and "sqlite_autoindex_sessions_1 (project_id=? AND session_id=?)" not in s
            ]
            assert bool(walked) == ("group_by" in narrowed), plans
            monkeypatch.setattr(sqlite_metrics, "_FEW_SESSIONS", 0)
            assert store.metrics(project, query, names) == by_rowid
            monkeypatch.undo()
    finally:
        store.close()
