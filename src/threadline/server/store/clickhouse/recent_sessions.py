"""The Sessions list's common page, picked from ``trace_activity`` (migration 0011).

The list as it opens (latest activity first, a window reaching up to now, no other
filter) needs only each session's last activity to pick its page. A session's last
activity is the latest end of its traces, and a trace's end the latest end of its parts;
so the sessions active since a time L are found, with their last activity, by reading
the parts that ended after L: a range of ``trace_activity``, sorted by end, whose rows
are a few numbers and ids. A trace's session comes from the same rows (its root's,
else its earliest span's that names one), as in its merged rollup.

If the sessions active since L fill the page, no older session can be on it. The first
page takes L from the latest parts themselves (the end of the 16th latest per row of the
page, then the 256th), so it reads a few hundred rows however long the project has been
quiet; if that page is short while the window holds more (sessions of very many turns),
and for the pages after a cursor (whose latest parts are not the page's), L starts an
hour before now (or the cursor; the window's start at the earliest) and widens only
while the page is short. The page costs what the latest sessions cost to read,
not what the window holds. The picked sessions are then rolled up in full from their
traces (``merged_traces``), which is exact; the pick is exact too but for a trace whose
deciding part (its root, or its first span naming a session) ended before L while a
later part names another session, which no instrumentation here produces.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from threadline.server.model import SessionQuery, datetime_to_ns

Rows = Callable[[str, dict[str, Any]], list[tuple[Any, ...]]]

HOUR_NS = 3600 * 1_000_000_000
# How far back from now (or the cursor) each try reads; the last try
# reads the whole window (or all time).
LOOKBACKS_NS = (HOUR_NS, 24 * HOUR_NS, 7 * 24 * HOUR_NS, 30 * 24 * HOUR_NS)

# Each session also names the traces it was picked by, each with its root span's start
# where the pick read the root, else NULL (``picked_traces`` reads the page's traces by
# these ids, those with a root from its month on).
_PICK = (
    "SELECT session_id, max(t_end) AS last,"
    " groupArray((trace_id, if(r.1 = 0, r.2, NULL))) AS seen FROM ("
    " SELECT trace_id, max(end_ns) AS t_end, min(root) AS r, min(first_session) AS f"
    " FROM trace_activity WHERE project_id = %(project)s AND end_ns >= %(since)s"
    " GROUP BY trace_id)"
    " ARRAY JOIN [if(r.4 != '', r.4, f.4)] AS session_id"
    " WHERE session_id != '' GROUP BY session_id{cursor}"
    " ORDER BY last DESC, session_id DESC LIMIT %(limit)s"
)
# The same, from the parts that ended no earlier than the latest %(rows_back)s in the window
# did (read in order of end from the newest: a few granules of the parts that reach into
# the window; unbounded, it read the newest granules of every part), with whether the
# window holds no more parts than that (the bound is then NULL: the pick read them all).
LATEST_BOUND = (
    "SELECT toNullable(end_ns) FROM trace_activity WHERE project_id = %(project)s"
    " AND end_ns >= %(since)s ORDER BY end_ns DESC LIMIT 1 OFFSET %(rows_back)s"
)
_PICK_LATEST = f"WITH ({LATEST_BOUND}) AS bound " + _PICK.replace(
    "AS seen FROM (", "AS seen, isNull(bound) FROM ("
).replace("end_ns >= %(since)s", "end_ns >= ifNull(bound, %(since)s)")
# Whether the window holds more parts than that, when the pick found nothing to say it.
_AT_MOST = (
    "SELECT count() FROM (SELECT end_ns FROM trace_activity WHERE project_id = %(project)s"
    " AND end_ns >= %(since)s LIMIT %(rows_back)s + 1)"
)
# How many parts per row of the page the first page's tries read back: a session of
# a few turns is found by the first; the last falls back to reading back by time.
LATEST_PARTS = (16, 256)


def serves(query: SessionQuery) -> bool:
    """Whether ``pick`` can choose this query's page: latest activity first, over a
    window open towards now, with no other filter."""
    return (
        query.sort == "last_activity"
        and query.score_sort is None
        and query.end is None
        and not (
            query.user_id
            or query.q
            or query.status
            or query.tag
            or query.metadata
            or query.changed_after is not None
            or query.scores
            or query.numbers
            or query.min_context_use is not None
        )
    )


Picked = tuple[str, int, list[tuple[str, int | None]]]


def pick(
    rows: Rows, project_id: int, query: SessionQuery, cursor: tuple[int, str] | None
) -> list[Picked]:
    """Up to ``query.limit + 1`` (session id, last activity, (id, root's start or None)
    of the traces it was picked by) of the page after ``cursor`` (a last activity and a
    session id), latest first. The traces are those the pick read parts of: a session
    may have others. A trace's root start is None when the pick did not read its root
    span."""
    window_start = None if query.start is None else datetime_to_ns(query.start)
    params: dict[str, Any] = {"project": project_id, "limit": query.limit + 1}
    having = ""
    if cursor is not None:
        params["last"], params["session"] = cursor
        having = " HAVING (last, session_id) < (%(last)s, %(session)s)"
    found: list[Picked] = []
    if cursor is None:
        # The first page reads back as far as the latest parts reach (enough of them to
        # hold the page's sessions, unless a session has very many), not a fixed time.
        floor = window_start if window_start is not None else -(2**63)
        for rows_back in LATEST_PARTS:
            params["since"] = floor
            params["rows_back"] = rows_back * (query.limit + 1)
            picked = rows(_PICK_LATEST.format(cursor=""), params)
            found = [(row[0], row[1], row[2]) for row in picked]
            whole_window = (
                picked[0][3] if picked else rows(_AT_MOST, params)[0][0] <= params["rows_back"]
            )
            if len(found) > query.limit or whole_window:
                return found  # a full page, or all the window holds
    # The page can hold nothing that ended after the cursor (or now); reading back from
    # it widens by time until the page is full. (A cursor later than now, such as the
    # start of a score sort's rows without a value, reads back from now: each try
    # reads every part that ended since its bound, later ones too.)
    now = time.time_ns()
    anchor = min(cursor[0], now) if cursor is not None else now
    for since in lower_bounds(anchor, window_start):
        params["since"] = since
        found = [(row[0], row[1], row[2]) for row in rows(_PICK.format(cursor=having), params)]
        if len(found) > query.limit:
            break
    return found


def lower_bounds(anchor: int, window_start: int | None) -> Sequence[int]:
    """The L of each try, widening, ending with the window's start (or the beginning)."""
    floor = window_start if window_start is not None else -(2**63)
    bounds = [anchor - lookback for lookback in LOOKBACKS_NS if anchor - lookback > floor]
    return [*bounds, floor]
