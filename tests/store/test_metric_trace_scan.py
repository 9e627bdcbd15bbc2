"""The SQLite dashboard narrowed by a tag or metadata, or grouped, reads the traces of
its range by a scan of the table when the range holds most of the table's traces, and
along the index by their end when it holds few; the figures are the same either way,
to the last digit of a cost."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.spans import span_record
from tests.store.query_plans import statement_plans as _plans
from threadline.server.model import METRIC_NAMES, MetricsQuery, ns_to_datetime
from threadline.server.store.sqlite import metrics as sqlite_metrics
from threadline.server.store.sqlite.store import SQLiteStore

HOUR = 3600 * 10**9
DAY = 24 * HOUR
T0 = 1_790_000_000_000_000_000 // DAY * DAY
# Summed in the order written or in the reverse, as floats these differ in the last digit;
# (SQLite sums floats with compensation: 1/3 and 1/7 are needed to tell.)
COSTS = [0.1, 0.2, 0.3, 0.7, 1 / 3, 0.13, 0.4, 0.05, 1 / 7, 0.33, 0.17, 0.6]
# All twelve traces (a scan), or two of them (along the index).
ALL = {"bucket": "day", "start": ns_to_datetime(T0), "end": ns_to_datetime(T0 + DAY)}
FEW = {"bucket": "hour", "start": ns_to_datetime(T0), "end": ns_to_datetime(T0 + 2 * HOUR)}
NARROWED = [
    {"tag": "x"},
    {"metadata": {"k": "v"}},
    {"group_by": "tag"},
    {"group_by": "metadata", "group_key": "k"},
]


def fill(store: SQLiteStore, project: int) -> None:
    """Twelve traces of one day, written latest first: the table's order is the reverse
    of the order by their end."""
    for i, cost in reversed(list(enumerate(COSTS))):
        store.write_spans(
            project,
            [
                span_record(
                    i + 1,
                    i + 1,
                    T0 + i * HOUR,
                    60 * 10**9,
                    cost_usd=cost,
                    model="gpt",
                    input_tokens=i,
                    session_id=f"s{i % 3}",
                    user_id="u1",
                    tags=["x", "y"] if i % 2 else ["x"],
                    metadata={"k": "v"},
                )
            ],
        )


def scanned(plans: dict[str, list[str]]) -> list[str]:
    """The statements on the range's traces that scan the table (grouped, the sessions'
    groups are read from all the project's traces: a scan here, where it holds them all)."""
    return [
        sql
        for sql, plan in plans.items()
        if "SCAN traces" in plan and not sql.startswith("WITH sg AS MATERIALIZED")
    ]


@pytest.mark.parametrize("narrowed", NARROWED, ids=["tag", "metadata", "by tag", "by metadata"])
def test_the_traces_are_scanned_when_the_range_holds_most_of_them(tmp_path: Path, narrowed: dict):
    store = SQLiteStore(tmp_path / "t.db")
    project = store.create_project("p").id
    try:
        fill(store, project)
        names = list(METRIC_NAMES)
        for window, scans in ((ALL, True), (FEW, False)):
            query = MetricsQuery(**window, **narrowed)
            plans = _plans(store, lambda q=query: store.metrics(project, q, names))
            trace_statements = [sql for sql in plans if "FROM traces" in sql]
            assert trace_statements, plans
            if scans:
                # The series, which carries the usage by model and the trace ids too.
                series = [sql for sql in scanned(plans) if "GROUP BY grp, user_id" in sql]
                assert len(series) == 1, plans
                assert "traces_by_end" not in str(plans), plans
            else:
                assert not scanned(plans), plans
    finally:
        store.close()


@pytest.mark.parametrize("narrowed", NARROWED, ids=["tag", "metadata", "by tag", "by metadata"])
def test_a_scan_and_the_index_give_the_same_figures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, narrowed: dict
):
    store = SQLiteStore(tmp_path / "t.db")
    project = store.create_project("p").id
    try:
        fill(store, project)
        names = list(METRIC_NAMES)
        for window in (ALL, FEW):
            query = MetricsQuery(**window, **narrowed)
            figures = []
            for share, plan in ((0.0, "SCAN traces"), (2.0, "traces_by_end")):
                monkeypatch.setattr(sqlite_metrics, "_SCAN_SHARE", share)
                plans = _plans(store, lambda q=query: store.metrics(project, q, names))
                assert plan in str(plans), plans
                figures.append(store.metrics(project, query, names))
            assert figures[0] == figures[1]
    finally:
        store.close()


@pytest.mark.parametrize("narrowed", NARROWED, ids=["tag", "metadata", "by tag", "by metadata"])
def test_the_range_is_counted_from_its_hours_only(tmp_path: Path, narrowed: dict):
    """Whether to scan is read from the aggregates of the range's hours, along their key;
    all of the project's rows only where a grouping's range holds too few to scan."""
    store = SQLiteStore(tmp_path / "t.db")
    project = store.create_project("p").id
    try:
        fill(store, project)
        for window in (ALL, FEW):
            query = MetricsQuery(**window, **narrowed)
            plans = _plans(store, lambda q=query: store.metrics(project, q, ["traces"]))
            counts = [plan for sql, plan in plans.items() if "FROM metric_activity" in sql]
            whole = [plan for plan in counts if not any("last_hour>?" in s for s in plan)]
            assert counts, plans
            assert len(whole) == (window is FEW and "group_by" in narrowed), plans
    finally:
        store.close()
