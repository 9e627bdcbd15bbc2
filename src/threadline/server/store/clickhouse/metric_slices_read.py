"""The dashboard as it opens (no filter, no grouping) on ClickHouse, read from the
per-slice figures of ``metric_slices.py`` instead of rolling up the range's traces and
sessions: a month is some 8,640 rows of small arrays.

Every statement here aggregates in ClickHouse and returns a few hundred rows at most:
the bucket rules are those of ``store.metrics`` (and of ``metrics.read``), with a row's
first active instant known from its slice and its last from its last hour (traces) or
its end (sessions), which every bucket, whole hours, needs no finer. Score averages
are read from the score summaries of the traces and sessions that have one (few), with
the traces' starts found by id.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from threadline.server.model import TOP_ROWS, Distribution
from threadline.server.store.clickhouse.metric_slices import HOUR_NS, SLICES_PER_HOUR
from threadline.server.store.clickhouse.scores import latest_rollups
from threadline.server.store.metrics import MetricsRows, Range
from threadline.server.store.model_usage import PICO

Rows = Callable[[str, dict[str, Any]], list[tuple[Any, ...]]]

_PERCENTILES = (0.5, 0.95)
# Statements in flight at once (1: one after the other).
SIDE_BY_SIDE = 3


def read(rows_of: Rows, project_id: int, span: Range) -> MetricsRows:
    o, w, end = span.origin, span.width, span.end
    o_h, w_h, end_h = o // HOUR_NS, w // HOUR_NS, end // HOUR_NS
    p: dict[str, Any] = {
        "project": project_id,
        "o": o,
        "end": end,
        "last_instant": span.last_instant,
        "o_h": o_h,
        "w_h": w_h,
        "end_h": end_h,
        "w": w,
    }
    # The newest version of each slice whose rows may be active in the range. A slice
    # has several versions only between a refresh and the merge that keeps the newest:
    # those few are read first and named, so the statements below need neither FINAL
    # (which merges every slice's arrays when read) nor a newest version per slice
    # (a GROUP BY over them all, for each statement).
    before_end = f"project_id = %(project)s AND slice < %(end_h)s * {SLICES_PER_HOUR}"
    several = rows_of(
        f"SELECT slice, max(version) FROM metric_slices WHERE {before_end}"
        " GROUP BY slice HAVING count() > 1",
        p,
    )
    newest = f"{before_end} AND last_hour >= %(o_h)s"
    if several:
        slices_named = ", ".join(str(int(s)) for s, _ in several)
        versions = ", ".join(f"({int(s)}, {int(v)})" for s, v in several)
        newest += f" AND (slice NOT IN ({slices_named}) OR (slice, version) IN ({versions}))"
    hour = f"intDiv(slice, {SLICES_PER_HOUR})"
    in_range = f"slice >= %(o_h)s * {SLICES_PER_HOUR}"

    def each(column: str, alias: str, where: str = "1") -> str:
        """The elements of ``column`` of the slices read (those meeting ``where``), as
        ``alias``, beside the slice's first hour and its buckets: ``first`` (the
        bucket of the slice), ``started`` (in the range). ``last`` is the caller's.
        The slices are picked before the arrays are joined: a condition after ARRAY
        JOIN would unfold every slice's array first."""
        return (
            f"SELECT {hour} AS first_hour, {alias},"
            " intDiv(greatest(first_hour, %(o_h)s) - %(o_h)s, %(w_h)s) AS first,"
            " first_hour >= %(o_h)s AS started"
            f" FROM (SELECT slice, {column} FROM metric_slices WHERE {newest} AND {where})"
            f" ARRAY JOIN {column} AS {alias}"
        )

    last_of = "intDiv(least(tupleElement({x}, {i}), %(end_h)s - 1) - %(o_h)s, %(w_h)s)"
    # Rows active in the range: their last hour is in it (their first is, by the slices).
    active = "tupleElement({x}, {i}) >= %(o_h)s"
    trace_counts = (
        f"SELECT first, {last_of.format(x='c', i=1)} AS last, started, sum(c.2), sum(c.3),"
        " sum(c.4), sum(c.5), sum(c.6), sum(c.7)"
        f" FROM ({each('trace_counts', 'c')}) WHERE {active.format(x='c', i=1)}"
        " GROUP BY first, last, started"
    )
    users = (
        f"SELECT tupleElement(u, 1) AS user, {last_of.format(x='u', i=2)} AS last, first,"
        " started, tupleElement(u, 3) AS traces_of, tupleElement(u, 4) AS errors_of,"
        " tupleElement(u, 5) AS cost_of"
        f" FROM ({each('users', 'u')}) WHERE {active.format(x='u', i=2)}"
    )
    # The users' totals of the traces started in the range: only those that can be in
    # a top list (ranked as ``store.metrics.build`` ranks them).
    totals = (
        "SELECT user, sum(traces_of) AS n, sum(errors_of) AS e, sum(cost_of) AS c"
        f" FROM ({users}) WHERE started GROUP BY user"
    )
    session_counts = (
        f"SELECT first, {last_of.format(x='c', i=1)} AS last, sum(c.2), sum(c.3)"
        f" FROM ({each('session_counts', 'c')}) WHERE {active.format(x='c', i=1)}"
        " GROUP BY first, last"
    )
    figures = (
        "SELECT count() AS n, arraySort(groupArray(f.2)) AS a, arraySort(groupArray(f.3)) AS b,"
        " arraySort(groupArrayIf(assumeNotNull(f.4), isNotNull(f.4))) AS c"
        f" FROM ({each('session_figures', 'f')}) WHERE {active.format(x='f', i=1)}"
    )
    ranks = ", ".join(
        f"{x}[greatest(1, toUInt64(ceil({q} * length({x}))))]"
        for x in ("a", "b", "c")
        for q in _PERCENTILES
    )
    # A slice in the range is active in it whole: its own top sessions are all it can
    # add to the range's; a slice before the range, only the sessions running into it.
    session_rows = (
        "SELECT s.1 AS session_id, s.2 AS start_ns, s.3 AS end_ns, s.4 AS trace_count,"
        " s.5 AS error_count, s.6 AS cost FROM ({rows}) WHERE s.3 >= %(o)s"
    )

    # The tenth largest first session by (cost, id) and by (errors, id) among the
    # slices in the range: ten sessions reach it, so the top ten do, and only the
    # slices reaching it can hold one of them. Read first, as values: as a subquery of
    # the statement below it cost several times as much (measured).
    ((p["cost_bound"], p["errors_bound"]),) = rows_of(
        f"SELECT arrayReverseSort(groupArray(top_cost))[{TOP_ROWS}],"
        f" arrayReverseSort(groupArray(top_errors))[{TOP_ROWS}]"
        f" FROM metric_slices WHERE {newest} AND {in_range}",
        p,
    )

    def candidates(largest: str, bound: str) -> str:
        return (
            session_rows.format(
                rows=each("top_sessions", "s", f"{in_range} AND {largest} >= {bound}")
            )
            + " UNION ALL "
            + session_rows.format(rows=each("sessions", "s", f"NOT {in_range}"))
        )

    top_sessions = (
        "SELECT '{key}' AS ranked_by, * FROM (SELECT session_id, start_ns, trace_count,"
        " error_count, cost FROM ({candidates}) WHERE {key} > 0"
        f" ORDER BY {{key}} DESC, session_id DESC LIMIT {TOP_ROWS})"
    )
    statements = {
        "traces": trace_counts,
        "active": "SELECT arrayJoin(range(toUInt64(first), toUInt64(greatest(first, last + 1))))"
        f" AS b, uniqExact(user) FROM ({users}) GROUP BY b",
        "users": f"SELECT * FROM (SELECT * FROM ({totals}) WHERE c > 0"
        f" ORDER BY c DESC, user LIMIT {TOP_ROWS}) UNION DISTINCT SELECT * FROM"
        f" (SELECT * FROM ({totals}) WHERE e > 0 ORDER BY e DESC, user LIMIT {TOP_ROWS})",
        "sessions": session_counts,
        "figures": f"SELECT n, {ranks}, a[-1], b[-1], c[-1], length(c) FROM ({figures})",
        "top_sessions": top_sessions.format(
            key="cost", candidates=candidates("top_cost", "%(cost_bound)s")
        )
        + " UNION ALL "
        + top_sessions.format(
            key="error_count", candidates=candidates("top_errors", "%(errors_bound)s")
        ),
        "models": "SELECT m.1 AS model, first, sum(m.2), sum(m.3), sum(m.4), sum(m.5), sum(m.6)"
        f" FROM ({each('models', 'm')}) WHERE started GROUP BY model, first",
        "score_kinds": "SELECT DISTINCT target_kind FROM score_rollups"
        " WHERE project_id = %(project)s",
    }
    # One statement per figure (as scalar subqueries of one statement they took
    # longer, measured), a few at a time: ClickHouse runs statements side by side.
    with ThreadPoolExecutor(max_workers=SIDE_BY_SIDE) as pool:
        answers = list(pool.map(lambda sql: rows_of(sql, p), statements.values()))
    found = dict(zip(statements, answers, strict=True))
    out = MetricsRows()
    out.traces = [(None, None, *row) for row in found["traces"]]
    active_users = [0] * span.count
    for bucket, count in found["active"]:
        active_users[bucket] = count
    out.active_users = active_users
    out.user_totals = found["users"]
    out.sessions = [(None, *row) for row in found["sessions"]]
    out.distributions = _distributions(found["figures"][0])

    # By the figure, then by session id, both descending, as ``store.metrics`` ranks.
    def ranked(key: str, index: int) -> list[tuple[Any, ...]]:
        rows = [tuple(r[1:]) for r in found["top_sessions"] if r[0] == key]
        return sorted(rows, key=lambda r: (r[index], r[0]), reverse=True)

    out.top_sessions_by_cost = ranked("cost", 4)
    out.top_sessions_by_errors = ranked("error_count", 3)
    out.models = [
        (None, model, bucket, pico / PICO if cost_traces else None, i, o_, t)
        for model, bucket, cost_traces, pico, i, o_, t in found["models"]
    ]
    kinds = {kind for (kind,) in found["score_kinds"]}
    if kinds:
        started_sessions = session_rows.format(rows=each("sessions", "s", in_range))
        out.scores = _scores(lambda sql: rows_of(sql, p), p, started_sessions, kinds)
    return out


