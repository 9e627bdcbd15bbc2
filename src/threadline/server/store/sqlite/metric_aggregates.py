"""The dashboard's unfiltered figures on SQLite, from the per-bucket aggregates kept on
write (migration 0010), and its distributions read down indexes.

Serves a query with no filter and no grouping (the dashboard as it opens); any other
falls back to the aggregate queries over the rollups (``sqlite/metrics.py``), which
apply the same rules to the rows they select.

- ``metric_activity`` keys traces and sessions by their first and last active hour; a
  day or week key follows from an hour key exactly (buckets of every width are whole
  hours), so it serves every width and reads a few rows per hour of the range.
- ``metric_user_days`` holds each user's days (the traces active on it, and those
  started on it, with their errors and cost: the top users), ``metric_user_day_counts``
  each day's active users. A week's are the distinct users of its days. By hour, the
  active and top users are read from the trace rollups of the range instead (an hour
  view's range is short: at most ``MAX_BUCKETS`` hours).
- ``metric_models`` holds usage by model per hour the traces started in.
- Each of the three takes its changes through a log folded into it now and then
  (``metric_log.py``, migration 0033): every figure read is its rows' plus its log's.
- Distributions are nearest-rank percentiles of the sessions active in the range; how
  many there are comes from ``metric_activity``. A duration's or cost's k-th is read
  down the list's index in that order (widened to hold the range's columns: 0017,
  0029), from whichever end is nearer, skipping sessions outside the range; turns are
  counted by value from the range's sessions read down the index by end (a few
  distinct values), so no index is kept in their order.
"""

from __future__ import annotations

import math

from threadline.server.model import TOP_ROWS, Distribution, MetricsQuery
from threadline.server.store.metrics import WIDTH_NS, MetricsRows, Range
from threadline.server.store.sqlite.driver import sqlite3

HOUR_NS = WIDTH_NS["hour"]
DAY_NS = WIDTH_NS["day"]


