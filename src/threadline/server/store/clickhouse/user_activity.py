"""The Users list on ClickHouse, read from ``user_activity`` (migration 0015).

A user's row is the totals of the traces in the window whose user is theirs; a trace's
user is its root's, else its earliest span's that names one, which only all of the
trace's exports tell (the root is often exported last, after the model spans that carry
the tokens). So the totals cannot be added up per user as exports arrive; what each
export writes, without reading, is a narrow row per trace it touches, sorted by end.
The list reads the window's range of those rows (``queries.WINDOW_SLACK_NS`` around it,
as the other lists), merges each trace's rows (its user and session by the rule of
``trace_parts_by_id``, times by min and max, failure by max, amounts once per span id,
its first written copy), keeps the traces that overlap the window and groups them by
user: one statement over a few narrow columns, not the forty-odd streams of the trace
parts. A row delivered twice (a retried export, one export sent to two servers) merges
into the same trace, so it counts once; rows from any server or replica, in any order,
give the same totals.

The same statement joins each page user's traces in the window, and the sessions those
traces are in, to their score rollups (``user_scores.py``): the page comes back with
its users' rollups, never with their targets' ids.

The list first picks its page as the Sessions list does (``recent_sessions.py``): the
users of the traces with a row ending since L, by their latest end, with L an hour
before now (or the window's end, or the cursor) widening only while the page is short.
Then only the picked users' traces are merged: the rows of the traces that name one of
them anywhere in the window (a trace's user is the user of one of its rows' picks).
Its approximation is the Sessions list's: a trace whose deciding row (its root, or
first span naming a user) ended before L while a later row names another user would
be picked under the later one (its totals are then exact). With a window's end, a
trace is picked if it started by the end: if one of its rows since L did, or else
(its rows since L all began after the end: a trace over an hour long across the end,
or one begun after the window) if a row of it that ended before L did: the window's
rows before L are scanned for those traces' ids (two narrow columns).

With a window's end, a picked trace may have a part begun more than an hour after it
(a long agent run's later model call): not among the window's rows, and the rows after
the window are all its later activity, so the same statement reads those traces' merged
parts from ``trace_parts_by_id`` by id (its sort key), keeping those that end over an
hour after the window, and merges them with the window's rows: totals and last activity
exact, without reading what came after the window. The page stays ordered (and its
cursor made) by each user's activity within the hour around the window, as the pick
sees it, so that pages never repeat or skip a user.

With a window's start, a picked trace may likewise have a part that ended more than an
hour before it. Its root begins first and is exported as it ends, in or near the
window, so the rows read tell which traces may: those with a row begun more than an
hour before the start. The page statement returns their ids; if there are any (a trace
that long across the start), the page is read again with those traces' parts that
began before then, by id from ``trace_parts_by_id``. Not caught: a trace whose root is
not among the rows read (still running, or ended before the rest) and none of whose
rows there began that early.
"""

from __future__ import annotations

import time
from typing import Any

from threadline.server.model import Page, UserQuery, UserSummary, datetime_to_ns, ns_to_datetime
from threadline.server.store import cursors, sorts
from threadline.server.store import rows as table_rows
from threadline.server.store.clickhouse import user_scores
from threadline.server.store.clickhouse.queries import WINDOW_SLACK_NS, Filters
from threadline.server.store.clickhouse.recent_sessions import Rows, lower_bounds

TABLE = "user_activity"

