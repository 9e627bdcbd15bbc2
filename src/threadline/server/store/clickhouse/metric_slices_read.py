"""The dashboard as it opens (no filter, no grouping) on ClickHouse, read from the
per-slice figures of ``metric_slices.py`` instead of rolling up the range's traces and
sessions: a month is some 8,640 rows of small arrays.

Four statements, run side by side, each aggregating in ClickHouse and returning one
row or a few dozen: the top sessions' bounds and the score kinds; the trace, session
and model series with the distributions; the active and top users; the top sessions
(once their bounds are known). Each statement's pass over the slices costs more than
most of what it computes there (measured on chDB: a filtered count of a month's slices
took 8 ms of CPU), so the figures share passes rather than take one each. The bucket
rules are those of ``store.metrics`` (and of ``metrics.read``), with a row's first
active instant known from its slice and its last from its last hour (traces) or its
end (sessions), which every bucket, whole hours, needs no finer. Everything is exact: the
distributions sort every session's figures for their nearest ranks. Score averages
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

Rows = Callable[[str, dict[str, Any]], list[tuple[Any, ...]]]

_PERCENTILES = (0.5, 0.95)
# A cost ``{x}`` (USD, never negative) in whole picodollars, as ``picodollars`` rounds.
COST_PICO = "toUInt64({x} * 1e12 + 0.5)"
# Of three sorted arrays ``a``, ``b``, ``c`` (turns, durations, known costs of the
# sessions): each one's nearest ranks, as ``distributions`` reads them after its count.
RANKS = ", ".join(
    f"{x}[greatest(1, toUInt64(ceil({q} * length({x}))))]"
    for x in ("a", "b", "c")
    for q in _PERCENTILES
)
# Statements in flight at once (1: one after the other).
SIDE_BY_SIDE = 3


def read(rows_of: Rows, project_id: int, span: Range, scores: bool = True) -> MetricsRows:
    """The unfiltered, ungrouped dashboard's rows of ``span``; without score averages
    unless ``scores``."""
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
    # has several versions only between a refresh and the merge that keeps the newest.
    # FINAL keeps the newest of those when read, merging only the ranges of parts that
    # overlap: on chDB (ClickHouse 26.9) it cost a pass over a month's slices 10-20 %
    # more, less than naming the slices with several versions first (a GROUP BY of
    # every slice before any statement could start) had cost.
    newest = (
        f"project_id = %(project)s AND slice < %(end_h)s * {SLICES_PER_HOUR}"
        " AND last_hour >= %(o_h)s"
    )
    in_range = f"slice >= %(o_h)s * {SLICES_PER_HOUR}"
    # The tenth largest first session by (cost, id) and by (errors, id) among the
    # slices in the range bounds their top ten from below: ten sessions reach it, so
    # the top ten do, and only the slices reaching it can hold one of them. Read first,
    # with which score kinds exist, and the slices the top lists then read: those
    # reaching either bound, and those before the range (their sessions running into
    # it). Named by key, they are all that statement reads: a condition on other
    # columns is checked only after FINAL has read every slice's lists (measured: 60
    # against 15-20 ms of the engine's CPU).
    bounds = (
        "SELECT (SELECT groupUniqArray(target_kind) FROM score_rollups"
        " WHERE project_id = %(project)s),"
        " arrayMap(x -> x.1, arrayFilter(x -> NOT x.2 OR x.3 >= cost_bound"
        " OR x.4 >= errors_bound, slices)) FROM (SELECT"
        f" arrayReverseSort(groupArrayIf(top_cost, {in_range}))[{TOP_ROWS}] AS cost_bound,"
        f" arrayReverseSort(groupArrayIf(top_errors, {in_range}))[{TOP_ROWS}] AS errors_bound,"
        f" groupArray((slice, {in_range}, top_cost, top_errors)) AS slices"
        f" FROM metric_slices FINAL WHERE {newest})"
    )
    hour = f"intDiv(slice, {SLICES_PER_HOUR})"
    # Of a slice: the bucket it lies in (0 for a slice before the range, whose rows
    # count from the range's first bucket on) and whether it started in the range.
    first = f"intDiv(greatest({hour}, %(o_h)s) - %(o_h)s, %(w_h)s)"
    started = f"{hour} >= %(o_h)s"
    # Of a row: the bucket of its last hour (clamped to the range's last bucket).
    last = "intDiv(least({x}, %(end_h)s - 1) - %(o_h)s, %(w_h)s)"

    def each(column: str, alias: str, where: str = "1") -> str:
        """The elements of ``column`` of the slices read (those meeting ``where``), as
        ``alias``, beside the slice's ``first`` bucket and whether it ``started`` in
        the range. The slices are picked before the arrays are joined: a condition
        after ARRAY JOIN would unfold every slice's array first."""
        return (
            f"SELECT first, started, {alias} FROM (SELECT {first} AS first,"
            f" {started} AS started, {column} FROM metric_slices FINAL WHERE {newest} AND {where})"
            f" ARRAY JOIN {column} AS {alias}"
        )

    def fields(array: str, *picks: str) -> str:
        return ", ".join(f"arrayMap(x -> {pick}, {array})" for pick in picks)

    # Traces and sessions per (slice bucket, last bucket), and usage by model per
    # slice bucket, in one pass over the slices: each slice adds its few cells by
    # last bucket (sumMap), so no array is unfolded into rows. A trace cell's cost is
    # None when none of its traces had one: its cost is summed as 0 beside the count
    # of cells that had one. Costs are summed as whole picodollars (``COST_PICO``), as
    # the models' are: a sum of floats depends on the order the engine meets the
    # slices in, so two reads could differ in the last bit; integers add up the same
    # in any order. sumMap leaves out a key whose values all add up to 0:
    # every trace and session cell counts at least one row, and the models' count a 1
    # per row for that reason.
    last_bucket = "arrayMap(x -> " + last.format(x="x.1") + ", {a})"
    cells = (
        "SELECT first, started,"
        f" sumMap({last_bucket.format(a='tc')}, "
        + fields(
            "tc", "x.2", "x.3", COST_PICO.format(x="ifNull(x.4, 0)"), "toUInt64(isNotNull(x.4))"
        )
        + ", "
        + fields("tc", "x.5", "x.6", "x.7")
        + f") AS t, sumMap({last_bucket.format(a='sc')}, {fields('sc', 'x.2', 'x.3')}) AS s,"
        f" sumMap({fields('ms', 'x.1', 'toUInt64(1)', 'x.2', 'x.3', 'x.4', 'x.5', 'x.6')})"
        " AS m, groupArrayArray(arrayMap(f -> f.2, sf)) AS turns,"
        " groupArrayArray(arrayMap(f -> f.3, sf)) AS durations,"
        " groupArrayArray(arrayMap(f -> assumeNotNull(f.4),"
        " arrayFilter(f -> isNotNull(f.4), sf))) AS costs"
        f" FROM (SELECT {first} AS first, {started} AS started,"
        " arrayFilter(x -> x.1 >= %(o_h)s, trace_counts) AS tc,"
        " arrayFilter(x -> x.1 >= %(o_h)s, session_counts) AS sc,"
        " arrayFilter(f -> f.1 >= %(o_h)s, session_figures) AS sf,"
        f" if(started, models, []) AS ms FROM metric_slices FINAL WHERE {newest})"
        " GROUP BY first, started"
    )
    # Every session active in the range is in one slice: the distributions sort the
    # figures of all of them, for the exact nearest ranks, in the same statement.
    by_bucket = (
        f"SELECT cells, length(a), {RANKS}, a[-1], b[-1], c[-1], length(c)"
        " FROM (SELECT groupArray((first, started, t, s, m)) AS cells,"
        " arraySort(groupArrayArray(turns)) AS a, arraySort(groupArrayArray(durations)) AS b,"
        f" arraySort(groupArrayArray(costs)) AS c FROM ({cells}))"
    )
    # Per user, the buckets it was active in and its totals of the traces started in
    # the range; then, in the same statement, the active users per bucket and the
    # users that can be in a top list (ranked as ``store.metrics.build`` ranks them).
    per_user = (
        "SELECT u.1 AS user, groupUniqArrayArray(range(toUInt64(first),"
        f" toUInt64(greatest(first, {last.format(x='u.2')} + 1)))) AS buckets,"
        " sumIf(u.3, started) AS n, sumIf(u.4, started) AS e,"
        f" sumIf({COST_PICO.format(x='u.5')}, started) AS c"
        f" FROM ({each('users', 'u')}) WHERE u.2 >= %(o_h)s GROUP BY user"
    )
    users = (
        "SELECT sumMap(buckets, arrayMap(b -> toUInt64(1), buckets)),"
        " arraySlice(arraySort(t -> (-t.4, t.1),"
        f" groupArrayIf((user, n, e, c), ifNull(c, 0) > 0)), 1, {TOP_ROWS}),"
        " arraySlice(arraySort(t -> (-t.3, t.1),"
        f" groupArrayIf((user, n, e, c), e > 0)), 1, {TOP_ROWS}) FROM ({per_user})"
    )
    # The candidates for both top lists, in one pass over the slices ``bounds`` named:
    # a slice in the range is active in it whole, so its own top sessions are all it
    # can add; a slice before the range, the sessions running into it. A session is
    # in one slice, so none comes twice.
    session_rows = (
        "SELECT s.1 AS session_id, s.2 AS start_ns, s.3 AS end_ns, s.4 AS trace_count,"
        " s.5 AS error_count, s.6 AS cost FROM ({rows}) WHERE s.3 >= %(o)s"
    )
    candidates = (
        f"SELECT s FROM (SELECT if({in_range}, top_sessions, sessions) AS arr"
        " FROM metric_slices FINAL WHERE project_id = %(project)s AND slice IN %(top_slices)s)"
        " ARRAY JOIN arr AS s WHERE s.3 >= %(o)s"
    )
    top_sessions = (
        "SELECT arraySlice(arrayReverseSort(x -> (assumeNotNull(x.6), x.1),"
        f" groupArrayIf(s, ifNull(s.6, 0) > 0)), 1, {TOP_ROWS}),"
        " arraySlice(arrayReverseSort(x -> (x.5, x.1),"
        f" groupArrayIf(s, s.5 > 0)), 1, {TOP_ROWS}) FROM ({candidates})"
    )
    # Four statements, side by side: ClickHouse runs statements in parallel. The top
    # sessions wait for their bounds, the others for nothing.
    with ThreadPoolExecutor(max_workers=SIDE_BY_SIDE) as pool:
        head = pool.submit(rows_of, bounds, p)
        found = {
            name: pool.submit(rows_of, sql, p)
            for name, sql in (("by_bucket", by_bucket), ("users", users))
        }
        ((kinds, top_slices),) = head.result()
        if top_slices:
            found["top_sessions"] = pool.submit(
                rows_of, top_sessions, {**p, "top_slices": top_slices}
            )
    ((cells_found, *figures),) = found["by_bucket"].result()
    out = MetricsRows()
    # In a fixed order (groupArray's is the engine's), so that ``metrics.build`` adds a
    # bucket's costs in the same order on every read.
    for first_bucket, began, traces, sessions, models in sorted(cells_found, key=_cell_key):
        for last_of, n, errors, cost, costed, *tokens in zip(*traces, strict=True):
            known = cost if costed else None
            out.traces.append((None, None, first_bucket, last_of, began, n, errors, known, *tokens))
        out.sessions += [(None, first_bucket, *row) for row in zip(*sessions, strict=True)]
        out.models += [
            (None, model, first_bucket, pico if cost_traces else None, i, o_, t)
            for model, _, cost_traces, pico, i, o_, t in zip(*models, strict=True)
        ]
    out.distributions = distributions(tuple(figures))
    ((active_buckets, active_counts), by_cost, by_errors) = found["users"].result()[0]
    active_users = [0] * span.count
    for bucket, count in zip(active_buckets, active_counts, strict=True):
        active_users[bucket] = count
    out.active_users = active_users
    out.user_totals = list(dict.fromkeys([*by_cost, *by_errors]))

    # (session id, start, end, traces, errors, cost), ranked by the figure, then by
    # session id, both descending, as ``store.metrics`` ranks.
    ((by_cost, by_errors),) = found["top_sessions"].result() if top_slices else (([], []),)
    out.top_sessions_by_cost = [(r[0], r[1], r[3], r[4], r[5]) for r in by_cost]
    out.top_sessions_by_errors = [(r[0], r[1], r[3], r[4], r[5]) for r in by_errors]
    if kinds and scores:
        started_sessions = session_rows.format(rows=each("sessions", "s", in_range))
        out.scores = _scores(lambda sql: rows_of(sql, p), p, started_sessions, set(kinds))
    return out


def _cell_key(cell: tuple[Any, ...]) -> tuple[int, bool]:
    first_bucket, began = cell[0], cell[1]
    return first_bucket, bool(began)


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


def distributions(row: tuple[Any, ...]) -> dict[str, Distribution]:
    """The distributions of (count, ``RANKS``, the largest of a, b and c, length of c)."""
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
