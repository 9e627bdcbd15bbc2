"""The dashboard grouped by a tag or a metadata key, or narrowed by a tag and metadata
values, on ClickHouse, read from the slices' labelled rows (``metric_slices.py``,
migration 0028) instead of merging the range's trace parts again.

Each slice holds its traces (figures, tags, metadata as filter text, usage by model)
and, beside each of its sessions, its traces' labels, whenever they ran: the rows
``metrics.read`` merges from the trace parts, computed once by the refresh pass. A
month is some 200,000 trace rows in 8,640 slices. Each statement unfolds the arrays of
the range's slices and returns a few dozen rows (the filter conditions and groups are
``metrics.read``'s expressions, on the same names):

- the traces per (their groups, first and last bucket, started); each group's active
  users per bucket; the top users (a trace in several groups counts once in its
  user's totals); usage by model of the started traces per (group, model, bucket);
- the sessions kept (one of their traces meets every filter, as the Sessions list
  keeps them) per (group, first and last bucket), and their distributions and top
  lists (``metric_slices_read``'s nearest ranks and rankings);
- score averages, when any score exists, joined to the started traces and sessions.

The bucket rules are those of ``metric_slices_read`` (a slice lies in one bucket; a
row's last hour, or a session's end, places it in the last). A user filter is not read
here: its few traces are merged by id (``metric_candidates``).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from threadline.server.model import TOP_ROWS, MetricsQuery, TraceQuery
from threadline.server.store.clickhouse import metric_sources
from threadline.server.store.clickhouse.metric_slices import HOUR_NS, SLICES_PER_HOUR
from threadline.server.store.clickhouse.metric_slices_read import COST_PICO, RANKS, distributions
from threadline.server.store.clickhouse.queries import Filters
from threadline.server.store.clickhouse.scores import latest_rollups
from threadline.server.store.metrics import MetricsRows, Range

Rows = Callable[[str, dict[str, Any]], list[tuple[Any, ...]]]

# Statements in flight at once.
SIDE_BY_SIDE = 4

# The elements of a ``labelled_traces`` tuple, by the names ``metrics.read``'s
# conditions and groups use.
_TRACE = (
    "t.1 AS trace_id, t.2 AS user_id, t.3 AS last_hour, t.4 AS failed, t.5 AS cost_usd,"
    " t.6 AS input_tokens, t.7 AS output_tokens, t.8 AS total_tokens, t.9 AS tags,"
    " t.10 AS metadata_text, t.11 AS models"
)


def handles(query: MetricsQuery) -> bool:
    """Whether this module reads ``query``: grouped or narrowed by labels, no user."""
    return not query.user_id and bool(query.tag or query.metadata or query.group_by)


def read(rows_of: Rows, project_id: int, query: MetricsQuery, span: Range) -> MetricsRows:
    f = Filters(project_id)
    o_h, w_h, end_h = span.origin // HOUR_NS, span.width // HOUR_NS, span.end // HOUR_NS
    p = f.params
    p.update({"o": span.origin, "o_h": o_h, "w_h": w_h, "end_h": end_h})
    # The newest version of each slice whose rows may be active in the range (as
    # ``metric_slices_read`` reads them), its bucket and whether it began in the range.
    hour = f"intDiv(slice, {SLICES_PER_HOUR})"
    slices = (
        f"SELECT intDiv(greatest({hour}, %(o_h)s) - %(o_h)s, %(w_h)s) AS first,"
        f" {hour} >= %(o_h)s AS started, {{columns}} FROM metric_slices FINAL"
        f" WHERE project_id = %(project)s AND slice < %(end_h)s * {SLICES_PER_HOUR}"
        " AND last_hour >= %(o_h)s"
    )
    last = "intDiv(least({x}, %(end_h)s - 1) - %(o_h)s, %(w_h)s)"
    # A trace row meets the filters as ``metrics.read`` checks them; its groups, one
    # NULL when not grouped.
    conditions = f.trace_conditions(TraceQuery(tag=query.tag, metadata=query.metadata))
    meets = " AND ".join(conditions) or "1"
    groups = metric_sources.group_values(f, query)
    traces = (
        f"SELECT first, started, {_TRACE}, {groups} AS groups,"
        f" {last.format(x='last_hour')} AS last"
        f" FROM ({slices.format(columns='labelled_traces')}) ARRAY JOIN labelled_traces AS t"
        f" WHERE last_hour >= %(o_h)s AND {meets}"
    )
    # Each statement returns a few dozen rows: the traces per (groups, buckets), each
    # group's active users per bucket, the top users (a trace in several groups counts
    # once in its user's totals), usage by model.
    statements = {
        "traces": (
            "SELECT groups, first, last, started, count(), sum(failed),"
            f" sum({COST_PICO.format(x='cost_usd')}), sum(input_tokens), sum(output_tokens),"
            f" sum(total_tokens) FROM ({traces}) GROUP BY groups, first, last, started"
        ),
        "active": (
            f"SELECT grp, bucket, uniqExact(user_id) FROM ({traces} AND user_id IS NOT NULL)"
            " ARRAY JOIN groups AS grp ARRAY JOIN range(toUInt64(first), toUInt64(last) + 1)"
            " AS bucket GROUP BY grp, bucket"
        ),
        "users": (
            "SELECT arraySlice(arraySort(t -> (-t.4, t.1),"
            f" groupArrayIf((user, n, e, c), ifNull(c, 0) > 0)), 1, {TOP_ROWS}),"
            " arraySlice(arraySort(t -> (-t.3, t.1),"
            f" groupArrayIf((user, n, e, c), e > 0)), 1, {TOP_ROWS})"
            " FROM (SELECT user_id AS user, count() AS n, sum(failed) AS e,"
            f" sum({COST_PICO.format(x='cost_usd')}) AS c FROM ({traces} AND started)"
            " WHERE user_id IS NOT NULL GROUP BY user)"
        ),
        "models": (
            "SELECT grp, m.1 AS model, first, sum(m.2), sum(m.3), sum(m.4), sum(m.5),"
            f" sum(m.6) FROM ({traces} AND started) ARRAY JOIN models AS m"
            " ARRAY JOIN groups AS grp GROUP BY grp, model, first"
        ),
    }
    # A session's labels are its traces' (tags, metadata); it is kept when one of its
    # traces meets every filter, and is in each group of any of them (NULL once).
    each_trace = "(tags, metadata_text) -> {}, arrayMap(x -> x.1, l.2), arrayMap(x -> x.2, l.2)"
    kept = f"arrayExists({each_trace.format(meets)})" if conditions else "1"
    session_groups = f"arrayFlatten(arrayMap({each_trace.format(groups)}))"
    sessions = (
        "SELECT first, started, s.1 AS session_id, s.2 AS start_ns, s.3 AS end_ns,"
        " s.4 AS trace_count, s.5 AS error_count, s.6 AS cost_usd,"
        f" {session_groups} AS all_groups, arrayFilter((x, i) -> indexOf(all_groups, x) = i,"
        " all_groups, arrayEnumerate(all_groups)) AS groups"
        f" FROM ({slices.format(columns='sessions, session_labels')})"
        " ARRAY JOIN sessions AS s, session_labels AS l"
        f" WHERE s.3 >= %(o)s AND {kept}"
    )
    # The sessions per (group, buckets); their distributions (every kept session's
    # figures sorted, for the exact nearest ranks) and top lists, as
    # ``metric_slices_read`` computes them.
    row = "(session_id, start_ns, end_ns, trace_count, error_count, cost_usd)"
    statements["sessions"] = (
        f"SELECT grp, first, {last.format(x=f'intDiv(end_ns, {HOUR_NS})')} AS last,"
        f" count(), countIf(error_count > 0) FROM ({sessions})"
        " ARRAY JOIN groups AS grp GROUP BY grp, first, last"
    )
    statements["figures"] = (
        f"SELECT length(a), {RANKS}, a[-1], b[-1], c[-1], length(c), by_cost, by_errors"
        " FROM (SELECT arraySort(groupArray(trace_count)) AS a,"
        " arraySort(groupArray(end_ns - start_ns)) AS b,"
        " arraySort(groupArrayIf(assumeNotNull(cost_usd), isNotNull(cost_usd))) AS c,"
        " arraySlice(arrayReverseSort(x -> (assumeNotNull(x.6), x.1),"
        f" groupArrayIf({row}, ifNull(cost_usd, 0) > 0)), 1, {TOP_ROWS}) AS by_cost,"
        " arraySlice(arrayReverseSort(x -> (x.5, x.1),"
        f" groupArrayIf({row}, error_count > 0)), 1, {TOP_ROWS}) AS by_errors"
        f" FROM ({sessions}))"
    )
    statements["kinds"] = (
        "SELECT groupUniqArray(target_kind) FROM score_rollups WHERE project_id = %(project)s"
    )
    with ThreadPoolExecutor(max_workers=SIDE_BY_SIDE) as pool:
        # Copies: each statement's placeholders are all named by now.
        running = {name: pool.submit(rows_of, sql, dict(p)) for name, sql in statements.items()}
        found = {name: future.result() for name, future in running.items()}
    out = MetricsRows()
    # A row per group of the traces' groups (user ids: the active users are counted).
    out.traces = [(g, None, *row[1:]) for row in found["traces"] for g in row[0]]
    active: dict[str | None, list[int]] = {}
    for grp, bucket, users in found["active"]:
        active.setdefault(grp, [0] * span.count)[bucket] = users
    out.active_users_by_group = active
    ((by_cost, by_errors),) = found["users"]
    out.user_totals = list(dict.fromkeys([*by_cost, *by_errors]))
    out.models = [
        (grp, model, first, pico if cost_traces else None, i, o_, t)
        for grp, model, first, cost_traces, pico, i, o_, t in found["models"]
    ]
    out.sessions = found["sessions"]
    ((*figures, top_by_cost, top_by_errors),) = found["figures"]
    out.distributions = distributions(tuple(figures))
    out.top_sessions_by_cost = [(r[0], r[1], r[3], r[4], r[5]) for r in top_by_cost]
    out.top_sessions_by_errors = [(r[0], r[1], r[3], r[4], r[5]) for r in top_by_errors]
    ((kinds_found,),) = found["kinds"]
    for kind in sorted(kinds_found):
        p["score_kind"] = kind
        summaries = latest_rollups("project_id = %(project)s AND target_kind = %(score_kind)s")
        if kind == "trace":
            targets = f"SELECT trace_id AS id, first, groups FROM ({traces} AND started)"
        else:
            targets = f"SELECT session_id AS id, first, groups FROM ({sessions} AND started)"
        out.scores += rows_of(
            "SELECT r.name AS score_name, arrayJoin(t.groups) AS grp, t.first AS first,"
            " sum(tupleElement(r.row, 3)), sum(tupleElement(r.row, 2))"
            f" FROM ({targets}) AS t INNER JOIN ({summaries}) AS r ON r.target_id = t.id"
            " WHERE tupleElement(r.row, 2) > 0 GROUP BY score_name, grp, first",
            dict(p),
        )
    return out
