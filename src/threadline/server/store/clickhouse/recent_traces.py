"""The Traces list's common page, picked from ``trace_times`` (migration 0010).

The list as it opens (newest start first, a window reaching up to now, no other
filter) is ordered by each trace's start, the least start of its parts. ``trace_times``
holds a narrow row per trace part, sorted by start; reading its rows that start at or
after a time L gives, for every trace that *started* at or after L, its exact start
(its first part is among them and no part starts before it). A trace that started
before L but has a later part is read too, with a start too late: the page's traces
are merged in full anyway (``merged_traces``), which gives every candidate its true
start, and those that started before L are set aside.

If the traces that started at or after L fill the page, no other trace can be on it
(every other trace started earlier); so L starts an hour before now (or the cursor)
and widens only while the page is short. When the tries stop short of the window's
start with the page still short (a window of fewer traces than a page, or of a few
pages), the window's traces are read whole: they are the traces with a part ending at or
after the window's start (``trace_activity``, sorted by end: every trace active in the
window has one, its last), read as a range; if there are at most
``_WHOLE_WINDOW_AT_MOST`` pages of them, they are merged by id and are the list, exactly
(even a trace whose parts near the window's start all began over an hour before it).
Otherwise, or over all time past a month, the caller takes the general path
(``None``), which merges the window's traces in SQL (70 ms of the engine's CPU at 1M
spans for a window of 28 traces: docs/benchmarks.md). The page costs what the latest
traces cost to read, not what the window holds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from threadline.server.model import TraceQuery, datetime_to_ns
from threadline.server.store.clickhouse.recent_sessions import LOOKBACKS_NS, Rows
from threadline.server.store.rollups import TraceRollup

# The merged rollups of some trace ids (``merged_traces.by_ids``).
Merge = Callable[[Sequence[str]], list[TraceRollup]]


# Candidates: each trace with a part starting in [L, the cursor's start], by the least
# start seen. The upper bound keeps a deep page from reading everything newer; a trace
# seen with a start earlier than its true one is set aside after the merge.
_CANDIDATES = (
    "SELECT trace_id, min(start_ns) AS first FROM trace_times"
    " WHERE project_id = %(project)s AND start_ns >= %(since)s{upper}"
    " GROUP BY trace_id{cursor} ORDER BY first DESC, trace_id DESC LIMIT %(limit)s"
)

# The window's traces: those with a part ending at or after its start.
_WINDOW_TRACES = (
    "SELECT DISTINCT trace_id FROM trace_activity"
    " WHERE project_id = %(project)s AND end_ns >= %(since)s LIMIT %(limit)s"
)
# The window's traces are read whole only up to this many pages of them: past that,
# merging them all costs more than the general path.
_WHOLE_WINDOW_AT_MOST = 4


def serves(query: TraceQuery) -> bool:
    """Whether ``pick`` may choose this query's page: newest first, over a window open
    towards now, with no other filter."""
    return (
        query.sort == "time"
        and query.score_sort is None
        and query.end is None
        and not (
            query.session_id
            or query.user_id
            or query.status
            or query.q
            or query.tag
            or query.metadata
            or query.changed_after is not None
            or query.scores
            or query.numbers
        )
    )


def pick(
    rows: Rows,
    merge: Merge,
    project_id: int,
    query: TraceQuery,
    cursor: tuple[int, str] | None,
) -> list[TraceRollup] | None:
    """Up to ``query.limit + 1`` merged traces of the page after ``cursor`` (a start and
    a trace id), newest first; None when the page is not settled within a month of
    the cursor (or of now) or within the window, for the caller's general path."""
    window_start = None if query.start is None else datetime_to_ns(query.start)
    wanted = query.limit + 1
    params: dict[str, Any] = {"project": project_id, "limit": wanted}
    upper = having = ""
    if cursor is not None:
        params["first"], params["trace"] = cursor
        upper = " AND start_ns <= %(first)s"
        having = " HAVING (first, trace_id) < (%(first)s, %(trace)s)"
    # (A cursor later than now, such as the start of a score sort's rows without a
    # value, reads back from now: the cursor still bounds what is read.)
    now = time.time_ns()
    anchor = min(cursor[0], now) if cursor is not None else now
    merged: dict[str, TraceRollup] = {}
    for since in _lower_bounds(anchor, window_start):
        params["since"] = since
        sql = _CANDIDATES.format(upper=upper, cursor=having)
        candidates = [row[0] for row in rows(sql, params)]
        merged.update((t.trace_id, t) for t in merge([c for c in candidates if c not in merged]))
        # A full page of candidates that all started at or after L (so each was seen
        # with its true start) is the page: any trace not among them started earlier
        # than the last of them. A candidate that started before L, or a short page,
        # sends the read further back.
        page = [merged[c] for c in candidates if c in merged and merged[c].start_ns >= since]
        if len(page) == wanted == len(candidates):
            return page
    if window_start is None:
        return None
    return _whole_window(rows, merge, merged, params, window_start, cursor, wanted)


def _whole_window(
    rows: Rows,
    merge: Merge,
    merged: dict[str, TraceRollup],
    params: dict[str, Any],
    window_start: int,
    cursor: tuple[int, str] | None,
    wanted: int,
) -> list[TraceRollup] | None:
    """The page from every trace of the window (a part ending at or after its start),
    merged, if there are few enough; None if not."""
    most = _WHOLE_WINDOW_AT_MOST * wanted
    params = {"project": params["project"], "since": window_start, "limit": most + 1}
    found = [row[0] for row in rows(_WINDOW_TRACES, params)]
    if len(found) > most:
        return None
    merged.update((t.trace_id, t) for t in merge([f for f in found if f not in merged]))
    kept = [
        merged[f]
        for f in found
        if f in merged
        and merged[f].end_ns >= window_start
        and (cursor is None or (merged[f].start_ns, f) < cursor)
    ]
    kept.sort(key=lambda t: (t.start_ns, t.trace_id), reverse=True)
    return kept[:wanted]


def _lower_bounds(anchor: int, window_start: int | None) -> Sequence[int]:
    """The L of each try, widening, none at or before the window's start."""
    return [
        anchor - lookback
        for lookback in LOOKBACKS_NS
        if window_start is None or anchor - lookback > window_start
    ]
