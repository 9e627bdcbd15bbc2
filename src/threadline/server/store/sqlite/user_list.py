"""The Users list on SQLite: the users of the traces in a window, latest activity first,
each with the totals of their traces in it.

A user's last activity is the latest end of their traces in the window, so the page's
users are found in ``traces_by_end`` (0025), whose entries hold a trace's end, start and
user: the users of the traces that ended since a time L, by their latest end, are
exactly the users whose last activity is L or later. L is the end of the N-th latest
trace of the window (from the cursor on, on a later page), N growing until the page is
full or L reaches the window's start; the pick reads index entries only, as many as the
page needs, not what the window holds. Then only the picked users' traces are added up,
found by user (``traces_by_user``); users with a long history begun before the window's
end are read from the window's range by end instead (``_traces_index``), as the whole
list was before.

(Before, every trace of the window was read and grouped by user on every request: at
1M spans, 450-600 ms for a 30-day window. docs/benchmarks.md, round 12.)
"""

from __future__ import annotations

from typing import Any

from threadline.server.model import Page, UserQuery, UserSummary, datetime_to_ns
from threadline.server.store import cursors, sorts
from threadline.server.store import rows as table_rows
from threadline.server.store.sqlite import filters, scores
from threadline.server.store.sqlite.chunked import IN_CHUNK, select_in
from threadline.server.store.sqlite.driver import sqlite3

# Index entries the first try reads back per user of the page, and by how much each
# try after a short page multiplies them.
_ENTRIES_PER_USER = 16
_GROWTH = 16

# The page's users (and their last activity) among the traces that ended since L. The
# index is named: for the GROUP BY, the planner would rather walk traces_by_user whole.
_BOUND = (
    "SELECT end_ns FROM traces INDEXED BY traces_by_end WHERE {where}"
    " ORDER BY end_ns DESC LIMIT 1 OFFSET ?"
)
_PICK = (
    "SELECT user_id, MAX(end_ns) AS last FROM traces INDEXED BY traces_by_end"
    " WHERE {where} AND end_ns >= ? GROUP BY user_id{having}"
    " ORDER BY last DESC, user_id DESC LIMIT ?"
)
# The picked users' traces in the window, added up (the columns of ``USER_TOTALS``),
# read along the index ``_traces_index`` chooses (left to itself, the planner took the
# window's range by end even for a page of users with a few traces each).
_TOTALS = (
    "SELECT user_id, COUNT(DISTINCT session_id), COUNT(*), SUM(input_tokens),"
    " SUM(output_tokens), SUM(total_tokens), SUM(cost_usd),"
    " SUM(status = 'error'), MIN(start_ns), MAX(end_ns)"
    " FROM traces INDEXED BY {index} WHERE {window}"
    " AND user_id IN ({{}}) GROUP BY user_id"
)
# traces_by_user holds no end: read by user, a window's start is checked on every trace
# the users began before its end, their whole history if they are few and old. Past
# this many such traces a user of the page, the window's range by end is read instead
# (its entries hold the user: only the page's users' rows are read), which is what the
# list read whole before it picked its page.
_BY_USER_AT_MOST = 64
_HISTORY = (
    "SELECT COUNT(*) FROM (SELECT 1 FROM traces INDEXED BY traces_by_user"
    " WHERE {before_end} AND user_id IN ({users}) LIMIT ?)"
)


def list_users(conn: sqlite3.Connection, project_id: int, query: UserQuery) -> Page[UserSummary]:
    """The page of users by latest activity, each with their score summaries."""
    start = None if query.start is None else datetime_to_ns(query.start)
    end = None if query.end is None else datetime_to_ns(query.end)
    window, window_args = ["project_id = ?"], [project_id]
    if start is not None:
        window.append("end_ns >= ?")
        window_args.append(start)
    if end is not None:
        window.append("start_ns <= ?")
        window_args.append(end)
    picked = _pick(conn, window, window_args, query)
    index = _traces_index(conn, project_id, picked, start, end)
    totals_sql = _TOTALS.format(index=index, window=" AND ".join(window))
    totals = {row[0]: row for row in select_in(conn, totals_sql, window_args, picked)}
    page = table_rows.user_page([totals[user_id] for user_id in picked], query.limit)
    summaries = scores.user_summaries(
        conn, project_id, [item.user_id for item in page.items], start, end, index
    )
    for item in page.items:
        item.scores = summaries.get(item.user_id, {})
    return page


def _traces_index(
    conn: sqlite3.Connection,
    project_id: int,
    users: list[str],
    start: int | None,
    end: int | None,
) -> str:
    """The index the ``users``' traces in the window are read along: by user, unless a
    window's start would be checked on more than ``_BY_USER_AT_MOST`` traces a user
    (counted in the index, and only that far)."""
    if start is None or not users:
        return "traces_by_user"
    before_end, args = "project_id = ?", [project_id]
    if end is not None:
        before_end += " AND start_ns <= ?"
        args.append(end)
    most = 0
    counted = 0
    for i in range(0, len(users), IN_CHUNK):
        chunk = users[i : i + IN_CHUNK]
        sql = _HISTORY.format(before_end=before_end, users=", ".join("?" * len(chunk)))
        most += _BY_USER_AT_MOST * len(chunk)
        counted += conn.execute(sql, [*args, *chunk, _BY_USER_AT_MOST * len(chunk)]).fetchone()[0]
    return "traces_by_user" if counted < most else "traces_by_end"


def _pick(
    conn: sqlite3.Connection, window: list[str], window_args: list[Any], query: UserQuery
) -> list[str]:
    """Up to ``query.limit`` + 1 users, by their last activity in the window (then id),
    after the cursor's: read back from the latest traces only as far as the page needs."""
    where, args = [*window, "user_id IS NOT NULL"], list(window_args)
    if query.q:
        where.append("user_id LIKE ? ESCAPE '\\'")
        args.append(filters.contains(query.q))
    having, having_args = "", []
    # Counted back from the cursor: the traces after it are the earlier pages' users'.
    below, below_args = list(where), list(args)
    if query.cursor:
        last_ns, user_id = cursors.decode(query.cursor, int, str, made_by=sorts.USERS_BY_ACTIVITY)
        having, having_args = " HAVING (last, user_id) < (?, ?)", [last_ns, user_id]
        below.append("end_ns <= ?")
        below_args.append(last_ns)
    wanted = query.limit + 1
    bound_sql = _BOUND.format(where=" AND ".join(below))
    pick_sql = _PICK.format(where=" AND ".join(where), having=having)
    entries = _ENTRIES_PER_USER * wanted
    while True:
        bound = conn.execute(bound_sql, [*below_args, entries]).fetchone()
        # No N-th trace: the window holds fewer, and the pick reads it whole.
        since = -(2**63) if bound is None else bound[0]
        rows = conn.execute(pick_sql, [*args, since, *having_args, wanted]).fetchall()
        if len(rows) >= wanted or bound is None:
            return [row[0] for row in rows]
        entries *= _GROWTH
