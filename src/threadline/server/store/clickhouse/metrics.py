"""The dashboard's aggregate queries on ClickHouse: the same rows as on SQLite
(``store.metrics.MetricsRows``), over each trace's, session's and score summary's
newest version (``queries.latest_*``), never spans.

The time window is pushed below the version pick of traces, as ``list_traces`` does (a
trace's newer rollups start no later and end no earlier, so this is exact).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from threadline.server.model import MetricsQuery, TraceQuery
from threadline.server.store.clickhouse import (
    metric_candidates,
    metric_sessions,
    metric_sources,
    model_usage,
    queries,
    session_filters,
    trace_labels,
)
from threadline.server.store.clickhouse.metric_slices_read import COST_PICO
from threadline.server.store.clickhouse.queries import Filters
from threadline.server.store.clickhouse.scores import latest_rollups
from threadline.server.store.metrics import MetricsRows, Range, user_totals

Rows = Callable[[str, dict[str, Any]], list[tuple[Any, ...]]]


def read(rows_of: Rows, project_id: int, query: MetricsQuery, span: Range) -> MetricsRows:
    f = Filters(project_id)
    o, w = f.param(span.origin), f.param(span.width)
    overlap = f"end_ns >= {o} AND start_ns <= {f.param(span.last_instant)}"
    buckets = (
        f"intDiv(greatest(start_ns, {o}) - {o} + 999, {w}) AS first,"
        f" intDiv(least(end_ns, {f.param(span.end - 1)}) - {o}, {w}) AS last,"
        f" start_ns + 999 >= {o} AS started"
    )
    last = f.param(span.last_instant)
    # Filtered by a user, tag or metadata value: only the traces that may meet it are
    # merged (the filter is checked on the merged rows below), and only their sessions.
    near, by_id = trace_labels.near(rows_of, f, query, o, last)
    if by_id is not None:
        # Few of them: merged once, the figures added up in Python.
        added_up = metric_candidates.read(rows_of, f, query, span, by_id)
        if added_up is not None:
            return added_up
    # Unfiltered and ungrouped (the dashboard as it opens), the traces' figures alone;
    # else the rows the lists filter and group on.
    slim = not (query.user_id or query.tag or query.metadata or query.group_by)
    # A tag or metadata filter or a grouping reads the traces' merged labels too.
    lean = not (query.tag or query.metadata or query.group_by)
    traces = f"(SELECT * FROM ({metric_sources.traces(near, labelled=not lean)}) WHERE {overlap})"
    # The list filters on a trace row (it meets them all), and on a session row as the
    # Sessions list combines them (``session_filters``).
    conditions = f.trace_conditions(TraceQuery(tag=query.tag, metadata=query.metadata))
    if query.user_id:
        conditions.append(f"user_id = {f.param(query.user_id)}")
    trace_where = " AND ".join(conditions) or "1"
    kept, sessions_near = session_filters.sessions(f, query, o, last)
    session_where = " AND ".join([overlap, *kept])
    grouped = query.group_by is not None
    groups = metric_sources.group_values(f, query)
    group = f"arrayJoin({groups})" if grouped else "CAST(NULL, 'Nullable(String)')"
    # A session is in the groups of all its traces, whenever they ran (one active in
    # the range may have none in it, between two turns): read with its figures, from
    # the traces of the sessions the window names, not from every trace of the store.
    sessions = (
        f"({metric_sources.sessions_named(sessions_near or near, groups if grouped else None)})"
    )
    p = f.params

    def rows(sql: str) -> list[tuple[Any, ...]]:
        return rows_of(sql, p)

    out = MetricsRows()
    # Grouped, a trace may be in several groups: its groups are read as one array, the
    # rows split by group here, so that the users' totals count it once.
    traces_found = rows(
        f"SELECT {groups if grouped else group} AS grp, user_id, {buckets}, count(),"
        f" countIf(status = 'error'), sum({COST_PICO.format(x='cost_usd')}), sum(input_tokens),"
        " sum(output_tokens),"
        f" sum(total_tokens) FROM {traces} WHERE {trace_where}"
        " GROUP BY grp, user_id, first, last, started"
    )
    if grouped:
        out.traces = [(g, *row[1:]) for row in traces_found for g in row[0]]
        out.user_totals = user_totals(traces_found)
    else:
        out.traces = traces_found
    found = rows(
        f"SELECT {metric_sessions.COLUMNS}{', groups' if grouped else ''}"
        f" FROM {sessions} WHERE {session_where}"
    )
    metric_sessions.fill(out, found, span, series=not grouped)
    if grouped:
        out.sessions = metric_sessions.grouped(found, span)
        # Each session once per group (the score rows below).
        sessions = (
            "(SELECT DISTINCT * EXCEPT (groups), arrayJoin(arrayFlatten(groups)) AS grp"
            f" FROM {sessions})"
        )
        session_group = "grp"
    else:
        session_group = "CAST(NULL, 'Nullable(String)')"
    # Usage by model needs only the started traces' times when nothing filters or
    # groups them.
    started_from = f"(SELECT * FROM ({metric_sources.trace_times(near)}) WHERE {overlap})"
    started = (
        f"SELECT * FROM {started_from if slim else traces}"
        f" WHERE {trace_where} AND start_ns + 999 >= {o}"
    )
    if not (query.user_id or query.tag or query.metadata):
        # The started traces' usage rows, all of them. A row starts no earlier than
        # its trace, so the window's start bounds them below; not above: a trace's
        # later spans may start hours after the window ended. A window reaching the
        # present has nothing after it to leave out (the join keeps the started
        # traces); one in the past keeps the rows of the traces whose first part
        # starts in it (``trace_times``; the set costs 10-15 % of the statement).
        usage_where = f"start_ns >= {o} - 999"
        if span.end + queries.WINDOW_SLACK_NS < time.time_ns():
            usage_where += (
                " AND trace_id IN (SELECT trace_id FROM trace_times"
                f" WHERE project_id = %(project)s AND start_ns >= {o} - 999"
                f" AND start_ns <= {last})"
            )
        usage = model_usage.latest_where(usage_where)
    else:
        # The candidates named by id hold the started traces (the join keeps only
        # theirs): not the traces merged once more to name them.
        usage = (
            model_usage.latest_where(by_id)
            if by_id
            else model_usage.latest(f"SELECT trace_id FROM ({started})")
        )
    out.models = [
        (grp, model, first, cost_pico if cost_traces else None, i, o_, t)
        for grp, model, first, cost_traces, cost_pico, i, o_, t in rows(
            f"SELECT {group} AS grp, u.model AS model,"
            f" intDiv(greatest(t.start_ns, {o}) - {o} + 999, {w}) AS first,"
            " countIf(tupleElement(u.usage, 1) > 0), sum(tupleElement(u.usage, 2)),"
            " sum(tupleElement(u.usage, 3)), sum(tupleElement(u.usage, 4)),"
            " sum(tupleElement(u.usage, 5))"
            f" FROM ({started}) AS t INNER JOIN ({usage}) AS u ON u.trace_id = t.trace_id"
            " GROUP BY grp, model, first"
        )
    ]
    summaries = latest_rollups("project_id = %(project)s AND target_kind = %(score_kind)s")
    for kind, table, where, id_column, g in (
        ("trace", traces, trace_where, "trace_id", group),
        ("session", sessions, session_where, "session_id", session_group),
    ):
        p["score_kind"] = kind
        # Rolling up the range's rows costs far more than finding that no score names
        # any row of this kind.
        if not rows(f"SELECT 1 FROM ({summaries}) LIMIT 1"):
            continue
        out.scores += [
            (name, grp, first, value_sum, value_count)
            for name, grp, first, _last, _started, value_sum, value_count in rows(
                f"SELECT r.name AS score_name, {g} AS grp, {buckets},"
                " sum(tupleElement(r.row, 3)), sum(tupleElement(r.row, 2))"
                f" FROM (SELECT * FROM {table} WHERE {where} AND start_ns + 999 >= {o}) AS t"
                f" INNER JOIN ({summaries}) AS r ON r.target_id = t.{id_column}"
                " WHERE tupleElement(r.row, 2) > 0 GROUP BY score_name, grp, first, last, started"
            )
        ]
    return out
