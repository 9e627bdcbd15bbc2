"""The Sessions list filtered by a user: which sessions are the user's (those holding a
trace of theirs), found the way that reads the least for the user's share of the
project. Without ``sqlite_stat1`` the planner cannot tell a rare user from a common one,
so the user's traces, counted on ``traces_by_user`` up to the bound of a common user,
choose:

- **rare** (fewer than ``_RARE`` traces): the sessions are collected from their traces
  and read by key, then sorted (``Forms.owned``);
- **common** (``_COMMON`` traces or more): the list is walked in its own order, each
  session kept if a trace of it is theirs, asked of ``traces_by_session``; unless the
  list is sorted by time and many sessions begun after the user's latest trace come
  first (``_late``: a user gone quiet), which takes the form between;
- **between**: the user's sessions are collected into a list and the list's index is
  walked against it (the one form the planner took for every user).

Collecting costs a lookup a trace of the user (a few µs; more by key, which reads each
session's row and sorts them); the list's index walked against the list costs ~0.2 µs a
session passed; walked asking each session ~8 µs a session passed. A page needs about
a page of sessions divided by the user's share of them, so each pair of forms meets
near the square root of the project's size (at 100,000 sessions of 200,000 traces:
~700 and ~5,000 traces; benchmarks.md, round 17).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from threadline.server.store.sqlite.driver import sqlite3

# (scale, lowest, highest): a bound of ``scale * sqrt(traces in the store)`` traces.
_RARE = (1.5, 200, 5_000)
_COMMON = (12.0, 2_000, 50_000)
# A walk by time passes at most a common user's bound divided by this before the user's
# latest trace (``_late``).
_PASSED_SHARE = 5


@dataclass(frozen=True)
class Forms:
    """How the list finds a user's sessions: ``owned`` (sorted ids) for a rare user, to
    read by key; else ``condition`` on a ``sessions`` row (and its arguments)."""

    owned: list[str] | None
    condition: tuple[str, list[Any]]


def _late(conn: sqlite3.Connection, project_id: int, user_id: str, common_from: int) -> bool:
    """Whether a walk by time would pass many sessions before the user's: those begun
    after the user's latest trace hold none of theirs. Walked, each costs ~8 µs; the
    list collected costs ~1.5 µs a trace of the user, so past a fifth of a common
    user's bound the list is collected instead (a user of the 10,000 oldest sessions of
    100,000: 560-700 ms a page walked, ~100 collected)."""
    latest = conn.execute(
        "SELECT max(start_ns) FROM traces INDEXED BY traces_by_user"
        " WHERE project_id = ? AND user_id = ?",
        (project_id, user_id),
    ).fetchone()[0]
    most = common_from // _PASSED_SHARE
    passed = conn.execute(
        "SELECT count(*) FROM (SELECT 1 FROM sessions INDEXED BY sessions_by_start"
        " WHERE project_id = ? AND start_ns > ? LIMIT ?)",
        (project_id, latest, most),
    ).fetchone()[0]
    return bool(passed >= most)


def _bound(traces: int, bound: tuple[float, int, int]) -> int:
    scale, low, high = bound
    return min(max(int(scale * math.sqrt(traces)), low), high)


def forms(conn: sqlite3.Connection, project_id: int, user_id: str, by_time: bool) -> Forms:
    """The form for ``user_id``'s sessions in a list sorted by time (last activity or
    start) when ``by_time``, otherwise by another figure."""
    traces = conn.execute("SELECT max(key) FROM trace_keys").fetchone()[0] or 0
    rare_below, common_from = _bound(traces, _RARE), _bound(traces, _COMMON)
    # Counted on the index alone (it holds project_id and user_id).
    found = conn.execute(
        "SELECT count(*) FROM (SELECT 1 FROM traces INDEXED BY traces_by_user"
        " WHERE project_id = ? AND user_id = ? LIMIT ?)",
        (project_id, user_id, max(rare_below, common_from)),
    ).fetchone()[0]
    if found >= common_from and not (by_time and _late(conn, project_id, user_id, common_from)):
        # Named: by ``traces_by_user`` the planner would walk the user's traces for
        # each session (16 s for a page at 100,000 sessions).
        return Forms(
            None,
            (
                "EXISTS (SELECT 1 FROM traces INDEXED BY traces_by_session"
                " WHERE traces.project_id = sessions.project_id"
                " AND traces.session_id = sessions.session_id AND traces.user_id = ?)",
                [user_id],
            ),
        )
    if found >= rare_below:
        return Forms(
            None,
            (
                "sessions.session_id IN (SELECT session_id FROM traces INDEXED BY"
                " traces_by_user WHERE project_id = ? AND user_id = ?"
                " AND session_id IS NOT NULL)",
                [project_id, user_id],
            ),
        )
    # Named: for ``session_id IS NOT NULL`` the planner would range over the index by
    # session, every trace of the project.
    owned = sorted(
        {
            row[0]
            for row in conn.execute(
                "SELECT session_id FROM traces INDEXED BY traces_by_user"
                " WHERE project_id = ? AND user_id = ? AND session_id IS NOT NULL",
                (project_id, user_id),
            )
        }
    )
    return Forms(
        owned, ("sessions.session_id IN (SELECT value FROM json_each(?))", [json.dumps(owned)])
    )