# A span's first written copy of its amounts (copies sorted by span id, then written).
_FIRST_COPIES = (
    "arrayFilter((x, i) -> i = 1 OR m_copies[i - 1].1 != x.1, m_copies, arrayEnumerate(m_copies))"
)
# Each trace with a row near the window, merged from its rows (``{rows}``: theirs, and
# with a window's end, the parts of the same traces that end an hour after it).
# ``t_near_end`` is the end of its rows near the window, by which the page is ordered.
_TRACES = (
    "SELECT trace_id, min(start_ns) AS t_start, max(end_ns) AS t_end, max(failed) AS t_failed,"
    " maxIf(end_ns, near = 1) AS t_near_end,"
    " min(root) AS m_root, min(first_session) AS m_session, min(first_user) AS m_user,"
    " if(m_root.5 != '', m_root.5, m_user.4) AS t_user,"
    " if(m_root.4 != '', m_root.4, m_session.4) AS t_session,"
    " arraySort(groupUniqArrayArray(amounts)) AS m_copies,"
    f" {_FIRST_COPIES} AS m_amounts,"
    " arraySum(x -> x.3, m_amounts) AS t_input,"
    " arraySum(x -> x.4, m_amounts) AS t_output,"
    " arraySum(x -> x.5, m_amounts) AS t_total,"
    " if(arrayExists(x -> isNotNull(x.6), m_amounts),"
    " arraySum(x -> coalesce(x.6, 0), m_amounts), NULL) AS t_cost"
    " FROM ({rows}) GROUP BY trace_id HAVING {kept}"
)
_NEAR_ROWS = (
    "SELECT trace_id, start_ns, end_ns, failed, root, first_session, first_user, amounts,"
    f" toUInt8(1) AS near FROM {TABLE} WHERE {{near}}"
)
# A trace's parts that end more than an hour after a window's end, or before its start,
# by trace id from its merged parts (``trace_parts_by_id``, sorted by trace id), in
# ``user_activity``'s columns (``{cut}``: the rows that hold such a part): such a part
# is not among the window's rows (``user_activity`` is read as a range by end). A merged
# row may hold parts near the window too, which merge again to the same.
_PARTS_BY_ID = (
    "SELECT trace_id, toInt64(start_ns), toInt64(end_ns), toUInt8(notEmpty(error_span_ids)),"
    " (root.1, root.2, root.3, coalesce(root.5, ''), coalesce(root.6, '')), first_session,"
    " first_user, amounts, toUInt8(0) FROM trace_parts_by_id"
    " WHERE project_id = %(project)s AND trace_id IN {ids} AND {cut}"
)
# The users of the traces with a row ending since L, by their latest end.
_PICK = (
    "SELECT t_user, max(t_end) AS last FROM (SELECT trace_id, max(end_ns) AS t_end,"
    " min(root) AS m_root, min(first_user) AS m_user,"
    " if(m_root.5 != '', m_root.5, m_user.4) AS t_user"
    f" FROM {TABLE} WHERE project_id = %(project)s AND end_ns >= {{since}}{{rows}}"
    " GROUP BY trace_id HAVING {kept}) GROUP BY t_user{cursor}"
    " ORDER BY last DESC, t_user DESC LIMIT {limit}"
)
# The users of those traces: their totals in the columns of ``rows.USER_TOTALS`` after
# the user id (then their traces' true last end and ``{begun}``: the ids of those begun
# over an hour before the window's start, or none), and the (kind, id) of their traces
# and of those traces' sessions.
_USERS = (
    "SELECT t_user, (uniqExactIf(t_session, t_session != ''), count(), sum(t_input),"
    " sum(t_output), sum(t_total), sum(t_cost), countIf(t_failed = 1), min(t_start),"
    " max(t_near_end), max(t_end), {begun}) AS totals, max(t_near_end) AS last,"
    " arrayConcat(arrayMap(t -> ('trace', t), groupArray(trace_id)),"
    " arrayMap(s -> ('session', s), groupUniqArrayIf(t_session, t_session != ''))) AS targets"
    " FROM ({traces}) GROUP BY t_user{cursor}"
    " ORDER BY last DESC, t_user DESC LIMIT {limit}"
)


def list_users(rows: Rows, project_id: int, query: UserQuery) -> Page[UserSummary]:
    """The page of users by latest activity, each with their score summaries."""
    f = Filters(project_id)
    start, end = f.overlap_bounds(query.start, query.end)
    near = ["project_id = %(project)s"]
    kept = ["t_user != ''"]
    if start is not None:
        near.append(f"end_ns >= {start} - {WINDOW_SLACK_NS}")
    if end is not None:
        near.append(f"start_ns <= {end} + {WINDOW_SLACK_NS}")
    if query.q:
        kept.append(f"positionCaseInsensitive(t_user, {f.param(query.q)}) > 0")
    cursor = ""
    anchor = None
    if query.cursor:
        last_ns, user_id = cursors.decode(query.cursor, int, str, made_by=sorts.USERS_BY_ACTIVITY)
        cursor = f" HAVING (last, t_user) < ({f.param(last_ns)}, {f.param(user_id)})"
        anchor = last_ns
    limit = f.param(query.limit + 1)
    # Pick the page's users, then merge only their traces.
    floor = None if query.start is None else datetime_to_ns(query.start)
    if anchor is None and query.end is not None:
        anchor = datetime_to_ns(query.end)
    picked = _pick(rows, f, kept, cursor, query.limit + 1, anchor, floor, start, end)
    if not picked:
        return Page[UserSummary](items=[], next_cursor=None)
    users = f.param(picked)
    before = None if start is None else f"{start} - {WINDOW_SLACK_NS}"
    page_sql = _page_statement(f, near, users, start, end, cursor, limit, before, [])
    found = rows(user_scores.with_summaries(page_sql), f.params)
    # The traces begun over an hour before the window's start may have parts that ended
    # then, not among the window's rows: read again with those parts, by the traces' ids
    # (rare: a trace that long across the start; reading each page trace's by id cost
    # tens of ms of the engine's CPU at 1M spans, and even an empty lookup ~30).
    early = sorted({trace_id for row in found for trace_id in row[1][-1]})
    if early:
        page_sql = _page_statement(f, near, users, start, end, cursor, limit, before, early)
        found = rows(user_scores.with_summaries(page_sql), f.params)
    # Ordered, and its cursor made, by the activity near the window (as the pick sees
    # it); each user's last activity shown is their traces' true last end.
    page = table_rows.user_page([(row[0], *row[1][:-2]) for row in found], query.limit)
    rollups = {row[0]: row[2] for row in found}
    last_seen = {row[0]: row[1][-2] for row in found}
    for item in page.items:
        item.scores = user_scores.summaries(rollups[item.user_id])
        item.last_seen = ns_to_datetime(last_seen[item.user_id])
    return page


