"""The SQLite dashboard as it opens reads its session distributions from the lists'
indexes, index-only: no index of its own is kept in the turns' or the cost's order,
which every session write would update (migration 0029)."""

from __future__ import annotations

from pathlib import Path

from tests.store.query_plans import statement_plans as _plans
from tests.store.test_metric_aggregates import HOUR, T0, history
from threadline.server.model import METRIC_NAMES, MetricsQuery, ns_to_datetime
from threadline.server.store.sqlite.store import SQLiteStore

WINDOW = {"start": ns_to_datetime(T0), "end": ns_to_datetime(T0 + 20 * HOUR)}


def test_distributions_read_the_lists_indexes_alone(tmp_path: Path):
    store = SQLiteStore(tmp_path / "t.db")
    project = store.create_project("p").id
    try:
        history(store, project, 3)
        query = MetricsQuery(bucket="day", **WINDOW)
        plans = _plans(store, lambda: store.metrics(project, query, list(METRIC_NAMES)))
        turns = [plan for sql, plan in plans.items() if "GROUP BY trace_count" in sql]
        assert turns == [
            [
                "SEARCH sessions USING COVERING INDEX sessions_by_activity"
                " (project_id=? AND end_ns>?)",
                "USE TEMP B-TREE FOR GROUP BY",
            ]
        ], plans
        costs = [
            plan for sql, plan in plans.items() if sql.startswith("SELECT cost_usd FROM sessions")
        ]
        assert costs and all(
            plan == ["SEARCH sessions USING COVERING INDEX sessions_by_cost (project_id=?)"]
            for plan in costs
        ), plans
        with store._read() as conn:
            session_indexes = {
                name
                for (name,) in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'sessions'"
                )
            }
        assert not session_indexes & {
            "sessions_by_turns_for_metrics",
            "sessions_by_cost_for_metrics",
        }
    finally:
        store.close()
