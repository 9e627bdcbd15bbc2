"""The Traces list as it opens (newest first, a window up to now, or all time), on every
backend: pages walked with a cursor hold every trace of the window once, in start
order, each with all its spans, including a trace whose first part is old and whose
later part is new. (On ClickHouse the page is picked from ``trace_times``, reading back
from now only as far as the page needs, and only the page's traces are merged.)"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from tests.store import test_contract
from tests.store.test_contract import MS, T0, record
from threadline.server.model import SpanRecord, TraceQuery, datetime_to_ns, ns_to_datetime
from threadline.server.store import Store
from threadline.server.store.clickhouse import ClickHouseStore

HOUR_MS = 3600 * 1000
DAY_MS = 24 * HOUR_MS

backend = test_contract.backend
store = test_contract.store


def _exports(now_ms: int) -> tuple[list[list[SpanRecord]], dict[str, tuple[int, int, int]]]:
    """Exports (each one write) and, per trace id, (start ms, end ms, span count)."""
    exports: list[list[SpanRecord]] = []
    expected: dict[str, tuple[int, int, int]] = {}
    span = 0

    def trace_id(n: int) -> str:
        return f"{n:032x}"

    # 40 traces, one every 7 hours back from now (the oldest 11 days ago): the reads
    # back from now cross an hour, a day and 7 days.
    for n in range(1, 41):
        span += 2
        start = now_ms - (n - 1) * 7 * HOUR_MS - 5000
        exports.append(
            [
                record(n, span - 1, start=start, length=2000),
                record(n, span, span - 1, start=start + 10, length=100, tokens=(1, 2)),
            ]
        )
        expected[trace_id(n)] = (start, start + 2000, 2)
    # Two traces 40 and 41 days old: beyond the month the ClickHouse pick reads back.
    for n, days in ((41, 40), (42, 41)):
        span += 1
        start = now_ms - days * DAY_MS
        exports.append([record(n, span, start=start, length=1000)])
        expected[trace_id(n)] = (start, start + 1000, 1)
    # A trace whose root ran 3 days ago and whose child ran (and was exported) a
    # minute ago: it started 3 days ago, and is listed there, with both spans.
    span += 2
    root_start = now_ms - 3 * DAY_MS
    exports.append([record(43, span - 1, start=root_start, length=1000)])
    exports.append([record(43, span, span - 1, start=now_ms - 60_000, length=500)])
    expected[trace_id(43)] = (root_start, now_ms - 60_000 + 500, 2)
    # A trace exported in two parts a moment apart, the child first.
    span += 2
    start = now_ms - 30 * 60_000
    exports.append([record(44, span, span - 1, start=start + 50, length=50)])
    exports.append([record(44, span - 1, start=start, length=5000)])
    expected[trace_id(44)] = (start, start + 5000, 2)
    return exports, expected


def _walk(store: Store, project: int, query: TraceQuery) -> list[tuple[str, int, int]]:
    """Every page's (trace, start ms, spans), following the cursor."""
    rows: list[tuple[str, int, int]] = []
    cursor = None
    for _ in range(100):
        page = store.list_traces(project, query.model_copy(update={"cursor": cursor}))
        rows += [
            (t.trace_id, (datetime_to_ns(t.start_time) - T0) // MS, t.span_count)
            for t in page.items
        ]
        cursor = page.next_cursor
        if cursor is None:
            return rows
    raise AssertionError("the cursor never ended")


def _in_order(expected: dict[str, tuple[int, int, int]], since_ms: int | None) -> list[Any]:
    """The expected (trace, start, spans) of the traces active since ``since_ms``,
    newest start first (then trace id)."""
    kept = [
        (start, trace, spans)
        for trace, (start, end, spans) in expected.items()
        if since_ms is None or end >= since_ms
    ]
    return [(trace, start, spans) for start, trace, spans in sorted(kept, reverse=True)]


def test_recent_traces_pages_hold_each_trace_once_in_start_order(store: Store):
    project = store.create_project("p").id
    now_ms = (time.time_ns() - T0) // MS
    exports, expected = _exports(now_ms)
    for export in exports:
        store.write_spans(project, export)

    assert _walk(store, project, TraceQuery(limit=4)) == _in_order(expected, None)
    week_start = ns_to_datetime(time.time_ns()) - timedelta(days=7)
    week_ms = (datetime_to_ns(week_start) - T0) // MS
    week = _walk(store, project, TraceQuery(limit=4, start=week_start))
    assert week == _in_order(expected, week_ms)
    assert f"{43:032x}" in {row[0] for row in week}  # old root, new child: in the window
    # One page bigger than the window's traces: no cursor, nothing left out.
    whole = store.list_traces(project, TraceQuery(limit=100, start=week_start))
    assert whole.next_cursor is None
    assert [(t.trace_id, t.span_count) for t in whole.items] == [
        (trace, spans) for trace, _, spans in _in_order(expected, week_ms)
    ]


def test_the_first_page_merges_only_the_traces_it_shows(store: Store):
    if not isinstance(store, ClickHouseStore):
        return  # how ClickHouse reads; SQLite keeps finished rows
    project = store.create_project("p").id
    now_ms = (time.time_ns() - T0) // MS
    exports, expected = _exports(now_ms)
    for export in exports:
        store.write_spans(project, export)
    statements: list[tuple[str, dict[str, Any]]] = []
    rows = store._rows

    def recording(sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        statements.append((sql, params or {}))
        return rows(sql, params)

    store._rows = recording  # type: ignore[method-assign]
    week_start = ns_to_datetime(time.time_ns()) - timedelta(days=7)
    page = store.list_traces(project, TraceQuery(limit=4, start=week_start))
    assert [t.trace_id for t in page.items] == [row[0] for row in _in_order(expected, None)[:4]]
    merges = [
        params
        for sql, params in statements
        if "trace_parts_by_id" in sql or "trace_parts_packed" in sql
    ]
    assert merges, "no merge read"
    # Every merge names its traces, a page's worth at most: none merges the window.
    assert all(0 < len(params.get("ids", ())) <= 5 for params in merges), statements


def test_a_window_of_fewer_traces_than_a_page_lists_each_once(store: Store):
    """A 20-hour window (five traces: one begun three days ago with a part in it, one
    ending just before it), walked in pages of 2 and read as one page: the same on
    both stores. On ClickHouse its candidates are merged by id, never the window in
    SQL."""
    project = store.create_project("p").id
    now_ms = (time.time_ns() - T0) // MS
    exports, expected = _exports(now_ms)
    for export in exports:
        store.write_spans(project, export)
    statements: list[str] = []
    if isinstance(store, ClickHouseStore):
        rows = store._rows

        def recording(sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
            statements.append(sql)
            return rows(sql, params)

        store._rows = recording  # type: ignore[method-assign]
    start = ns_to_datetime(time.time_ns()) - timedelta(hours=20)
    wanted = _in_order(expected, (datetime_to_ns(start) - T0) // MS)
    assert [row[0] for row in wanted] == [f"{n:032x}" for n in (1, 44, 2, 3, 43)]
    assert _walk(store, project, TraceQuery(limit=2, start=start)) == wanted
    whole = store.list_traces(project, TraceQuery(limit=50, start=start))
    assert whole.next_cursor is None
    assert [(t.trace_id, t.span_count) for t in whole.items] == [
        (trace, spans) for trace, _, spans in wanted
    ]
    # The general path merges the window's traces found in trace_times in SQL.
    assert not [sql for sql in statements if "trace_parts_by_id" in sql], statements
