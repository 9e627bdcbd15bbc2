"""A session's detail on ClickHouse in one statement: its traces merged, with the
session's score rollups and its traces'.

The detail had been three statements (the traces' merge, the session's rollups, the
traces' rollups), three round trips to the database. The rollups are now one scalar
subquery of the merge's statement, so the page is one round trip and one snapshot;
the traces' rollups are found through the session's trace ids, the array the merge
reads (``merged_traces.of_sessions_sql``). The engine does the same work either way
(docs/benchmarks.md), but for the score reads: one, not two.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from typing import Any

from threadline.server.model import SessionDetail
from threadline.server.store import rows as table_rows
from threadline.server.store import session_turns
from threadline.server.store.clickhouse import inferred_sessions, merged_traces, scores
from threadline.server.store.rollups import TraceRollup, roll_up_session
from threadline.server.store.score_rollups import ScoreRollup
from threadline.server.store.session_turns import TurnPage

Rows = Callable[[str, dict[str, Any]], list[tuple[Any, ...]]]


def _rollups(where: str, alias: str) -> str:
    return (
        "(SELECT groupArray((target_kind, target_id, name, row)) FROM ("
        + scores.latest_rollups(f"project_id = %(project)s AND {where}")
        + f")) AS {alias}"
    )


# The session's score rollups and its traces', in one read of ``score_rollups``: each
# read of it costs the engine about 5 ms however few rows it finds (planning the newest
# version's pick), a sixth of the detail (docs/benchmarks.md, round 15).
_SCORES = _rollups(
    "((target_kind = 'session' AND target_id IN %(sessions)s)"
    " OR (target_kind = 'trace' AND has(session_traces, target_id)))",
    "s_scores",
)
# The outer statement names the session's trace ids as the merge does (the same scalar
# subquery, which the engine runs once).
_DETAIL = (
    f"WITH {merged_traces.SESSION_TRACES}, {_SCORES}"
    f" SELECT m.*, s_scores FROM ({merged_traces.of_sessions_sql(True)}) AS m"
)


def read(
    rows: Rows, project_id: int, session_id: str, turns: TurnPage | None = None
) -> SessionDetail | None:
    """The session's detail, None when no trace is in it now; with ``turns``, a page of
    its traces (the session's rollup needs them all: they are all merged, and only the
    page's made into the answer)."""
    begun = session_turns.start(turns, project_id, session_id) if turns else None
    found = rows(_DETAIL, {"project": project_id, "sessions": [session_id]})
    # Every trace that ever named the session, kept if its merged rollup is in it still;
    # the session rolled up from them here, by the same rule the lists apply.
    traces = [
        (trace, row)
        for trace, row in ((merged_traces.finish(row[:4]), row) for row in found)
        if trace.session_id == session_id
    ]
    if not traces:
        return None
    traces.sort(key=lambda pair: (pair[0].start_ns, pair[0].trace_id))
    rollups = [trace for trace, _ in traces]
    shown, following = rollups, None
    if turns is not None and begun is not None:
        shown = _page(rollups, turns, begun)
        following = session_turns.next_cursor(
            [(r.start_ns, r.trace_id) for r in shown], turns.limit, begun, project_id, session_id
        )
        shown = shown[: turns.limit]
    detail = SessionDetail(
        **table_rows.session_of(roll_up_session(session_id, rollups)).model_dump(),
        traces=[table_rows.trace(r) for r in shown],
        first_turn=begun.turn if begun else 1,
        next_cursor=following,
    )
    row = traces[0][1]
    of_session: list[ScoreRollup] = []
    by_trace: dict[str, list[ScoreRollup]] = {}
    for r in row[4]:
        rollup = scores.rollup_of(r)
        if rollup.target_kind == "session":
            of_session.append(rollup)
        else:
            by_trace.setdefault(rollup.target_id, []).append(rollup)
    detail.scores = scores.by_name(of_session)
    for trace in detail.traces:
        trace.scores = scores.by_name(by_trace.get(trace.trace_id, []))
    detail.mark_inferred(inferred_sessions.signals_of(session_id))
    return detail


def _page(
    rollups: list[TraceRollup], turns: TurnPage, begun: session_turns.TurnStart
) -> list[TraceRollup]:
    """The page's rollups and one more, of the session's in turn order."""
    first = begun.skip
    if begun.after is not None:
        first = bisect.bisect_right(rollups, begun.after, key=lambda r: (r.start_ns, r.trace_id))
    return rollups[first : first + turns.limit + 1]
