"""What else names a deleted trace or session in SQLite, removed in the delete's own
transaction (``deletion.py`` calls ``forget``), so that nothing derived from deleted
data is left behind:

- **evaluation runs** that judged a deleted trace, or a session that is gone (their
  reasons can quote what was judged). A session that keeps some traces keeps its own
  runs, as it keeps its own scores. ``evaluation_totals`` is left as it is: it counts
  what the judge did and cost, which deleting what it judged does not undo;
- **share links** to a deleted trace or to a session that is gone, so that a link
  cannot show new data written later under the same id;
- **session inference** of deleted traces: their placement (``inferred_traces``), their
  conversation keys (digests of their messages), and the rows of inferred sessions
  that are gone;
- **GenAI log events** of deleted traces (``genai_events.py``), kept or waiting.
"""

from __future__ import annotations

from collections.abc import Sequence

from threadline.server.store.sqlite import genai_events
from threadline.server.store.sqlite.chunked import execute_in, select_in
from threadline.server.store.sqlite.driver import sqlite3


def forget(
    conn: sqlite3.Connection,
    project_id: int,
    trace_ids: Sequence[str],
    sessions: Sequence[str],
    sessions_gone: Sequence[str],
) -> None:
    """Remove what names the deleted ``trace_ids`` (whose sessions are ``sessions``)
    or the sessions left with no trace (``sessions_gone``)."""
    _forget_runs(conn, project_id, trace_ids, sessions, sessions_gone)
    genai_events.forget_traces(conn, project_id, trace_ids)
    execute_in(
        conn,
        "DELETE FROM share_links WHERE project_id = ? AND kind = 'trace' AND target_id IN ({})",
        (project_id,),
        trace_ids,
    )
    execute_in(
        conn,
        "DELETE FROM share_links WHERE project_id = ? AND kind = 'session' AND target_id IN ({})",
        (project_id,),
        sessions_gone,
    )
    for table in ("inferred_traces", "conversation_keys"):
        execute_in(
            conn,
            f"DELETE FROM {table} WHERE project_id = ? AND trace_id IN ({{}})",
            (project_id,),
            trace_ids,
        )
    execute_in(
        conn,
        "DELETE FROM inferred_sessions WHERE project_id = ? AND session_id IN ({})",
        (project_id,),
        sessions_gone,
    )


def _forget_runs(
    conn: sqlite3.Connection,
    project_id: int,
    trace_ids: Sequence[str],
    sessions: Sequence[str],
    sessions_gone: Sequence[str],
) -> None:
    # Every run names its session (a trace's run too), so the session index finds them.
    deleted_traces, gone = set(trace_ids), set(sessions_gone)
    doomed = [
        run_id
        for run_id, kind, target_id, session_id in select_in(
            conn,
            "SELECT id, target_kind, target_id, session_id FROM evaluation_runs"
            " WHERE project_id = ? AND session_id IN ({})",
            (project_id,),
            sorted(set(sessions) | gone),
        )
        if session_id in gone or (kind == "trace" and target_id in deleted_traces)
    ]
    execute_in(
        conn,
        "DELETE FROM evaluation_runs WHERE project_id = ? AND id IN ({})",
        (project_id,),
        doomed,
    )
