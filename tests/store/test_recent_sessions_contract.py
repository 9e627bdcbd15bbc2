"""The Sessions list as it opens (latest activity first, a window up to now, or all
time), on every backend: pages walked with a cursor hold every session active in the
window once, in order, each with the totals of all its traces, however far apart its
traces are, however its traces were split into exports, and after a trace moved to
another session. (On ClickHouse the page is picked from ``trace_activity``, reading
back from the newest activity only as far as the page needs.)"""

from __future__ import annotations

import time
from datetime import timedelta

from tests.store import test_contract
from tests.store.test_contract import MS, T0, record
from threadline.server.model import SessionQuery, SpanRecord, ns_to_datetime
from threadline.server.store import Store

HOUR_MS = 3600 * 1000
DAY_MS = 24 * HOUR_MS

backend = test_contract.backend
store = test_contract.store


def _ago(now_ms: int, ms: int) -> int:
    """A ``record`` start (ms after T0) that many ms before now."""
    return now_ms - ms


def _spans(now_ms: int) -> tuple[list[list[SpanRecord]], dict[str, tuple[int, int]]]:
    """Exports (each one write) and, per session, (trace count, span count)."""
    exports: list[list[SpanRecord]] = []
    expected: dict[str, tuple[int, int]] = {}
    trace = span = 0
    # 30 sessions, one turn each, one every 20 hours back from now (the oldest 24 days
    # ago): the widening reads of the ClickHouse pick cross 1 hour, 1 and 7 days.
    for i in range(30):
        trace, span = trace + 1, span + 2
        start = _ago(now_ms, i * 20 * HOUR_MS + 5000)
        exports.append(
            [
                record(trace, span - 1, start=start, length=2000, session=f"s{i:02d}"),
                record(trace, span, span - 1, start=start + 10, length=100, tokens=(1, 2)),
            ]
        )
        expected[f"s{i:02d}"] = (1, 2)
    # A session active now whose first turn was 40 days ago: listed in the last 7 days
    # with both turns counted.
    for days in (40, 0):
        trace, span = trace + 1, span + 1
        start = _ago(now_ms, days * DAY_MS + 3000)
        exports.append([record(trace, span, start=start, length=1000, session="long")])
    expected["long"] = (2, 2)
    # A turn exported in two parts: the root names the session, the child (exported
    # later, as a batch exporter may) names none; both count.
    trace, span = trace + 1, span + 2
    start = _ago(now_ms, 2 * HOUR_MS)
    exports.append([record(trace, span - 1, start=start, length=5000, session="split")])
    exports.append([record(trace, span, span - 1, start=start + 100, length=50)])
    expected["split"] = (1, 2)
    # A turn first seen through a child naming "moved-from", then its root naming
    # "moved-to": the turn is in "moved-to" only, and "moved-from" has no turn left.
    trace, span = trace + 1, span + 2
    start = _ago(now_ms, 3 * HOUR_MS)
    exports.append([record(trace, span, span - 1, start=start + 10, session="moved-from")])
    exports.append([record(trace, span - 1, start=start, length=3000, session="moved-to")])
    expected["moved-to"] = (1, 2)
    return exports, expected


def _walk(store: Store, project: int, query: SessionQuery) -> list[tuple[str, int, int, int]]:
    """Every page's (session, end, traces, spans), following the cursor."""
    rows: list[tuple[str, int, int, int]] = []
    cursor = None
    for _ in range(100):
        page = store.list_sessions(project, query.model_copy(update={"cursor": cursor}))
        rows += [
            (s.session_id, int(s.end_time.timestamp() * 1000), s.trace_count, s.span_count)
            for s in page.items
        ]
        cursor = page.next_cursor
        if cursor is None:
            return rows
    raise AssertionError("the cursor never ended")


def test_recent_sessions_pages_hold_each_active_session_once_in_order(store: Store):
    project = store.create_project("p").id
    now_ms = (time.time_ns() - T0) // MS
    exports, expected = _spans(now_ms)
    for export in exports:
        store.write_spans(project, export)

    everything = _walk(store, project, SessionQuery(limit=4))
    assert {row[0] for row in everything} == set(expected)
    assert len(everything) == len(expected)  # each once
    ends = [(row[1], row[0]) for row in everything]
    assert ends == sorted(ends, reverse=True)  # latest activity first, then id
    for session, _end, traces, spans in everything:
        assert (traces, spans) == expected[session], session
        detail = store.get_session(project, session)
        assert detail is not None and detail.trace_count == traces
    assert store.get_session(project, "moved-from") is None

    week_start = ns_to_datetime(time.time_ns()) - timedelta(days=7)
    week = _walk(store, project, SessionQuery(limit=4, start=week_start))
    in_week = [row for row in everything if row[1] * MS >= (week_start.timestamp() * 1e9)]
    assert week == in_week
    assert "long" in {row[0] for row in week} and "s29" not in {row[0] for row in week}

    # One page bigger than the window's sessions: no cursor, nothing left out.
    whole = store.list_sessions(project, SessionQuery(limit=100, start=week_start))
    assert whole.next_cursor is None
    assert [s.session_id for s in whole.items] == [row[0] for row in week]


def test_a_session_of_more_turns_than_one_statement_reads_whole(store: Store):
    # 1,100 turns: more trace ids than the ClickHouse store binds into one statement.
    project = store.create_project("p").id
    now_ms = (time.time_ns() - T0) // MS
    turns = [
        record(n, n, start=now_ms - 2 * HOUR_MS + n * 10, session="marathon", tokens=(1, 1))
        for n in range(1, 1101)
    ]
    store.write_spans(project, turns)
    detail = store.get_session(project, "marathon")
    assert detail is not None and detail.trace_count == 1100 and len(detail.traces) == 1100
    assert detail.total_tokens == 2200
    [listed] = store.list_sessions(project, SessionQuery(limit=5)).items
    assert (listed.session_id, listed.trace_count, listed.total_tokens) == ("marathon", 1100, 2200)
