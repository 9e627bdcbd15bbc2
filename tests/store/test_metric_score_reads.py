"""The SQLite dashboard's score figures of a filtered or grouped view read the score
rollups of traces along their key, with no trace read for them: the traces' rows the
view reads anyway give each scored trace its group (a join from every rollup to its
trace cost two random reads a rollup). A user's few traces find their rollups by key,
other views read the project's trace rollups in order. (The unfiltered view reads the
sums kept on write: ``test_metric_scores.py``.)"""

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
def test_the_dashboard_reads_trace_scores_along_their_key_and_no_trace_for_them(
    tmp_path: Path, narrowed: dict
):
    store = SQLiteStore(tmp_path / "t.db")
    project = store.create_project("p").id
    try:
        history(store, project, 3)
        query = MetricsQuery(bucket="hour", **WINDOW, **narrowed)
        plans = _plans(store, lambda: store.metrics(project, query, list(METRIC_NAMES)))
        traces_scores = [
            plan
            for sql, plan in plans.items()
            if "FROM score_rollups AS r" in sql and "CROSS JOIN s " not in sql
        ]
        assert len(traces_scores) == 1, plans
        (plan,) = traces_scores
        key = (
            "project_id=? AND target_kind=? AND target_id=?"
            if "user_id" in narrowed
            else ("project_id=? AND target_kind=?")
        )
        assert plan == [f"SEARCH r USING PRIMARY KEY ({key})"], plan
    finally:
        store.close()