def _page_statement(
    f: Filters,
    near: list[str],
    users: str,
    start: str | None,
    end: str | None,
    cursor: str,
    limit: str,
    before: str | None,
    early: list[str],
) -> str:
    """The page's users (``users``) merged from their traces' rows ``near`` the window
    (as the conditions say), with the parts of the traces ``early`` that ended over an
    hour before the window's start (``before``) and, with a window's end, of any of their
    traces that end over an hour after it. Each row's totals end with the user's traces'
    true last end and the ids of those begun before ``before`` (none without a start)."""
    named = f"(root.5 IN {users} OR first_user.4 IN {users})"
    ids = f"SELECT trace_id FROM {TABLE} WHERE {' AND '.join(near)} AND {named}"
    trace_rows = _NEAR_ROWS.format(near=" AND ".join([*near, f"trace_id IN ({ids})"]))
    if early:
        # (By start: a merged row holding such a part may end in the window.)
        began = f"start_ns < {before}"
        trace_rows += " UNION ALL " + _PARTS_BY_ID.format(ids=f.param(early), cut=began)
    if end is not None:
        # (The same ids as an array read once, which both branches look up with
        # ``has``, cost a day's window four times as much: it is checked on every row.)
        ended = f"end_ns > {end} + {WINDOW_SLACK_NS}"
        trace_rows += " UNION ALL " + _PARTS_BY_ID.format(ids=f"({ids})", cut=ended)
    kept = [f"t_user IN {users}"]
    if start is not None:
        kept.append(f"t_end >= {start}")
    if end is not None:
        kept.append(f"t_start <= {end}")
    traces = _TRACES.format(rows=trace_rows, kept=" AND ".join(kept))
    begun = "[]" if before is None or early else f"groupArrayIf(trace_id, t_start < {before})"
    return _USERS.format(traces=traces, begun=begun, cursor=cursor, limit=limit)


def _pick(
    rows: Rows,
    f: Filters,
    kept: list[str],
    cursor: str,
    limit: int,
    anchor: int | None,
    floor: int | None,
    start: str | None,
    end: str | None,
) -> list[str]:
    """Up to ``limit`` users of the page, latest activity first: read back from
    ``anchor`` (the cursor's last activity or the window's end; None: now) only as
    far as the page needs, never past ``floor`` (the window's start). With an ``end``
    (``start`` and ``end``: the window's placeholders), the rows are those near the
    window (as the merge's) and a trace is kept if it started by the end: if a row read
    did, or, for a trace whose rows read all began after it, an earlier row near the
    window did."""
    params = dict(f.params)
    near = ""
    if end is not None:
        near = f" AND start_ns <= {end} + {WINDOW_SLACK_NS}"
        kept = [*kept, f"(min(start_ns) <= {end} OR trace_id IN ({_begun_earlier(start, end)}))"]
    found: list[tuple[Any, ...]] = []
    for since in lower_bounds(anchor if anchor is not None else time.time_ns(), floor):
        params["since"], params["limit"] = since, limit
        sql = _PICK.format(
            since="%(since)s",
            rows=near,
            kept=" AND ".join(kept),
            cursor=cursor,
            limit="%(limit)s",
        )
        found = rows(sql, params)
        if len(found) >= limit:
            break
    return [row[0] for row in found]


def _begun_earlier(start: str | None, end: str) -> str:
    """The traces with a row read since L (``%(since)s``) begun after the window's end
    and a row near the window ended before L begun by it: a trace over an hour long
    across the end, in the window though its rows since L are not. The window's rows
    before L are scanned (their start and trace id) for the ids of those traces only."""
    after_end = (
        f"SELECT trace_id FROM {TABLE} WHERE project_id = %(project)s AND end_ns >= %(since)s"
        f" AND start_ns > {end} AND start_ns <= {end} + {WINDOW_SLACK_NS}"
    )
    earlier = "" if start is None else f" AND end_ns >= {start} - {WINDOW_SLACK_NS}"
    return (
        f"SELECT trace_id FROM {TABLE} WHERE project_id = %(project)s AND end_ns < %(since)s"
        f"{earlier} AND start_ns <= {end} AND trace_id IN ({after_end})"
    )