# Each aggregate's rows with its log's (metric_log.py), added up per key.
_ACTIVITY = (
    "SELECT first_hour, last_hour, SUM(traces), SUM(error_traces), SUM(cost_traces),"
    " SUM(cost_pico), SUM(input_tokens), SUM(output_tokens), SUM(total_tokens),"
    " SUM(sessions), SUM(error_sessions), SUM(cost_sessions) FROM ("
    + " UNION ALL ".join(
        "SELECT first_hour, last_hour, traces, error_traces, cost_traces, cost_pico,"
        " input_tokens, output_tokens, total_tokens, sessions, error_sessions, cost_sessions"
        f" FROM {table} WHERE project_id = ? AND last_hour >= ? AND first_hour <= ?"
        for table in ("metric_activity", "metric_activity_log")
    )
    + ") GROUP BY last_hour, first_hour"
)
_MODELS = (
    "SELECT hour, model, SUM(cost_traces), SUM(cost_pico), SUM(input_tokens),"
    " SUM(output_tokens), SUM(total_tokens) FROM ("
    + " UNION ALL ".join(
        "SELECT hour, model, traces, cost_traces, cost_pico, input_tokens, output_tokens,"
        f" total_tokens FROM {table} WHERE project_id = ? AND hour BETWEEN ? AND ?"
        for table in ("metric_models", "metric_model_log")
    )
    + ") GROUP BY hour, model HAVING SUM(traces) > 0"
)
# A range's users' days: the rows with their log's; a key whose traces active add up
# to none is no user's day.
_USER_DAYS = (
    "SELECT day, user_id FROM ("
    + " UNION ALL ".join(
        "SELECT day, user_id, traces_active"
        f" FROM {table} WHERE project_id = ? AND day BETWEEN ? AND ?"
        for table in ("metric_user_days", "metric_user_day_log")
    )
    + ") GROUP BY user_id, day HAVING SUM(traces_active) > 0"
)
# The same when the log leaves no row without an active trace (as nearly always: only
# a trace moved or deleted takes one back): the rows, and the keys the log keeps active.
_USER_DAYS_KEPT = (
    "SELECT day, user_id FROM metric_user_days WHERE project_id = ? AND day BETWEEN ? AND ?"
    " UNION ALL SELECT day, user_id FROM metric_user_day_log WHERE project_id = ?"
    " AND day BETWEEN ? AND ? GROUP BY day, user_id HAVING SUM(traces_active) > 0"
)
_USER_DAYS_LEFT = (
    "SELECT 1 FROM (SELECT day, user_id, SUM(traces_active) AS active"
    " FROM metric_user_day_log WHERE project_id = ? AND day BETWEEN ? AND ?"
    " GROUP BY day, user_id HAVING active < 0) AS l"
    " JOIN metric_user_days AS u ON u.project_id = ? AND u.user_id = l.user_id"
    " AND u.day = l.day AND u.traces_active + l.active <= 0 LIMIT 1"
)
_TOP_USERS = (
    "WITH stored AS (SELECT user_id, SUM(traces) AS traces, SUM(error_traces) AS errors,"
    " SUM(cost_traces) AS cost_traces, SUM(cost_pico) AS cost FROM metric_user_days"
    " WHERE project_id = ? AND day BETWEEN ? AND ? GROUP BY user_id),"
    " logged AS MATERIALIZED (SELECT user_id, SUM(traces) AS traces,"
    " SUM(error_traces) AS errors, SUM(cost_traces) AS cost_traces, SUM(cost_pico) AS cost"
    " FROM metric_user_day_log WHERE project_id = ? AND day BETWEEN ? AND ?"
    " GROUP BY user_id),"
    " totals AS MATERIALIZED (SELECT s.user_id, s.traces + COALESCE(l.traces, 0) AS traces,"
    " s.errors + COALESCE(l.errors, 0) AS errors,"
    " s.cost_traces + COALESCE(l.cost_traces, 0) AS cost_traces,"
    " s.cost + COALESCE(l.cost, 0) AS cost FROM stored AS s LEFT JOIN logged AS l"
    " ON l.user_id = s.user_id"
    " UNION ALL SELECT * FROM logged AS l WHERE NOT EXISTS (SELECT 1 FROM metric_user_days"
    " WHERE project_id = ? AND user_id = l.user_id AND day BETWEEN ? AND ?))"
    " SELECT * FROM (SELECT * FROM totals WHERE cost_traces > 0 AND cost > 0"
    " ORDER BY cost DESC, user_id LIMIT ?)"
    " UNION ALL SELECT * FROM (SELECT * FROM totals WHERE errors > 0"
    " ORDER BY errors DESC, user_id LIMIT ?)"
)
# How the log changes each day's count of users: a key it makes active that has no
# row, less a row it leaves with no active trace (a row holds at least one).
_USER_COUNT_CHANGES = (
    "SELECT l.day, SUM((COALESCE(u.traces_active, 0) + l.active > 0)"
    " - (u.traces_active IS NOT NULL)) FROM (SELECT day, user_id,"
    " SUM(traces_active) AS active FROM metric_user_day_log WHERE project_id = ?"
    " AND day BETWEEN ? AND ? GROUP BY day, user_id) AS l"
    " LEFT JOIN metric_user_days AS u ON u.project_id = ? AND u.user_id = l.user_id"
    " AND u.day = l.day GROUP BY l.day"
)


def serves(query: MetricsQuery) -> bool:
    """Whether the aggregates answer ``query``: neither filtered nor grouped."""
    return not (query.user_id or query.tag or query.metadata or query.group_by)


