"""The traces' index by their end (SQLite migration 0025): only the columns the reads
that go by a trace's end need, and those reads search it (or a user's traces) rather
than scan the table: retention and the dashboard's users by hour read nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.store.query_plans import statement_plans as _plans
from tests.store.test_metric_aggregates import HOUR, T0, history
from threadline.server.model import METRIC_NAMES, MetricsQuery, ns_to_datetime
from threadline.server.store.sqlite import metrics as sqlite_metrics
from threadline.server.store.sqlite.store import SQLiteStore

FROM, TO = ns_to_datetime(T0 - 3 * HOUR), ns_to_datetime(T0 + 100 * HOUR)
QUERIES = {
    "by hour": MetricsQuery(start=FROM, end=TO, bucket="hour"),
    "one user": MetricsQuery(start=FROM, end=TO, bucket="day", user_id="u2"),
    "one tag": MetricsQuery(start=FROM, end=TO, bucket="day", tag="y"),
    "grouped by tag": MetricsQuery(start=FROM, end=TO, bucket="day", group_by="tag"),
}


def test_the_index_by_end_holds_only_what_its_reads_need_and_they_never_scan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # Here every trace is in the range: a tag's and a grouping's statements would scan the
    # table, as they should (test_metric_trace_scan.py); kept to the index, to test it.
    monkeypatch.setattr(sqlite_metrics, "_SCAN_SHARE", 2.0)
    store = SQLiteStore(tmp_path / "t.db")
    project = store.create_project("p").id
    try:
        history(store, project, 3)
        with store._read() as conn:
            columns = [row[2] for row in conn.execute("PRAGMA index_info(traces_by_end)")]
            names = {row[1] for row in conn.execute("PRAGMA index_list(traces)")}
        assert columns == ["project_id", "end_ns", "start_ns", "user_id", "status", "cost_usd"]
        assert "traces_for_metrics" not in names

        expired = _plans(store, lambda: store.expired_traces(project, T0 + 50 * HOUR, 10))
        assert list(expired.values()) == [
            ["SEARCH traces USING INDEX traces_by_end (project_id=? AND end_ns<?)"]
        ]
        names_list = list(METRIC_NAMES)
        for label, query in QUERIES.items():
            plans = _plans(store, lambda q=query: store.metrics(project, q, names_list))
            steps = [step for plan in plans.values() for step in plan]
            assert not [s for s in steps if s.startswith("SCAN traces")], (label, plans)
            if label == "by hour":
                # Who was active when, and their traces, errors and cost: index-only, in
                # one statement.
                by_end = [s for s in steps if "traces_by_end" in s]
                assert len(by_end) == 1, plans
                assert all("COVERING INDEX traces_by_end" in s for s in by_end), by_end
            if label == "one user":
                # A user's traces are found by the user, not by reading the whole range
                # (a scored trace is found by its key: one row by rowid).
                on_traces = [s for s in steps if s.startswith("SEARCH traces")]
                by_rowid = "SEARCH traces USING INTEGER PRIMARY KEY (rowid=?)"
                assert on_traces and all("user_id=?" in s or s == by_rowid for s in on_traces), (
                    plans
                )
                assert any("user_id=?" in s for s in on_traces), plans
    finally:
        store.close()
