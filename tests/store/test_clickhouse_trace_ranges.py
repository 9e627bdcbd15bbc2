"""The ClickHouse reads of traces by id, bounded by where the traces lie in time
(``trace_spans_range``, migration 0022): they open only the parts of the traces' own
months, and stay exact when a trace spans months or its range is not visible yet."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.store.clickhouse_statements import own_store
from tests.store.test_contract import MS, T0, record
from threadline.server.model import SessionQuery
from threadline.server.store.clickhouse import merged_traces, picked_traces
from threadline.server.store.clickhouse.store import ClickHouseStore

pytestmark = pytest.mark.clickhouse

DAY_MS = 86_400_000
# With it, ClickHouse refuses a read of a table partitioned by time whose condition
# cannot skip partitions by the time (a lookup by id alone).
FORCED = " SETTINGS force_index_by_date = 1"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ClickHouseStore]:
    with own_store(tmp_path) as opened:
        yield opened


def _now_ms() -> int:
    return (time.time_ns() - T0) // MS


def _write_across_months(store: ClickHouseStore) -> int:
    """Trace 1 in session "long": a span 70 days ago and one now, in two exports (the
    later one first); trace 2, now, in session "short"; trace 3, 70 days ago, alone."""
    project = store.create_project("p").id
    now_ms = _now_ms()
    old_ms = now_ms - 70 * DAY_MS
    store.write_spans(project, [record(1, 2, 1, start=now_ms - 1000, session="long")])
    store.write_spans(project, [record(1, 1, start=old_ms, length=10, session="long")])
    store.write_spans(project, [record(2, 3, start=now_ms - 500, session="short")])
    store.write_spans(project, [record(3, 4, start=old_ms + 5, session="old")])
    return project


def _assert_read_whole(store: ClickHouseStore, project: int) -> None:
    page = store.list_sessions(project, SessionQuery(limit=50))
    spans = {s.session_id: s.span_count for s in page.items}
    assert spans == {"short": 1, "long": 2, "old": 1}
    detail = store.get_session(project, "long")
    assert detail is not None
    assert [(t.trace_id, t.span_count) for t in detail.traces] == [(f"{1:032x}", 2)]
    trace = store.get_trace(project, f"{1:032x}")
    assert trace is not None
    assert trace.span_count == 2
    assert sorted(s.span_id for s in trace.spans) == [f"{1:016x}", f"{2:016x}"]


def test_a_trace_across_months_is_read_whole(store: ClickHouseStore):
    # Its range reaches back to its first span's month: the reads bounded by it open
    # both months' parts, though the page picked it by its latest part.
    project = _write_across_months(store)
    _assert_read_whole(store, project)


def test_a_trace_whose_range_is_not_visible_is_read_whole(store: ClickHouseStore):
    # A replica that lags may show a trace's parts before its range: the reads are then
    # not bounded (here every range is gone, then one of several).
    project = _write_across_months(store)
    store._ch.command("TRUNCATE TABLE trace_spans_range")
    _assert_read_whole(store, project)
    store._ch.command(
        "INSERT INTO trace_spans_range SELECT project_id, trace_id, min(start_ns), max(end_ns)"
        f" FROM spans WHERE trace_id != '{1:032x}' GROUP BY project_id, trace_id"
    )
    _assert_read_whole(store, project)


def test_reads_by_id_open_only_their_traces_months(store: ClickHouseStore):
    # Trace 2 (now) and trace 3 (70 days ago) lie in months of their own: each read by
    # id, with force_index_by_date, skips the other's month by the trace's range.
    project = _write_across_months(store)
    now = {"project": project, "seen": [f"{2:032x}"], "count": 1, "sessions": ["short"]}
    packed = picked_traces._PAGE_TRACES.split(" UNION ALL ")[0]
    assert [row[1] for row in store._rows(packed + FORCED, now)] == [f"{2:032x}"]
    unbounded = packed.replace(f" AND {merged_traces.IN_RANGE}", "")
    with pytest.raises(Exception, match=r"force_index_by_date|INDEX_NOT_USED"):
        store._rows(unbounded + FORCED, now)
    old = {"project": project, "ids": [f"{3:032x}"], "count": 1}
    by_id = merged_traces.merged_sql(merged_traces._OF_IDS, "%(count)s")
    assert [row[0] for row in store._rows(by_id + FORCED, old)] == [f"{3:032x}"]
    # The trace detail's statement (its parts, its spans, its scores) as a whole.
    forced = store._rows
    store._rows = lambda sql, params=None: forced(sql + FORCED, params)  # type: ignore[method-assign]
    trace = store.get_trace(project, f"{3:032x}")
    assert trace is not None and [s.span_id for s in trace.spans] == [f"{4:016x}"]
