"""The Sessions list filtered by a user: which sessions are the user's (those holding a
trace of theirs), read the way that finds a page soonest.

- A rare user's sessions are few: found by ``traces_by_user``, then read by key and
  sorted (``owned_sessions``).
- A common user's are many: the list is walked in its own order and each session kept
  if one of its traces is theirs, asked of ``traces_by_session`` (``walked_condition``).

Walking costs a look at a session's traces per session walked and needs about a page
divided by the user's share of the sessions; collecting costs a lookup per trace of the
user and the sort. The two meet near the square root of the project's size: a user is
common from ``_COMMON_SCALE * sqrt(traces)`` traces (within the bounds). Without
``sqlite_stat1`` the planner cannot tell the two apart: the single form it had, the
user's sessions collected into a list and the list's index walked against it, paid for
both (a whole walk for a rare user, every trace read for a common one).
"""

from __future__ import annotations

import json
import math
from typing import Any

from threadline.server.store.sqlite.driver import sqlite3

_COMMON_SCALE = 8
_COMMON_BOUNDS = (500, 20_000)


def owned_sessions(conn: sqlite3.Connection, project_id: int, user_id: str) -> list[str] | None:
    """The sessions of a rare user (sorted), or None for a common one (counting no more
    of their traces than the bound)."""
    traces = conn.execute("SELECT max(key) FROM trace_keys").fetchone()[0] or 0
    low, high = _COMMON_BOUNDS
    common_from = min(max(int(_COMMON_SCALE * math.sqrt(traces)), low), high)
    # Counted on the index alone (it holds project_id and user_id).
    found = conn.execute(
        "SELECT count(*) FROM (SELECT 1 FROM traces INDEXED BY traces_by_user"
        " WHERE project_id = ? AND user_id = ? LIMIT ?)",
        (project_id, user_id, common_from),
    ).fetchone()[0]
    if found >= common_from:
        return None
    # Named: for ``session_id IS NOT NULL`` the planner would range over the index by
    # session, every trace of the project.
    return sorted(
        {
            row[0]
            for row in conn.execute(
                "SELECT session_id FROM traces INDEXED BY traces_by_user"
                " WHERE project_id = ? AND user_id = ? AND session_id IS NOT NULL",
                (project_id, user_id),
            )
        }
    )


def walked_condition(user_id: str) -> tuple[str, list[Any]]:
    """For a common user, a condition on a ``sessions`` row: a trace of it is theirs.
    Named: by ``traces_by_user`` the planner would walk the user's traces for each
    session (16 s for a page at 100,000 sessions)."""
    return (
        "EXISTS (SELECT 1 FROM traces INDEXED BY traces_by_session"
        " WHERE traces.project_id = sessions.project_id"
        " AND traces.session_id = sessions.session_id AND traces.user_id = ?)",
        [user_id],
    )


def listed_condition(owned: list[str]) -> tuple[str, list[Any]]:
    """For a rare user, a condition on a ``sessions`` row: it is among ``owned``."""
    return "sessions.session_id IN (SELECT value FROM json_each(?))", [json.dumps(owned)]