def _scores(
    rows: Callable[[str], list[tuple[Any, ...]]],
    p: dict[str, Any],
    session_rows: str,
    kinds: set[str],
) -> list[tuple[Any, ...]]:
    """Score averages by the start bucket of the traces and sessions they summarise,
    for those active in the range."""
    found: list[tuple[Any, ...]] = []
    for kind in ("trace", "session"):
        if kind not in kinds:
            continue
        p["score_kind"] = kind
        summaries = latest_rollups("project_id = %(project)s AND target_kind = %(score_kind)s")
        if kind == "trace":
            targets = (
                "SELECT trace_id AS id, min(start_ns) AS start_ns, max(end_ns) AS end_ns"
                " FROM trace_parts_by_id WHERE project_id = %(project)s"
                f" AND trace_id IN (SELECT target_id FROM ({summaries})) GROUP BY trace_id"
            )
        else:
            targets = f"SELECT session_id AS id, start_ns, end_ns FROM ({session_rows})"
        found += [
            (name, None, bucket, value_sum, value_count)
            for name, bucket, value_sum, value_count in rows(
                "SELECT r.name AS score_name,"
                " intDiv(t.start_ns - %(o)s + 999, %(w)s) AS b,"
                " sum(tupleElement(r.row, 3)), sum(tupleElement(r.row, 2))"
                f" FROM ({targets}) AS t INNER JOIN ({summaries}) AS r ON r.target_id = t.id"
                " WHERE tupleElement(r.row, 2) > 0 AND t.start_ns + 999 >= %(o)s"
                " AND t.start_ns <= %(last_instant)s AND t.end_ns >= %(o)s"
                " GROUP BY score_name, b"
            )
        ]
    return found


def _distributions(row: tuple[Any, ...]) -> dict[str, Distribution]:
    count, t50, t95, d50, d95, c50, c95, t_max, d_max, c_max, costs = row

    def dist(n: int, p50: float, p95: float, top: float) -> Distribution:
        if not n:
            return Distribution(count=0, p50=None, p95=None, max=None)
        return Distribution(count=n, p50=p50, p95=p95, max=top)

    return {
        "turns_per_session": dist(count, float(t50), float(t95), float(t_max)),
        "session_duration_ms": dist(count, d50 / 1e6, d95 / 1e6, d_max / 1e6),
        "session_cost_usd": dist(costs, c50, c95, c_max),
    }
