"""The SQLite dashboard's score figures of a filtered or grouped view find each scored
trace by its key: since ``traces`` lost its index on the trace id, a join on
``traces.trace_id`` read the window's traces (by start) once for every score rollup.
(The unfiltered view reads the sums kept on write: ``test_metric_scores.py``.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.store.query_plans import statement_plans as _plans
from tests.store.test_metric_aggregates import HOUR, T0, history
from threadline.server.model import METRIC_NAMES, MetricsQuery, ns_to_datetime
from threadline.server.store.sqlite.store import SQLiteStore

WINDOW = {"start": ns_to_datetime(T0), "end": ns_to_datetime(T0 + 20 * HOUR)}


@pytest.mark.parametrize(
    "narrowed",
    [
        {"user_id": "u1"},
        {"tag": "x"},
        {"group_by": "tag"},
        {"group_by": "metadata", "group_key": "k"},
    ],
    ids=["user", "tag", "by tag", "by metadata"],
)
def test_the_dashboard_finds_scored_traces_by_key(tmp_path: Path, narrowed: dict):
    store = SQLiteStore(tmp_path / "t.db")
    project = store.create_project("p").id
    try:
        history(store, project, 3)
        query = MetricsQuery(bucket="hour", **WINDOW, **narrowed)
        plans = _plans(store, lambda: store.metrics(project, query, list(METRIC_NAMES)))
        traces_scores = [
            plan
            for sql, plan in plans.items()
            if "FROM score_rollups AS r" in sql and "CROSS JOIN sessions" not in sql
        ]
        assert len(traces_scores) == 1, plans
        (plan,) = traces_scores
        assert plan[0].startswith("SEARCH r USING"), plan
        assert (
            "SEARCH k USING COVERING INDEX trace_keys_identity (project_id=? AND trace_id=?)"
            in plan
        )
        read = [s for s in plan if s.startswith(("SEARCH traces", "SCAN traces"))]
        assert read == ["SEARCH traces USING INTEGER PRIMARY KEY (rowid=?)"], plan
    finally:
        store.close()
