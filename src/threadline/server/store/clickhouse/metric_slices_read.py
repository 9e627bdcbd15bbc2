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
from typing import Any

from threadline.server.model import TOP_ROWS, Distribution
from threadline.server.store.clickhouse.metric_slices import HOUR_NS, SLICES_PER_HOUR
from threadline.server.store.clickhouse.scores import latest_rollups
from threadline.server.store.metrics import MetricsRows, Range
from threadline.server.store.model_usage import PICO

Rows = Callable[[str, dict[str, Any]], list[tuple[Any, ...]]]

_PERCENTILES = (0.5, 0.95)


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

    def rows(sql: str) -> list[tuple[Any, ...]]:
        return rows_of(sql, p)

    # The newest version of each slice whose rows may be active in the range.
    slices = (
        "(SELECT slice, traces, sessions, models FROM metric_slices FINAL"
        f" WHERE project_id = %(project)s AND slice < %(end_h)s * {SLICES_PER_HOUR}"
        " AND last_hour >= %(o_h)s)"
    )
    hour = f"intDiv(slice, {SLICES_PER_HOUR})"
    # A trace row: active in the range when its last hour is in it (its first is, by
    # the slices read); its amounts count when it started in the range.
    trace_rows = (
        f"(SELECT {hour} AS first_hour, tupleElement(t, 1) AS user, tupleElement(t, 2) AS last_hour, tupleElement(t, 3) AS trace_count,"
        " tupleElement(t, 4) AS error_count, tupleElement(t, 5) AS cost, tupleElement(t, 6) AS input, tupleElement(t, 7) AS output, tupleElement(t, 8) AS total,"
        " intDiv(greatest(first_hour, %(o_h)s) - %(o_h)s, %(w_h)s) AS first,"
        " intDiv(least(last_hour, %(end_h)s - 1) - %(o_h)s, %(w_h)s) AS last,"
        " first_hour >= %(o_h)s AS started"
        f" FROM {slices} ARRAY JOIN traces AS t WHERE tupleElement(t, 2) >= %(o_h)s)"
    )
    session_rows = (
        "(SELECT tupleElement(s, 1) AS session_id, tupleElement(s, 2) AS start_ns, tupleElement(s, 3) AS end_ns, tupleElement(s, 4) AS trace_count,"
        " tupleElement(s, 5) AS error_count, tupleElement(s, 6) AS cost,"
        " intDiv(greatest(start_ns, %(o)s) - %(o)s + 999, %(w)s) AS first,"
        " intDiv(least(end_ns, %(end)s - 1) - %(o)s, %(w)s) AS last"
        f" FROM {slices} ARRAY JOIN sessions AS s"
        " WHERE tupleElement(s, 3) >= %(o)s AND tupleElement(s, 2) <= %(last_instant)s)"
    )
    out = MetricsRows()
    out.traces = [
        (None, None, *row)
        for row in rows(
            "SELECT first, last, started, sum(trace_count), sum(error_count), sum(cost), sum(input),"
            f" sum(output), sum(total) FROM {trace_rows} GROUP BY first, last, started"
        )
    ]
    active = [0] * span.count
    for bucket, users in rows(
        "SELECT arrayJoin(range(toUInt64(first), toUInt64(greatest(first, last + 1)))) AS b,"
        f" uniqExact(user) FROM {trace_rows} WHERE user IS NOT NULL GROUP BY b"
    ):
        active[bucket] = users
    out.active_users = active
    # The users' totals of the traces started in the range: only those that can be in
    # a top list (ranked as ``store.metrics.build`` ranks them).
    users = (
        "SELECT assumeNotNull(user) AS u, sum(trace_count) AS n, sum(error_count) AS e, sum(cost) AS c"
        f" FROM {trace_rows} WHERE started AND user IS NOT NULL GROUP BY u"
    )
    out.user_totals = rows(
        f"SELECT * FROM (SELECT * FROM ({users}) WHERE c > 0 ORDER BY c DESC, u LIMIT {TOP_ROWS})"
        f" UNION DISTINCT SELECT * FROM (SELECT * FROM ({users}) WHERE e > 0"
        f" ORDER BY e DESC, u LIMIT {TOP_ROWS})"
    )
    out.sessions = [
        (None, *row)
        for row in rows(
            f"SELECT first, last, count(), countIf(error_count > 0) FROM {session_rows}"
            " GROUP BY first, last"
        )
    ]
    figures = (
        "SELECT count() AS n, arraySort(groupArray(trace_count)) AS a,"
        " arraySort(groupArray(end_ns - start_ns)) AS b,"
        f" arraySort(groupArrayIf(assumeNotNull(cost), isNotNull(cost))) AS c FROM {session_rows}"
    )
    ranks = ", ".join(
        f"{x}[greatest(1, toUInt64(ceil({q} * length({x}))))]"
        for x in ("a", "b", "c")
        for q in _PERCENTILES
    )
    out.distributions = _distributions(
        rows(f"SELECT n, {ranks}, a[-1], b[-1], c[-1], length(c) FROM ({figures})")[0]
    )
    top = (
        "SELECT session_id, start_ns, trace_count, error_count, cost FROM {rows} WHERE {where}"
        " ORDER BY {key} DESC, session_id DESC LIMIT {n}"
    )
    out.top_sessions_by_cost = rows(
        top.format(rows=session_rows, where="cost > 0", key="cost", n=TOP_ROWS)
    )
    out.top_sessions_by_errors = rows(
        top.format(rows=session_rows, where="error_count > 0", key="error_count", n=TOP_ROWS)
    )
    out.models = [
        (None, model, bucket, pico / PICO if cost_traces else None, i, o_, t)
        for model, bucket, cost_traces, pico, i, o_, t in rows(
            f"SELECT tupleElement(m, 1) AS model, intDiv({hour} - %(o_h)s, %(w_h)s) AS b, sum(tupleElement(m, 2)), sum(tupleElement(m, 3)),"
            f" sum(tupleElement(m, 4)), sum(tupleElement(m, 5)), sum(tupleElement(m, 6)) FROM {slices} ARRAY JOIN models AS m"
            f" WHERE {hour} >= %(o_h)s GROUP BY model, b"
        )
    ]
    out.scores = _scores(rows, p, session_rows)
    return out


def _scores(
    rows: Callable[[str], list[tuple[Any, ...]]], p: dict[str, Any], session_rows: str
) -> list[tuple[Any, ...]]:
    """Score averages by the start bucket of the traces and sessions they summarise,
    for those active in the range."""
    found: list[tuple[Any, ...]] = []
    for kind in ("trace", "session"):
        p["score_kind"] = kind
        summaries = latest_rollups("project_id = %(project)s AND target_kind = %(score_kind)s")
        if not rows(f"SELECT 1 FROM ({summaries}) LIMIT 1"):
            continue
        if kind == "trace":
            targets = (
                "SELECT trace_id AS id, min(start_ns) AS start_ns, max(end_ns) AS end_ns"
                " FROM trace_parts_by_id WHERE project_id = %(project)s"
                f" AND trace_id IN (SELECT target_id FROM ({summaries})) GROUP BY trace_id"
            )
        else:
            targets = f"SELECT session_id AS id, start_ns, end_ns FROM {session_rows}"
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
