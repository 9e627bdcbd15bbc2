"""Deleting traces and sessions from the SQLite store, inside the caller's transaction.

What goes with a trace: its spans (and their words in the search index), its rollup,
its place in the live feed, its key (``trace_keys.py``), the scores that name it (span
scores included) and its notes. A session that loses a trace is rolled up again from
the traces it keeps (``store/rollups.py``), so its totals stay exact; a session left
with none is gone, and its own scores and notes go with it.
User totals are read from the trace rollups, so they follow by themselves. Runs, share
links and session inference that name what was deleted go too
(``deletion_leftovers.py``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from threadline.server.store import rows as table_rows
from threadline.server.store.rollups import TraceRollup, roll_up_session
from threadline.server.store.sqlite import (
    deletion_leftovers,
    metric_log,
    scores,
    search,
    session_writes,
    trace_keys,
)
from threadline.server.store.sqlite import rows as schema
from threadline.server.store.sqlite.chunked import execute_in, select_in
from threadline.server.store.sqlite.driver import sqlite3
from threadline.server.store.sqlite.trace_keys import KEYS_OF


def delete_traces(
    conn: sqlite3.Connection, project_id: int, trace_ids: Sequence[str], unpack: search.Unpack
) -> int:
    """Delete the traces (and what goes with them); returns how many were stored.
    ``unpack`` reads packed payloads: the search index forgets a span by its text."""
    ids = sorted(set(trace_ids))
    search.forget_traces(conn, project_id, ids, unpack)
    sessions = {
        row[0]
        for row in select_in(
            conn,
            f"SELECT DISTINCT session_id FROM traces WHERE trace_key IN {KEYS_OF}"
            " AND session_id IS NOT NULL",
            (project_id,),
            ids,
        )
    }
    # Spans are deleted whether or not their trace has a rollup: a rollup and its
    # spans are written in one transaction, so there is never one without the other.
    execute_in(conn, f"DELETE FROM spans WHERE trace_key IN {KEYS_OF}", (project_id,), ids)
    # The trigger taking each trace back from the aggregates changes their rows in
    # place: the changes still in their logs go in first (metric_log.py).
    metric_log.fold_all(conn)
    deleted = execute_in(
        conn, f"DELETE FROM traces WHERE trace_key IN {KEYS_OF}", (project_id,), ids
    )
    execute_in(conn, f"DELETE FROM trace_feed WHERE trace_key IN {KEYS_OF}", (project_id,), ids)
    # Last: the deletes above find the traces' rows by these keys.
    trace_keys.forget(conn, project_id, ids)
    _delete_annotations(conn, project_id, "trace_id", ids)
    emptied = _roll_up_sessions_again(conn, project_id, sorted(sessions))
    _delete_annotations(conn, project_id, "session_id", emptied)
    deletion_leftovers.forget(conn, project_id, ids, sorted(sessions), emptied)
    return deleted


def delete_sessions(
    conn: sqlite3.Connection, project_id: int, session_ids: Sequence[str], unpack: search.Unpack
) -> tuple[int, list[str]]:
    """Delete the sessions with every trace in them; returns how many were stored, and
    the ids of the traces deleted with them."""
    ids = sorted(set(session_ids))
    existed = sum(
        1
        for _ in select_in(
            conn,
            "SELECT 1 FROM sessions WHERE project_id = ? AND session_id IN ({})",
            (project_id,),
            ids,
        )
    )
    trace_ids = [
        row[0]
        for row in select_in(
            conn,
            "SELECT trace_id FROM traces WHERE project_id = ? AND session_id IN ({})",
            (project_id,),
            ids,
        )
    ]
    delete_traces(conn, project_id, trace_ids, unpack)
    # A session's own scores and notes may exist with no trace stored (feedback can
    # come before the spans): they go too.
    _delete_annotations(conn, project_id, "session_id", ids)
    deletion_leftovers.forget(conn, project_id, (), ids, ids)
    return existed, trace_ids


def _delete_annotations(
    conn: sqlite3.Connection, project_id: int, column: str, ids: Sequence[str]
) -> None:
    """Delete the scores and notes whose ``column`` (trace_id or session_id) is among
    ``ids``, and bring the score rollups they counted in up to date."""
    if not ids:
        return
    touched = {
        (row[0], row[1], row[2])
        for row in select_in(
            conn,
            f"SELECT target_kind, target_id, name FROM scores WHERE project_id = ?"
            f" AND {column} IN ({{}})",
            (project_id,),
            ids,
        )
    }
    execute_in(
        conn, f"DELETE FROM scores WHERE project_id = ? AND {column} IN ({{}})", (project_id,), ids
    )
    execute_in(
        conn, f"DELETE FROM notes WHERE project_id = ? AND {column} IN ({{}})", (project_id,), ids
    )
    scores.refresh(conn, project_id, touched)


def _roll_up_sessions_again(
    conn: sqlite3.Connection, project_id: int, session_ids: list[str]
) -> list[str]:
    """Recompute the sessions from the traces they have left; returns those left with
    none, whose rows are removed."""
    by_session: dict[str, list[TraceRollup]] = defaultdict(list)
    for row in select_in(
        conn, schema.SELECT_TRACES + " AND session_id IN ({})", (project_id,), session_ids
    ):
        rollup = table_rows.trace_rollup(row)
        by_session[rollup.session_id or ""].append(rollup)
    session_writes.write(
        conn,
        project_id,
        [roll_up_session(session_id, traces) for session_id, traces in by_session.items()],
    )
    emptied = [s for s in session_ids if s not in by_session]
    conn.executemany(
        "DELETE FROM sessions WHERE project_id = ? AND session_id = ?",
        [(project_id, s) for s in emptied],
    )
    return emptied
