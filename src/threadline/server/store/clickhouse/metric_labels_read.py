"""The dashboard grouped by a tag or a metadata key, or narrowed by a tag and metadata
values, on ClickHouse, read from the slices' labelled rows (``metric_slices.py``,
migration 0028) instead of merging the range's trace parts again.

Each slice holds its traces (figures, tags, metadata as filter text, usage by model)
and, beside each of its sessions, its traces' labels, whenever they ran: the rows
``metrics.read`` merges from the trace parts, computed once by the refresh pass. A
month is some 200,000 trace rows in 8,640 slices, read in a few statements side by
side, each unfolding the arrays of the range's slices:

- the traces, per (their groups, user, first, last bucket, started), as
  ``metrics.read`` reads them (its filter conditions and groups are the same
  expressions, on the same names);
- usage by model of the started traces, per (group, model, bucket);
- the sessions: grouped without a filter, counted per (group, first, last bucket) in
  the statement, and the distributions, top sessions and top users (those of the
  unfiltered dashboard: a grouping keeps every row) read from the slices' own figures
  (``metric_slices_read``); narrowed, the sessions kept (one of their traces meets
  every filter, as the Sessions list keeps them) returned with their groups and added
  up here (``metric_sessions``);
- score averages, when any score exists, joined to the started traces and sessions.

The bucket rules are those of ``metric_slices_read`` (a slice lies in one bucket; a
row's last hour, or a session's end, places it in the last). A user filter is not read
here: its few traces are merged by id (``metric_candidates``).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from threadline.server.model import MetricsQuery, TraceQuery
from threadline.server.store.clickhouse import metric_sessions, metric_slices_read, metric_sources
from threadline.server.store.clickhouse.metric_slices import HOUR_NS, SLICES_PER_HOUR
from threadline.server.store.clickhouse.metric_slices_read import COST_PICO
from threadline.server.store.clickhouse.queries import Filters
from threadline.server.store.clickhouse.scores import latest_rollups
from threadline.server.store.metrics import MetricsRows, Range, user_totals

Rows = Callable[[str, dict[str, Any]], list[tuple[Any, ...]]]

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
        f"SELECT first, started, {_TRACE}, {groups} AS groups"
        f" FROM ({slices.format(columns='labelled_traces')}) ARRAY JOIN labelled_traces AS t"
        f" WHERE last_hour >= %(o_h)s AND {meets}"
    )
    traces_sql = (
        f"SELECT groups, user_id, first, {last.format(x='last_hour')} AS last, started,"
        f" count(), sum(failed), sum({COST_PICO.format(x='cost_usd')}), sum(input_tokens),"
        f" sum(output_tokens), sum(total_tokens) FROM ({traces})"
        " GROUP BY groups, user_id, first, last, started"
    )
    models_sql = (
        "SELECT grp, m.1 AS model, first, sum(m.2), sum(m.3), sum(m.4), sum(m.5), sum(m.6)"
        f" FROM ({traces} AND started) ARRAY JOIN models AS m"
        " ARRAY JOIN groups AS grp GROUP BY grp, model, first"
    )
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
    filtered = bool(conditions)
    grouped = query.group_by is not None
    kinds_sql = (
        "SELECT groupUniqArray(target_kind) FROM score_rollups WHERE project_id = %(project)s"
    )
    out = MetricsRows()
    with ThreadPoolExecutor(max_workers=3) as pool:
        # Copies: each statement's placeholders are all named by now.
        found_traces = pool.submit(rows_of, traces_sql, dict(p))
        found_models = pool.submit(rows_of, models_sql, dict(p))
        kinds = pool.submit(rows_of, kinds_sql, dict(p))
        if filtered:
            found = rows_of(f"SELECT {metric_sessions.COLUMNS}, groups FROM ({sessions})", dict(p))
            metric_sessions.fill(out, found, span, series=not grouped)
            if grouped:
                out.sessions = metric_sessions.grouped([(*r[:6], [r[6]]) for r in found], span)
        else:
            # Grouped, every row kept: what is not per group is the unfiltered
            # dashboard's (the top lists, the distributions).
            whole = metric_slices_read.read(rows_of, project_id, span, scores=False)
            out.session_figures = whole.session_figures
            out.distributions = whole.distributions
            out.top_sessions_by_cost = whole.top_sessions_by_cost
            out.top_sessions_by_errors = whole.top_sessions_by_errors
            out.user_totals = whole.user_totals
            out.sessions = rows_of(
                f"SELECT grp, first, {last.format(x=f'intDiv(end_ns, {HOUR_NS})')} AS last,"
                f" count(), countIf(error_count > 0) FROM ({sessions})"
                " ARRAY JOIN groups AS grp GROUP BY grp, first, last",
                dict(p),
            )
        traces_found = found_traces.result()
        out.models = [
            (grp, model, first, pico if cost_traces else None, i, o_, t)
            for grp, model, first, cost_traces, pico, i, o_, t in found_models.result()
        ]
        ((kinds_found,),) = kinds.result()
    # A trace in several groups counts once in its user's totals: its groups are read as
    # one array, the rows split by group here.
    out.traces = [(g, *row[1:]) for row in traces_found for g in row[0]]
    if grouped and filtered:
        out.user_totals = user_totals(traces_found)
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