def read(
    conn: sqlite3.Connection, project_id: int, query: MetricsQuery, span: Range
) -> MetricsRows:
    """Series, active users, top users, usage by model and distributions of ``span``."""
    rows = MetricsRows(active_users=[0] * span.count)
    first_hour, last_hour = span.origin // HOUR_NS, span.end // HOUR_NS - 1

    def bucket(hour: int) -> int:
        return min(max((hour * HOUR_NS - span.origin) // span.width, 0), span.count - 1)

    sessions = cost_sessions = 0
    for (
        first,
        last,
        traces,
        error_traces,
        cost_traces,
        cost_pico,
        tokens_in,
        tokens_out,
        tokens_total,
        session_count,
        error_sessions,
        known_cost_sessions,
    ) in conn.execute(_ACTIVITY, (project_id, first_hour, last_hour) * 2):
        # A row starting in the range's last sub-microsecond counts in no bucket.
        if first > last:
            continue
        f, lst = bucket(first), bucket(last)
        if traces:
            cost = cost_pico if cost_traces else None
            started = first >= first_hour
            rows.traces.append(
                (
                    None,
                    None,
                    f,
                    lst,
                    started,
                    traces,
                    error_traces,
                    cost,
                    tokens_in,
                    tokens_out,
                    tokens_total,
                )
            )
        if session_count:
            rows.sessions.append((None, f, lst, session_count, error_sessions))
            sessions += session_count
            cost_sessions += known_cost_sessions
    if query.bucket == "hour":
        _users_by_hour(conn, project_id, span, rows)
    else:
        _users_by_day(conn, project_id, span, rows)
    rows.models = [
        (None, model, bucket(hour), cost_pico if cost_traces else None, i, o, t)
        for hour, model, cost_traces, cost_pico, i, o, t in conn.execute(
            _MODELS, (project_id, first_hour, last_hour) * 2
        )
    ]
    rows.distributions = distributions(conn, project_id, span, (sessions, cost_sessions))
    return rows


def distributions(
    conn: sqlite3.Connection,
    project_id: int,
    span: Range,
    counts: tuple[int, int] | None = None,
) -> dict[str, Distribution]:
    """The distributions of every session active in the range, read down the lists'
    indexes; ``counts``: how many sessions, and with a known cost (else counted down the
    lists' index by end, which holds both columns). A grouped view's too: its sessions
    are not narrowed."""
    if counts is None:
        sessions, cost_sessions = conn.execute(
            "SELECT COUNT(*), COUNT(cost_usd) FROM sessions INDEXED BY sessions_by_activity"
            " WHERE project_id = ? AND end_ns >= ? AND start_ns <= ?",
            (project_id, span.origin, span.last_instant),
        ).fetchone()
        counts = (sessions, cost_sessions)
    sessions, cost_sessions = counts
    figures = _Figures(conn, project_id, span)
    return {
        "turns_per_session": figures.turns(sessions),
        "session_duration_ms": figures.distribution(
            "sessions_by_duration", "end_ns - start_ns", "end_ns - start_ns", sessions, 1e6
        ),
        # The cost list's order puts sessions without a cost among the cheapest; the
        # index holds the cost itself, so they are skipped without reading a row.
        "session_cost_usd": figures.distribution(
            "sessions_by_cost",
            "COALESCE(cost_usd, -1.0)",
            "cost_usd",
            cost_sessions,
            1,
            "cost_usd IS NOT NULL",
        ),
    }


def _users_by_day(
    conn: sqlite3.Connection, project_id: int, span: Range, rows: MetricsRows
) -> None:
    """Active users per day or week, and the top users, from the users' days."""
    assert rows.active_users is not None
    first_day = span.origin // DAY_NS
    days = span.width // DAY_NS
    last_day = first_day + days * span.count - 1
    if days == 1:
        for day, users in conn.execute(
            "SELECT day, users FROM metric_user_day_counts WHERE project_id = ?"
            " AND day BETWEEN ? AND ?",
            (project_id, first_day, last_day),
        ):
            rows.active_users[day - first_day] = users
        for day, change in conn.execute(
            _USER_COUNT_CHANGES, (project_id, first_day, last_day, project_id)
        ):
            rows.active_users[day - first_day] += change
    else:
        range_ = (project_id, first_day, last_day)
        left = conn.execute(_USER_DAYS_LEFT, (*range_, project_id)).fetchone()
        for index, users in conn.execute(
            "SELECT (day - ?) / ? AS bucket, COUNT(DISTINCT user_id)"
            f" FROM ({_USER_DAYS if left else _USER_DAYS_KEPT}) GROUP BY bucket",
            (first_day, days, *range_ * 2),
        ):
            rows.active_users[index] = users
    # The top ten by cost and by errors, ranked in SQL (a month has thousands of users):
    # each user's sums over the range's days, in key order, with the log's added.
    found = {}
    for user_id, traces, errors, cost_traces, cost_pico in conn.execute(
        _TOP_USERS, (*(project_id, first_day, last_day) * 3, TOP_ROWS, TOP_ROWS)
    ):
        found[user_id] = (user_id, traces, errors, cost_pico if cost_traces else None)
    rows.user_totals = list(found.values())


def _users_by_hour(
    conn: sqlite3.Connection, project_id: int, span: Range, rows: MetricsRows
) -> None:
    """Active users per hour, and the top users, from the range's trace rollups: one
    statement read along ``traces_by_end`` (which holds every column it reads), a row per
    (user, hours active, started in range), gives both (two passes cost twice as much)."""
    assert rows.active_users is not None
    o, w = span.origin, span.width
    active: list[set[str]] = [set() for _ in range(span.count)]
    totals: dict[str, list] = {}
    for user_id, first, last, started, traces, errors, cost in conn.execute(
        "SELECT user_id, (MAX(start_ns, ?) - ? + 999) / ? AS first,"
        " (MIN(end_ns, ?) - ?) / ? AS last, start_ns + 999 >= ? AS started, COUNT(*),"
        " SUM(status = 'error'), SUM(CAST(cost_usd * 1e12 + 0.5 AS INTEGER)) FROM traces"
        " WHERE project_id = ? AND end_ns >= ? AND start_ns <= ? AND user_id IS NOT NULL"
        " GROUP BY user_id, first, last, started",
        (o, o, w, span.end - 1, o, w, o, project_id, o, span.last_instant),
    ):
        for i in range(first, last + 1):
            active[i].add(user_id)
        if started:
            total = totals.get(user_id)
            if total is None:
                totals[user_id] = [traces, errors, cost]
            else:
                total[0] += traces
                total[1] += errors
                if cost is not None:
                    total[2] = cost if total[2] is None else total[2] + cost
    rows.active_users = [len(users) for users in active]
    rows.user_totals = [(user_id, *total) for user_id, total in totals.items()]


class _Figures:
    """The k-th session of the range by one figure, read down that figure's index."""

    def __init__(self, conn: sqlite3.Connection, project_id: int, span: Range):
        self.conn = conn
        self.args = (project_id, span.origin, span.last_instant)

    def distribution(
        self,
        index: str,
        order: str,
        figure: str,
        count: int,
        unit: float,
        condition: str = "1",
    ) -> Distribution:
        """``figure``'s, reading the sessions down ``index`` in its ``order`` (the same
        order as ``figure``'s among the sessions ``condition`` keeps)."""

        def ranked(rank: int) -> float | None:
            # From the nearer end: the scan skips every session before the k-th.
            ascending = rank - 1 <= count - rank
            row = self.conn.execute(
                f"SELECT {figure} FROM sessions INDEXED BY {index} WHERE project_id = ?"
                f" AND end_ns >= ? AND start_ns <= ? AND {condition}"
                f" ORDER BY {order} {'ASC' if ascending else 'DESC'} LIMIT 1 OFFSET ?",
                (*self.args, rank - 1 if ascending else count - rank),
            ).fetchone()
            return None if row is None else row[0] / unit

        if count == 0:
            return Distribution(count=0, p50=None, p95=None, max=None)
        return Distribution(
            count=count,
            p50=ranked(max(1, math.ceil(0.5 * count))),
            p95=ranked(max(1, math.ceil(0.95 * count))),
            max=ranked(count),
        )

    def turns(self, count: int) -> Distribution:
        """Turns per session, from how many sessions of the range have each count: read
        down the lists' index by end, which holds the turns (a session's few distinct
        counts are added up in SQL, so no index is kept in the turns' order)."""
        if count == 0:
            return Distribution(count=0, p50=None, p95=None, max=None)
        histogram = self.conn.execute(
            "SELECT trace_count, COUNT(*) FROM sessions INDEXED BY sessions_by_activity"
            " WHERE project_id = ? AND end_ns >= ? AND start_ns <= ?"
            " GROUP BY trace_count ORDER BY trace_count",
            self.args,
        ).fetchall()

        def ranked(rank: int) -> float | None:
            seen = 0
            for turns, sessions in histogram:
                seen += sessions
                if seen >= rank:
                    return float(turns)
            return None

        return Distribution(
            count=count,
            p50=ranked(max(1, math.ceil(0.5 * count))),
            p95=ranked(max(1, math.ceil(0.95 * count))),
            max=ranked(count),
        )
